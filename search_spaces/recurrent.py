"""A recurrent space for sequences: RNN, GRU or LSTM cells, stacked and optionally bidirectional."""

from __future__ import annotations

from typing import Any

from search_spaces.base import Arch
from search_spaces.language import Choice, Float, Int, Space
from search_spaces.options import check_int, check_positive_ints, check_range, check_subset

CELLS = ("rnn", "gru", "lstm")


class RecurrentSpace(Space):
    """Cell type, 1 to `max_layers` layers of one hidden size, direction, dropout, lr, batch size.

    The classifier reads the last layer's final hidden state (both directions when bidirectional).
    """

    name = "recurrent"
    input_layout = "sequence"

    def __init__(
        self,
        cells: list[str] = CELLS,
        max_layers: int = 2,
        hidden_sizes: list[int] = (32, 64, 128),
        bidirectional: list[bool] = (False, True),
        dropout: tuple[float, float] = (0.0, 0.3),
        lr: tuple[float, float] = (1e-3, 3e-2),
        batch_sizes: list[int] = (32, 64, 128),
    ):
        check_subset("cells", cells, CELLS)
        check_subset("bidirectional", bidirectional, (False, True))
        super().__init__(
            {
                "cell": Choice(list(cells)),
                "layers": Int(1, check_int("max_layers", max_layers, 1, 8)),
                "hidden": Choice(check_positive_ints("hidden_sizes", hidden_sizes)),
                "bidirectional": Choice(list(bidirectional)),
                "dropout": Float(*check_range("dropout", dropout, 0.0, 0.9)),
                "lr": Float(*check_range("lr", lr, 1e-7, 10.0), log=True),
                "batch_size": Choice(check_positive_ints("batch_sizes", batch_sizes)),
            }
        )

    def describe(self, arch: Arch) -> str:
        bi = " bi" if arch["bidirectional"] else ""
        return (
            f"{arch['cell']} {arch['layers']}x{arch['hidden']}{bi} drop{arch['dropout']:.2f} "
            f"lr{arch['lr']:.1e} bs{arch['batch_size']}"
        )

    def build_model(self, arch: Arch, input_shape: tuple[int, ...], num_classes: int) -> Any:
        from search_spaces.torch_models.recurrent import build_recurrent

        return build_recurrent(arch, input_shape, num_classes)
