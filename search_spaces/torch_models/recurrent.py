"""Builder for `RecurrentSpace`: stacked (bi)RNN/GRU/LSTM; the final hidden state is classified."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

CELL_MODULES = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


class RecurrentClassifier(nn.Module):
    def __init__(self, arch: dict[str, Any], features: int, num_classes: int):
        super().__init__()
        self.rnn = CELL_MODULES[arch["cell"]](
            features,
            arch["hidden"],
            num_layers=arch["layers"],
            batch_first=True,
            bidirectional=arch["bidirectional"],
            # torch applies dropout between layers only, and warns when there is just one.
            dropout=arch["dropout"] if arch["layers"] > 1 else 0.0,
        )
        self.directions = 2 if arch["bidirectional"] else 1
        self.dropout = nn.Dropout(arch["dropout"])
        self.head = nn.Linear(arch["hidden"] * self.directions, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, state = self.rnn(x)
        h = state[0] if isinstance(state, tuple) else state  # LSTM returns (h, c)
        # h is (layers * directions, batch, hidden); keep the last layer's directions.
        last = h[-self.directions :].transpose(0, 1).reshape(x.shape[0], -1)
        return self.head(self.dropout(last))


def build_recurrent(
    arch: dict[str, Any], input_shape: tuple[int, ...], num_classes: int
) -> nn.Module:
    if len(input_shape) != 2:
        raise ValueError(f"recurrent models need (steps, features) inputs, got {input_shape}")
    return RecurrentClassifier(arch, input_shape[1], num_classes)
