"""Your network, nasorch's training loop: `build(arch, input_shape, num_classes)` returns the
torch module for one architecture of the search space in own_model.yaml. nasorch trains it,
costs it for the constraints, checkpoints it, resumes it and logs the best one."""

from __future__ import annotations

import torch
from torch import nn


def build(arch: dict, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    channels, size = input_shape[0], input_shape[-1]
    layers: list[nn.Module] = []
    for block in arch["blocks"]:  # a variable number of conv blocks, each with its own width
        layers += [
            nn.Conv2d(channels, block["width"], arch["kernel"], padding=arch["kernel"] // 2),
            nn.BatchNorm2d(block["width"]),
            nn.GELU() if arch["activation"] == "gelu" else nn.ReLU(),
        ]
        channels = block["width"]
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(arch["dropout"])]
    layers.append(nn.Linear(channels, num_classes))
    del size  # any image size: the pooling makes the head independent of it
    return nn.Sequential(*layers)


if __name__ == "__main__":  # a quick look at one network
    arch = {"blocks": [{"width": 16}], "kernel": 3, "activation": "relu", "dropout": 0.1}
    print(build(arch, (1, 8, 8), 10)(torch.zeros(2, 1, 8, 8)).shape)
