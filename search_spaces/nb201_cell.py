"""The NAS-Bench-201 cell's vocabulary: its operations, its edges and their string form.

Shared by the space (`nb201.py`) and the torch networks (`torch_models/`), so that neither
imports the other.
"""

from __future__ import annotations

from search_spaces.base import Arch, SearchSpaceError

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
# (target node, source node) of each edge, in the order of the string form.
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
EDGE_NAMES = tuple(f"edge_{j}_{i}" for j, i in EDGES)


def parse_arch(text: str) -> Arch:
    """`|nor_conv_3x3~0|+|...|` -> `{"edges": [...]}`; a malformed string is a SearchSpaceError."""
    if not isinstance(text, str):
        raise SearchSpaceError(f"expected an NB201 cell string, got {text!r}")
    nodes = text.strip().split("+")
    if len(nodes) != 3:
        raise SearchSpaceError(
            f"{text!r}: expected 3 node groups separated by '+', got {len(nodes)}"
        )
    edges: list[str] = []
    for j, group in enumerate(nodes, start=1):
        g = group.strip()
        if not (g.startswith("|") and g.endswith("|")):
            raise SearchSpaceError(f"{text!r}: node group {g!r} must start and end with '|'")
        items = g[1:-1].split("|")
        if len(items) != j:
            raise SearchSpaceError(f"{text!r}: node {j} needs {j} inputs, got {len(items)}")
        for i, item in enumerate(items):
            op, sep, src = item.partition("~")
            if not sep or src != str(i):
                raise SearchSpaceError(f"{text!r}: {item!r} should be 'op~{i}'")
            if op not in OPS:
                raise SearchSpaceError(
                    f"{text!r}: unknown operation {op!r} (one of {', '.join(OPS)})"
                )
            edges.append(op)
    return {"edges": edges}


def arch_to_string(arch: Arch) -> str:
    """The standard string form of a (valid) arch."""
    e = arch["edges"]
    return f"|{e[0]}~0|+|{e[1]}~0|{e[2]}~1|+|{e[3]}~0|{e[4]}~1|{e[5]}~2|"


def input_dims(input_shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(channels, height, width) of an image input; a 2-d shape is one channel."""
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 2:
        return (1, *shape)
    if len(shape) != 3:
        raise SearchSpaceError(f"input_shape must be (C, H, W) or (H, W), got {input_shape}")
    return shape  # type: ignore[return-value]
