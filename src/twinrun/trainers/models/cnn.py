"""A small MNIST CNN classifier: convolutions, batch norm and dropout.

Batch norm adds buffers (running statistics) that must be saved and compared; dropout draws from
the global RNG every training step. Both are classic sources of irreproducibility.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from twinrun.trainers.models import check_sizes


class CNNClassifier(nn.Module):
    """``len(channels)`` x (conv3x3 -> [BN] -> ReLU -> maxpool2), then dropout -> FC -> dropout -> FC."""

    def __init__(
        self,
        channels: Sequence[int] = (16, 32),
        hidden: int = 64,
        dropout: float = 0.25,
        batch_norm: bool = True,
        num_classes: int = 10,
        image_size: int = 28,
    ) -> None:
        if isinstance(channels, str | bytes) or not isinstance(channels, Sequence) or not channels:
            raise ValueError(f"channels={channels!r} is not usable: give a list of integers >= 1")
        check_sizes(hidden=hidden, num_classes=num_classes, image_size=image_size)
        check_sizes(**{f"channels[{i}]": c for i, c in enumerate(channels)})
        super().__init__()
        layers: list[nn.Module] = []
        in_ch, size = 1, image_size
        for out_ch in channels:
            layers.append(nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out_ch))
            layers += [nn.ReLU(), nn.MaxPool2d(2)]
            in_ch, size = out_ch, size // 2
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(in_ch * size * size, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x.view(-1, 1, 28, 28)))  # [B, num_classes] logits
