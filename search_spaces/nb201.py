"""The NAS-Bench-201 cell space: a 4-node cell whose 6 edges each carry one of 5 operations.

Node j of the cell sums the outputs of every edge i -> j (i < j); node 0 is the cell input and
node 3 its output. The standard string form lists the edges grouped by target node:

    |op~0|+|op~0|op~1|+|op~0|op~1|op~2|        (edges 1<-0; 2<-0, 2<-1; 3<-0, 3<-1, 3<-2)

An arch is `{"edges": [op_1_0, op_2_0, op_2_1, op_3_0, op_3_1, op_3_2]}`, so it travels through
JSON unchanged, and `key(arch)` is the string form, which is also how benchmark tables name cells.
Everything here is pure Python; the torch network lives in `torch_models/nb201.py`, and
`objectives` counts that network's parameters and FLOPs analytically, without torch.
"""

from __future__ import annotations

import random
from typing import Any

from search_spaces.base import Arch, SearchSpace, SearchSpaceError
from search_spaces.nb201_cell import (  # noqa: F401  (re-exported: the space's vocabulary)
    EDGE_NAMES,
    EDGES,
    OPS,
    arch_to_string,
    input_dims,
    parse_arch,
)

_CONV_KERNEL = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}


def _half(size: int) -> int:
    # A stride-2 3x3 conv with padding 1 (and the ceil-mode pool beside it) rounds up.
    return (size + 1) // 2


def count_costs(
    edges: list[str], C: int, N: int, input_shape: tuple[int, ...], num_classes: int
) -> dict[str, int]:
    """Parameters and FLOPs (multiply-accumulates of convolutions and the classifier, the usual
    NAS convention) of the network `torch_models/nb201.build_nb201` builds, counted by hand."""
    c_in, h, w = input_dims(input_shape)
    params = 9 * c_in * C + 2 * C  # stem conv + BN
    flops = 9 * c_in * C * h * w
    cell_params = {c: 0 for c in (C, 2 * C, 4 * C)}
    for op in edges:
        k = _CONV_KERNEL.get(op)
        if k:
            for c in cell_params:
                cell_params[c] += k * k * c * c + 2 * c  # conv + BN (affine)
    c = C
    for stage in range(3):
        if stage:
            c_out = 2 * c
            h, w = _half(h), _half(w)
            # Residual reduction block: 3x3 stride-2 conv, 3x3 conv, 1x1 shortcut after pooling.
            params += 9 * c * c_out + 2 * c_out + 9 * c_out * c_out + 2 * c_out + c * c_out
            flops += (9 * c * c_out + 9 * c_out * c_out + c * c_out) * h * w
            c = c_out
        params += N * cell_params[c]
        flops += (
            N * sum(_CONV_KERNEL[op] ** 2 for op in edges if op in _CONV_KERNEL) * c * c * h * w
        )
    params += 2 * c + c * num_classes + num_classes  # last BN, classifier
    flops += c * num_classes
    return {"num_params": params, "flops": flops}


class NB201Space(SearchSpace):
    """NAS-Bench-201's 15,625 cells, with a network sized by `C` (stem channels) and `N` (cells
    per stage); `input_shape` and `num_classes` size the costs that `objectives` reports."""

    name = "nb201"
    input_layout = "image"
    ops = OPS

    def __init__(
        self,
        C: int = 8,
        N: int = 1,
        input_shape: tuple[int, ...] = (1, 8, 8),
        num_classes: int = 10,
    ):
        if int(C) < 1 or int(N) < 1:
            raise ValueError(f"C and N must be positive, got C={C}, N={N}")
        if int(num_classes) < 1:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        self.C, self.N, self.num_classes = int(C), int(N), int(num_classes)
        self.input_shape = input_dims(tuple(input_shape))

    def sample(self, rng: random.Random) -> Arch:
        return {"edges": [rng.choice(OPS) for _ in EDGES]}

    def size(self) -> float:
        return float(len(OPS) ** len(EDGES))

    def mutate(self, arch: Arch, rng: random.Random) -> Arch:
        edges = list(arch["edges"])
        i = rng.randrange(len(edges))
        edges[i] = rng.choice([op for op in OPS if op != edges[i]])
        return {"edges": edges}

    def neighbours(self, arch: Arch, rng: random.Random, limit: int = 64) -> list[Arch]:
        """All 24 single-edge changes, in random order (exact, unlike the sampled default)."""
        out = []
        for i, current in enumerate(arch["edges"]):
            for op in OPS:
                if op != current:
                    edges = list(arch["edges"])
                    edges[i] = op
                    out.append({"edges": edges})
        rng.shuffle(out)
        return out[:limit]

    def encode(self, arch: Arch) -> list[float]:
        return [1.0 if op == o else 0.0 for op in arch["edges"] for o in OPS]

    def key(self, arch: Arch) -> str:
        return arch_to_string(arch)

    def describe(self, arch: Arch) -> str:
        return arch_to_string(arch)

    def to_params(self, arch: Arch) -> dict[str, Any]:
        return dict(zip(EDGE_NAMES, arch["edges"], strict=True))

    def suggest(self, trial: Any) -> Arch:
        return {"edges": [trial.suggest_categorical(name, list(OPS)) for name in EDGE_NAMES]}

    def validate(self, arch: Arch) -> Arch:
        if not isinstance(arch, dict) or set(arch) != {"edges"}:
            raise SearchSpaceError(f"an NB201 arch is {{'edges': [6 ops]}}, got {arch!r}")
        edges = arch["edges"]
        if not isinstance(edges, list) or len(edges) != len(EDGES):
            raise SearchSpaceError(f"edges: expected a list of {len(EDGES)} ops, got {edges!r}")
        for name, op in zip(EDGE_NAMES, edges, strict=True):
            if op not in OPS:
                raise SearchSpaceError(f"edges.{name}: {op!r} is not one of {', '.join(OPS)}")
        return arch

    def from_string(self, text: str) -> Arch:
        return parse_arch(text)

    def to_string(self, arch: Arch) -> str:
        return arch_to_string(arch)

    def objectives(self, arch: Arch) -> dict[str, float]:
        return count_costs(arch["edges"], self.C, self.N, self.input_shape, self.num_classes)

    def build_model(self, arch: Arch, input_shape: tuple[int, ...], num_classes: int) -> Any:
        from search_spaces.torch_models.nb201 import build_nb201

        return build_nb201(arch["edges"], input_shape, num_classes, C=self.C, N=self.N)
