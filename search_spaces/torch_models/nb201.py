"""The NAS-Bench-201 network: stem, three stages of N cells, residual reduction blocks between
them, then BN-ReLU, global pooling and a linear classifier (Dong & Yang, ICLR 2020).

The original uses C=16, N=5 on 32x32 CIFAR images; the defaults of NB201Space (C=8, N=1) suit
8x8 digits. `search_spaces.nb201.count_costs` mirrors this file's parameter count by hand.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from search_spaces.nb201_cell import EDGES, input_dims


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(c_out),
        )


class Zero(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.mul(0.0)


def make_op(op: str, c: int) -> nn.Module:
    if op == "none":
        return Zero()
    if op == "skip_connect":
        return nn.Identity()
    if op == "nor_conv_1x1":
        return ReLUConvBN(c, c, 1)
    if op == "nor_conv_3x3":
        return ReLUConvBN(c, c, 3)
    if op == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ValueError(f"unknown NB201 operation {op!r}")


class Cell(nn.Module):
    def __init__(self, edges: list[str], c: int):
        super().__init__()
        self.ops = nn.ModuleList(make_op(op, c) for op in edges)

    def forward(self, x: Tensor) -> Tensor:
        nodes = [x]
        for j in (1, 2, 3):
            nodes.append(
                sum(op(nodes[i]) for op, (tj, i) in zip(self.ops, EDGES, strict=True) if tj == j)
            )
        return nodes[3]


class ResidualReduction(nn.Module):
    """Halves the resolution and doubles the channels; ceil-mode pooling keeps odd sizes aligned."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride=2)
        self.conv_b = ReLUConvBN(c_out, c_out, 3)
        self.shortcut = nn.Sequential(
            nn.AvgPool2d(2, stride=2, ceil_mode=True, count_include_pad=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


def skeleton(
    input_shape: tuple[int, ...], num_classes: int, C: int, N: int, cell: Callable[[int], nn.Module]
) -> tuple[nn.Module, list[nn.Module], nn.Module, nn.Module]:
    """The NB201 macro network around its cells: stem, 3 stages of N cells joined by residual
    reductions, head and classifier. Shared by the standalone network and the supernet, so that
    inherited weights mean the same network."""
    stem = nn.Sequential(
        nn.Conv2d(input_dims(input_shape)[0], C, 3, padding=1, bias=False), nn.BatchNorm2d(C)
    )
    layers: list[nn.Module] = []
    c = C
    for stage in range(3):
        if stage:
            layers.append(ResidualReduction(c, 2 * c))
            c *= 2
        layers += [cell(c) for _ in range(N)]
    head = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    return stem, layers, head, nn.Linear(c, num_classes)


class NB201Network(nn.Module):
    def __init__(
        self, edges: list[str], input_shape: tuple[int, ...], num_classes: int, C: int, N: int
    ):
        super().__init__()
        self.input_shape = tuple(input_shape)
        self.stem, layers, self.head, self.classifier = skeleton(
            input_shape, num_classes, C, N, lambda c: Cell(edges, c)
        )
        self.cells = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 3:  # (batch, H, W) single-channel images
            x = x.unsqueeze(1)
        return self.classifier(self.head(self.cells(self.stem(x))))


def build_nb201(
    edges: list[str], input_shape: tuple[int, ...], num_classes: int, C: int = 8, N: int = 1
) -> nn.Module:
    return NB201Network(list(edges), tuple(input_shape), int(num_classes), int(C), int(N))
