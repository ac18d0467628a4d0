"""Builder for `ConvSpace`: ResNet-style basic blocks in stages, global average pool, classifier."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class Block(nn.Module):
    """conv-BN-ReLU-conv-BN, plus a (projected) shortcut when residual, then ReLU."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, residual: bool):
        super().__init__()
        pad = kernel // 2
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, kernel, stride, pad, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, kernel, 1, pad, bias=False),
            nn.BatchNorm2d(c_out),
        )
        self.shortcut: nn.Module | None = None
        if residual:
            same = c_in == c_out and stride == 1
            self.shortcut = nn.Identity() if same else nn.Conv2d(c_in, c_out, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return torch.relu(out)


def build_conv(arch: dict[str, Any], input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    if len(input_shape) != 3:
        raise ValueError(f"conv models need (channels, height, width) inputs, got {input_shape}")
    c_in, h, w = input_shape
    kernel, residual = arch["kernel"], arch["residual"]
    layers: list[nn.Module] = []
    for stage in arch["stages"]:
        # Track the map size so strides and pools stop at 1x1 instead of failing on tiny inputs.
        stride = stage["stride"] if min(h, w) > 1 else 1
        for b in range(stage["blocks"]):
            layers.append(Block(c_in, stage["channels"], kernel, stride if b == 0 else 1, residual))
            c_in = stage["channels"]
        h, w = -(-h // stride), -(-w // stride)
        if stage["pool"] != "none" and min(h, w) > 1:
            pool = nn.MaxPool2d if stage["pool"] == "max" else nn.AvgPool2d
            layers.append(pool(2, ceil_mode=True))
            h, w = -(-h // 2), -(-w // 2)
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, num_classes)]
    return nn.Sequential(*layers)
