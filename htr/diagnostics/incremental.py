"""Exact incremental CNN: recompute only the feature columns a local perturbation can change.

A perturbation of input columns [a, b) changes, at each layer, only the output columns whose
receptive field meets [a, b). :class:`IncrementalCNN` runs the CNN once on the clean image and
keeps every layer's activation; for a batch of perturbed strips it recomputes, layer by layer,
just the changed columns from a sub-tensor = clean context + changed strip + clean context, and
finally splices the strip into the clean feature map. The result equals the full forward pass
(up to float summation order) because:

* every supported layer acts on full columns (all rows), so only the width needs care;
* a layer with width stride ``s`` maps output column ``o`` to input columns
  ``[s*o - left, s*o + s + right)`` (its dependency); the sub-tensor starts at a multiple of
  ``s`` so that pooling/stride windows line up with the full image's (even/odd offsets);
* the sub-tensor's own borders (conv zero padding, BlurPool's replicate/reflect padding) only
  affect outputs whose dependency leaves the sub-tensor; those are cropped away, except at the
  true image border, where the sub-tensor's border *is* the image border;
* BatchNorm (eval), ReLU etc. are per-pixel.

Supported leaf layers: ``Conv2d`` (zeros/reflect/replicate padding, integer padding),
``MaxPool2d`` (no dilation, floor mode), :class:`htr.model.crnn.BlurPool2d`, and per-pixel
layers (BatchNorm in eval mode, ReLU-like activations, Dropout in eval, Identity).

:class:`IncrementalScoring` puts it to work for one text: the log-scores of locally perturbed
copies of one canvas, with the sequence head run only on strips whose features changed. It is
the capability :class:`htr.diagnostics.scorer.CRNNScorer` offers the relevance maps.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from htr.data.preprocess import normalize
from htr.model.crnn import BlurPool2d
from htr.text import Charset, text_log_score

_POINTWISE = (
    nn.BatchNorm2d,
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.ELU,
    nn.GELU,
    nn.SiLU,
    nn.Tanh,
    nn.Sigmoid,
    nn.Identity,
    nn.Dropout,
    nn.Dropout2d,
)


def _pair(v: int | tuple[int, ...]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def column_spec(layer: nn.Module) -> tuple[int, int, int] | None:
    """(stride, left, right) of a layer along the width, or None if it is not supported.

    Output column ``o`` depends on input columns ``[stride*o - left, stride*o + stride + right)``.
    """
    if isinstance(layer, _POINTWISE):
        return 1, 0, 0
    if isinstance(layer, nn.Conv2d):
        if isinstance(layer.padding, str) or layer.padding_mode == "circular":
            return None
        s, k, p, d = _pair(layer.stride)[1], _pair(layer.kernel_size)[1], _pair(layer.padding)[1], _pair(layer.dilation)[1]
        spec = (s, p, d * (k - 1) - p - s + 1)
    elif isinstance(layer, nn.MaxPool2d):
        if layer.ceil_mode or _pair(layer.dilation) != (1, 1):
            return None
        k = _pair(layer.kernel_size)[1]
        s = _pair(layer.stride if layer.stride is not None else layer.kernel_size)[1]
        p = _pair(layer.padding)[1]
        spec = (s, p, k - p - s)
    elif isinstance(layer, BlurPool2d):
        s = layer.stride[1]
        kb = layer.kernel.shape[-1]
        spec = (s, kb // 2, kb - 1 - kb // 2)
    else:
        return None
    return spec if spec[1] >= 0 and spec[2] >= 0 else None


def leaf_layers(module: nn.Module) -> list[nn.Module] | None:
    """The leaves of nested ``nn.Sequential`` containers, or None if anything else is inside."""
    if isinstance(module, nn.Sequential):
        out: list[nn.Module] = []
        for child in module:
            leaves = leaf_layers(child)
            if leaves is None:
                return None
            out.extend(leaves)
        return out
    if column_spec(module) is None or (len(list(module.children())) and not isinstance(module, BlurPool2d)):
        return None
    return [module]


def supports_incremental(model: nn.Module) -> bool:
    """True if ``model`` has ``cnn`` (Sequential of supported layers) and ``head`` as CRNN does."""
    cnn = getattr(model, "cnn", None)
    return isinstance(cnn, nn.Module) and callable(getattr(model, "head", None)) and leaf_layers(cnn) is not None


class IncrementalCNN:
    """Clean activations of ``cnn`` on one image, and exact recomputation of perturbed strips."""

    def __init__(self, cnn: nn.Module, x: torch.Tensor) -> None:
        layers = leaf_layers(cnn)
        if layers is None:
            raise ValueError("the CNN holds layers the incremental pass does not support")
        if x.shape[0] != 1:
            raise ValueError("IncrementalCNN takes one clean image (batch of 1)")
        self.layers = layers
        self.specs = [column_spec(layer) for layer in layers]
        self.acts = [x]
        for layer in layers:
            inp = self.acts[-1]
            self.acts.append(layer(inp.clone() if getattr(layer, "inplace", False) else inp))

    @property
    def features(self) -> torch.Tensor:
        """Clean CNN output (1, C, H', T)."""
        return self.acts[-1]

    def strip(self, x: torch.Tensor, a: int, b: int) -> tuple[torch.Tensor, int, int]:
        """Changed output columns for perturbed input strips ``x`` (N, C, H, b - a) of columns [a, b).

        Returns (values (N, C', H', b' - a'), a', b'): output columns outside [a', b') equal the
        clean features.
        """
        n = x.shape[0]
        for i, (layer, (s, left, right)) in enumerate(zip(self.layers, self.specs)):
            clean_in, clean_out = self.acts[i], self.acts[i + 1]
            width, width_out = clean_in.shape[-1], clean_out.shape[-1]
            oa = max(0, math.floor((a - s - right) / s) + 1)
            ob = min(width_out, math.ceil((b + left) / s))
            if oa >= ob:  # the change fell outside the layer's output (e.g. dropped by a pool)
                return clean_out[..., :0].expand(n, -1, -1, -1), 0, 0
            g0 = max(0, s * oa - left)
            g0 -= g0 % s
            g1 = min(width, s * ob + right)
            if g1 < b:
                x, b = x[..., : g1 - a], g1
            parts = [clean_in[..., g0:a].expand(n, -1, -1, -1), x, clean_in[..., b:g1].expand(n, -1, -1, -1)]
            sub = layer(torch.cat([p for p in parts if p.shape[-1]], dim=-1))
            start = oa - g0 // s
            if sub.shape[-1] < ob - g0 // s:
                raise AssertionError(f"strip of layer {i} ({layer}) too narrow: {sub.shape[-1]} < {ob - g0 // s}")
            x, a, b = sub[..., start : start + ob - oa], oa, ob
        return x, a, b

    def assemble(self, values: torch.Tensor, a: int, b: int) -> torch.Tensor:
        """Clean features with columns [a, b) replaced by ``values`` (N, C, H', b - a)."""
        full = self.features.expand(values.shape[0], -1, -1, -1).clone()
        full[..., a:b] = values
        return full

    def changed(self, values: torch.Tensor, a: int, b: int) -> torch.Tensor:
        """Bool (N,): which strips differ from the clean features at all (others need no head)."""
        if a >= b:
            return torch.zeros(values.shape[0], dtype=torch.bool, device=values.device)
        return (values != self.features[..., a:b]).flatten(1).any(1)


class IncrementalScoring:
    """Log-scores of one text for perturbed column strips of one canvas under a model with
    ``cnn`` + ``head`` (the CRNN): the CNN runs once on the clean input ``x`` (1, 1, H, W), each
    strip recomputes only the feature columns it can change, and the head runs in batches of
    ``batch_size`` on the strips whose features changed (the others keep the clean score).
    Call inside ``eval_mode`` (:meth:`htr.diagnostics.scorer.CRNNScorer.incremental` does)."""

    def __init__(self, model: nn.Module, charset: Charset, x: torch.Tensor, text: str, batch_size: int) -> None:
        self.model, self.charset, self.text, self.batch_size = model, charset, text, batch_size
        self.cnn = IncrementalCNN(model.cnn, x)
        self.device = x.device
        self.clean_log_score = float(self._log_scores(model.head(self.cnn.features))[0])
        self.done: list[tuple[list[Any], np.ndarray]] = []  # (keys, log-scores) of every head batch run
        self._features: list[torch.Tensor] = []
        self._keys: list[Any] = []

    def _log_scores(self, log_probs: torch.Tensor) -> np.ndarray:
        return text_log_score(log_probs, [self.text], self.charset).double().cpu().numpy()

    def add(self, strips: np.ndarray, x0: int, x1: int, keys: list[Any]) -> None:
        """Perturbed copies (N, H, x1 - x0) of canvas columns [x0, x1) (gray 0..255), one key each."""
        x = normalize(strips).to(self.device)
        values, fa, fb = self.cnn.strip(x, x0, x1)
        changed = self.cnn.changed(values, fa, fb).cpu().numpy()
        if changed.any():  # identical features give the clean score: no head run
            self._features.append(self.cnn.assemble(values[torch.from_numpy(changed).to(values.device)], fa, fb))
            self._keys.extend(k for k, c in zip(keys, changed) if c)
            if len(self._keys) >= self.batch_size:
                self.flush()

    def flush(self) -> None:
        """Run the head on the strips collected so far (their scores go to :attr:`done`)."""
        if not self._keys:
            return
        self.done.append((self._keys, self._log_scores(self.model.head(torch.cat(self._features)))))
        self._features, self._keys = [], []
