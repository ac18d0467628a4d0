"""Builder for `TransformerSpace`: embed, add learned positions, encode, mean-pool, classify."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class TransformerClassifier(nn.Module):
    def __init__(self, arch: dict[str, Any], steps: int, features: int, num_classes: int):
        super().__init__()
        width = arch["heads"] * arch["head_dim"]
        self.embed = nn.Linear(features, width)
        self.position = nn.Parameter(torch.zeros(1, steps, width))
        nn.init.normal_(self.position, std=0.02)
        layer = nn.TransformerEncoderLayer(
            width,
            arch["heads"],
            arch["ff"],
            dropout=arch["dropout"],
            activation="gelu",
            batch_first=True,
            norm_first=True,  # pre-norm trains stably without warm-up at these sizes
        )
        # Nested tensors only help with padding masks, which fixed-length inputs never have.
        self.encoder = nn.TransformerEncoder(layer, arch["layers"], enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.encoder(self.embed(x) + self.position)
        return self.head(self.norm(h).mean(dim=1))


def build_transformer(
    arch: dict[str, Any], input_shape: tuple[int, ...], num_classes: int
) -> nn.Module:
    if len(input_shape) != 2:
        raise ValueError(f"transformer models need (steps, features) inputs, got {input_shape}")
    return TransformerClassifier(arch, input_shape[0], input_shape[1], num_classes)
