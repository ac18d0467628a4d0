"""A small transformer-encoder space for sequences.

The model width is `heads * head_dim`, so every sample has a width divisible by its head count.
"""

from __future__ import annotations

from typing import Any

from search_spaces.base import Arch
from search_spaces.language import Choice, Float, Int, Space
from search_spaces.options import check_int, check_positive_ints, check_range


class TransformerSpace(Space):
    """Pre-norm encoder layers over a linear embedding plus a learned positional embedding,
    mean-pooled into a linear classifier."""

    name = "transformer"
    input_layout = "sequence"

    def __init__(
        self,
        max_layers: int = 2,
        heads: list[int] = (1, 2, 4),
        head_dims: list[int] = (8, 16),
        ff_widths: list[int] = (32, 64, 128),
        dropout: tuple[float, float] = (0.0, 0.2),
        lr: tuple[float, float] = (1e-3, 1e-2),
        batch_sizes: list[int] = (32, 64, 128),
    ):
        super().__init__(
            {
                "layers": Int(1, check_int("max_layers", max_layers, 1, 12)),
                "heads": Choice(check_positive_ints("heads", heads)),
                "head_dim": Choice(check_positive_ints("head_dims", head_dims)),
                "ff": Choice(check_positive_ints("ff_widths", ff_widths)),
                "dropout": Float(*check_range("dropout", dropout, 0.0, 0.9)),
                "lr": Float(*check_range("lr", lr, 1e-7, 10.0), log=True),
                "batch_size": Choice(check_positive_ints("batch_sizes", batch_sizes)),
            }
        )

    def describe(self, arch: Arch) -> str:
        return (
            f"tfm L{arch['layers']} h{arch['heads']} d{arch['heads'] * arch['head_dim']} "
            f"ff{arch['ff']} drop{arch['dropout']:.2f} lr{arch['lr']:.1e} bs{arch['batch_size']}"
        )

    def build_model(self, arch: Arch, input_shape: tuple[int, ...], num_classes: int) -> Any:
        from search_spaces.torch_models.transformer import build_transformer

        return build_transformer(arch, input_shape, num_classes)
