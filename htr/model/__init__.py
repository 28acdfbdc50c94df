"""The CRNN network and its LightningModule."""

from htr.model.crnn import CRNN

__all__ = ["CRNN"]
