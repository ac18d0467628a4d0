"""An MLP space for tabular data: depth 1 to N with a width per layer, plus its training knobs."""

from __future__ import annotations

from typing import Any

from search_spaces.base import Arch
from search_spaces.language import Choice, Float, Repeat, Space


class MLPSpace(Space):
    """Layers (each with its own width, present only up to the sampled depth), activation,
    dropout, learning rate and batch size."""

    name = "mlp"
    input_layout = "flat"

    def __init__(
        self,
        max_depth: int = 4,
        widths: list[int] = (32, 64, 128, 256, 512),
        activations: list[str] = ("relu", "tanh", "gelu"),
        dropout: tuple[float, float] = (0.0, 0.5),
        lr: tuple[float, float] = (1e-4, 3e-2),
        batch_sizes: list[int] = (32, 64, 128),
    ):
        if not 1 <= int(max_depth) <= 16:
            raise ValueError(f"max_depth must be between 1 and 16, got {max_depth}")
        bad = [a for a in activations if a not in ACTIVATIONS]
        if bad:
            raise ValueError(f"activations: {bad[0]!r} is not one of {', '.join(ACTIVATIONS)}")
        super().__init__(
            {
                "layers": Repeat(1, int(max_depth), {"width": Choice([int(w) for w in widths])}),
                "activation": Choice(list(activations)),
                "dropout": Float(*dropout),
                "lr": Float(*lr, log=True),
                "batch_size": Choice([int(b) for b in batch_sizes]),
            }
        )

    def describe(self, arch: Arch) -> str:
        widths = "-".join(str(b["width"]) for b in arch["layers"])
        return (
            f"mlp[{widths}] {arch['activation']} drop{arch['dropout']:.2f} "
            f"lr{arch['lr']:.1e} bs{arch['batch_size']}"
        )

    def build_model(self, arch: Arch, input_shape: tuple[int, ...], num_classes: int) -> Any:
        from search_spaces.torch_models.mlp import build_mlp

        return build_mlp(arch, input_shape, num_classes)


ACTIVATIONS = ("relu", "tanh", "gelu", "silu", "elu")
