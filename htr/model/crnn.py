"""SimpleHTR's CRNN: 5 conv blocks -> 2-layer BiLSTM -> per-frame class log-probs."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

KERNELS = (5, 5, 3, 3, 3)
CHANNELS = (32, 64, 128, 128, 256)
POOLS = ((2, 2), (2, 2), (2, 1), (2, 1), (2, 1))  # (h, w): 32x128 -> 1x32


class BlurPool2d(nn.Module):
    """Anti-aliased max-pooling (Zhang 2019): dense max (stride 1), then blur and subsample.

    The [1, 2, 1] binomial filter is applied only along the axes that are subsampled, so a
    (2, 1) pool blurs vertically only. Output size equals that of ``nn.MaxPool2d(stride)``.
    """

    def __init__(self, channels: int, stride: tuple[int, int]) -> None:
        super().__init__()
        self.stride = stride
        self.channels = channels
        taps = torch.tensor([1.0, 2.0, 1.0])
        kh = taps if stride[0] > 1 else torch.ones(1)
        kw = taps if stride[1] > 1 else torch.ones(1)
        kernel = torch.outer(kh, kw)
        kernel = kernel / kernel.sum()
        self.register_buffer("kernel", kernel.expand(channels, 1, *kernel.shape).contiguous(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sh, sw = self.stride
        # Dense max over the same window as the plain pool, same-size output.
        x = F.pad(x, (0, sw - 1, 0, sh - 1), mode="replicate")
        x = F.max_pool2d(x, kernel_size=self.stride, stride=1)
        ph, pw = (self.kernel.shape[-2] // 2, self.kernel.shape[-1] // 2)
        x = F.pad(x, (pw, pw, ph, ph), mode="reflect" if max(ph, pw) > 0 else "constant")
        return F.conv2d(x, self.kernel, stride=self.stride, groups=self.channels)


class CRNN(nn.Module):
    """Input (B, 1, 32, 128) in 0..1 -> log-probs (B, 32, num_classes); class 0 is the blank."""

    def __init__(
        self,
        num_classes: int,
        pooling: str = "max",
        lstm_units: int = 256,
        lstm_layers: int = 2,
        channels: tuple[int, ...] = CHANNELS,
    ) -> None:
        super().__init__()
        if pooling not in ("max", "blur"):
            raise ValueError(f"pooling must be 'max' or 'blur', got {pooling!r}")
        if len(channels) != len(KERNELS):
            raise ValueError(f"channels: need {len(KERNELS)} values (one per conv block), got {list(channels)}")
        blocks = []
        in_ch = 1
        for k, ch, pool in zip(KERNELS, channels, POOLS):
            blocks.append(
                nn.Sequential(
                    nn.Conv2d(in_ch, ch, k, padding=k // 2, bias=False),
                    nn.BatchNorm2d(ch),
                    nn.ReLU(inplace=True),
                    nn.MaxPool2d(pool, pool) if pooling == "max" else BlurPool2d(ch, pool),
                )
            )
            in_ch = ch
        self.cnn = nn.Sequential(*blocks)
        self.rnn = nn.LSTM(in_ch, lstm_units, num_layers=lstm_layers, bidirectional=True, batch_first=True)
        self.classifier = nn.Linear(2 * lstm_units, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """CNN feature sequence (B, channels[-1], 1, 32) of images (B, 1, 32, 128)."""
        return self.cnn(x)

    def head(self, features: torch.Tensor) -> torch.Tensor:
        """BiLSTM + classifier on CNN features (B, C, 1, T) -> log-probs (B, T, num_classes)."""
        seq = features.squeeze(2).transpose(1, 2)
        seq, _ = self.rnn(seq)
        # float32 log-probs even under bf16 autocast: CTC and decoding need the precision.
        return self.classifier(seq).float().log_softmax(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
