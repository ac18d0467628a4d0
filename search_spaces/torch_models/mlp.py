from __future__ import annotations

import math
from typing import Any

from torch import nn

ACTIVATION_MODULES = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "elu": nn.ELU,
}


def build_mlp(arch: dict[str, Any], input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    layers: list[nn.Module] = [nn.Flatten()]
    width_in = math.prod(input_shape)
    for block in arch["layers"]:
        layers += [
            nn.Linear(width_in, block["width"]),
            ACTIVATION_MODULES[arch["activation"]](),
            nn.Dropout(arch["dropout"]),
        ]
        width_in = block["width"]
    layers.append(nn.Linear(width_in, num_classes))
    return nn.Sequential(*layers)
