"""A one-shot supernet over the NAS-Bench-201 cell: weight sharing (ENAS, Single Path One-Shot).

The skeleton and sizes are those of `nb201.py` (stem, three stages of N cells, residual
reductions, BN-ReLU-pool head, classifier), but every edge of every cell holds all five candidate
operations and a forward pass takes an arch and runs the chosen op on each edge. Trained once
with uniform path sampling (a random arch per batch, Guo et al. 2020), it scores any arch with the
weights that arch inherits; `extract` copies them into the standalone `NB201Network`, which then
computes the same function, so "inherited weights" means exactly that network.

Differentiable search (DARTS and its variants, `nb201_darts.py`) runs the same supernet with a
weight per edge and operation instead of a cell: each edge then outputs the weighted sum of its
operations (the mixed operation). One-hot weights compute exactly the network of that cell.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator

import torch
from torch import Tensor, nn

from search_spaces.nb201_cell import EDGES, OPS
from search_spaces.torch_models.nb201 import NB201Network, make_op, skeleton

# Mixture weights of every edge (rows, in EDGES order) and operation (columns, in OPS order),
# with the (edge, op) pairs whose weight is not exactly zero, found once per forward pass.
Mixture = tuple[Tensor, list[list[bool]]]


class MixedEdge(nn.Module):
    """One edge with every operation that has weights or work ("none" is handled by the cell)."""

    def __init__(self, c: int):
        super().__init__()
        self.ops = nn.ModuleDict({op: make_op(op, c) for op in OPS if op != "none"})

    def forward(self, x: Tensor, op: str) -> Tensor:
        return self.ops[op](x)

    def mixed(self, x: Tensor, weights: Tensor, active: list[bool]) -> list[Tensor]:
        """The weighted outputs of the operations this edge runs. "none" adds zero and its
        weight gets no gradient, as in DARTS; an op of weight exactly 0 (a hard sample) is not
        run at all, which is what makes GDAS cost one operation per edge."""
        return [
            weights[k] * self.ops[op](x) for k, op in enumerate(OPS) if op != "none" and active[k]
        ]


class SuperCell(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.ops = nn.ModuleList(MixedEdge(c) for _ in EDGES)

    def forward(self, x: Tensor, edges: list[str] | Mixture) -> Tensor:
        nodes = [x]
        for j in (1, 2, 3):
            terms: list[Tensor] = []
            for e, (edge, (tj, i)) in enumerate(zip(self.ops, EDGES, strict=True)):
                if tj != j:
                    continue
                if isinstance(edges, tuple):
                    terms += edge.mixed(nodes[i], edges[0][e], edges[1][e])
                elif edges[e] != "none":
                    terms.append(edge(nodes[i], edges[e]))
            # A node whose inputs are all "none" is zero, as the standalone cell computes it.
            nodes.append(sum(terms[1:], terms[0]) if terms else torch.zeros_like(x))
        return nodes[3]


class NB201Supernet(nn.Module):
    def __init__(self, input_shape: tuple[int, ...], num_classes: int, C: int = 8, N: int = 1):
        super().__init__()
        self.input_shape, self.num_classes, self.C, self.N = tuple(input_shape), num_classes, C, N
        self.stem, layers, self.head, self.classifier = skeleton(
            input_shape, num_classes, C, N, SuperCell
        )
        self.cells = nn.ModuleList(layers)  # same indices as NB201Network.cells

    def forward(self, x: Tensor, edges: list[str] | Tensor) -> Tensor:
        """The network of the cell `edges` (one op name per edge), or, given a tensor of
        mixture weights (one row per edge, one column per op of OPS), the mixed network."""
        if x.dim() == 3:  # (batch, H, W) single-channel images
            x = x.unsqueeze(1)
        if isinstance(edges, Tensor):
            edges = (edges, (edges != 0).tolist())  # one device sync per pass, not per op
        x = self.stem(x)
        for layer in self.cells:
            x = layer(x, edges) if isinstance(layer, SuperCell) else layer(x)
        return self.classifier(self.head(x))

    def extract(self, edges: list[str]) -> NB201Network:
        """The standalone network of `edges` with the weights (and BN statistics) it inherits."""
        net = NB201Network(list(edges), self.input_shape, self.num_classes, self.C, self.N)
        mine = self.state_dict()
        cell_param = re.compile(r"cells\.(\d+)\.ops\.(\d+)\.(.*)")
        state = {}
        for name in net.state_dict():
            m = cell_param.fullmatch(name)
            if m and isinstance(self.cells[int(m[1])], SuperCell):
                k, e, rest = m.groups()
                name_here = f"cells.{k}.ops.{e}.ops.{edges[int(e)]}.{rest}"
            else:
                name_here = name
            state[name] = mine[name_here]
        net.load_state_dict(state)
        return net


def _batches(n: int, batch_size: int, gen: torch.Generator) -> Iterator[Tensor]:
    order = torch.randperm(n, generator=gen)
    for i in range(0, n, batch_size):
        yield order[i : i + batch_size]


def train_supernet(
    net: NB201Supernet,
    x: Tensor,
    y: Tensor,
    *,
    epochs: int,
    rng: random.Random,
    lr: float = 0.05,
    batch_size: int = 64,
) -> None:
    """Uniform path sampling: each batch trains one arch drawn uniformly, so every op on every
    edge gets an equal share of updates. SGD with momentum and a cosine schedule."""
    gen = torch.Generator().manual_seed(rng.randrange(2**31))
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4, nesterov=True)
    steps = epochs * -(-len(x) // batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    loss_fn = nn.CrossEntropyLoss()
    net.train()
    for _ in range(epochs):
        for idx in _batches(len(x), batch_size, gen):
            edges = [rng.choice(OPS) for _ in EDGES]
            opt.zero_grad()
            loss_fn(net(x[idx], edges), y[idx]).backward()
            opt.step()
            sched.step()


@torch.no_grad()
def score(
    net: NB201Supernet,
    edges: list[str],
    x_val: Tensor,
    y_val: Tensor,
    *,
    bn: str = "recalibrate",
    x_calib: Tensor | None = None,
    calib_batch: int = 256,
) -> tuple[float, float]:
    """(validation accuracy, validation loss) of `edges` with inherited weights.

    Shared BN statistics belong to no arch in particular, so they are not used: "recalibrate"
    recomputes them for this arch on `x_calib` (training images, standard in one-shot NAS) and
    then evaluates; "batch" normalises with the statistics of the validation batch itself.
    """
    if bn == "recalibrate":
        if x_calib is None:
            raise ValueError("bn='recalibrate' needs x_calib")
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.reset_running_stats()
                m.momentum = None  # a cumulative average over the calibration batches
        net.train()
        for i in range(0, len(x_calib), calib_batch):
            net(x_calib[i : i + calib_batch], edges)
        net.eval()
    elif bn == "batch":
        net.train()
    else:
        raise ValueError(f"bn must be 'recalibrate' or 'batch', got {bn!r}")
    logits = net(x_val, edges)
    loss = nn.functional.cross_entropy(logits, y_val).item()
    acc = (logits.argmax(1) == y_val).float().mean().item()
    return acc, loss
