"""htr-shortcuts: what a handwritten text recognizer sees, and whether augmentation removes its shortcuts."""

__version__ = "0.1.0"
