"""Weight-sharing search (one-shot NAS) over NAS-Bench-201: rank by a supernet, train the best.

On the first ask, a supernet holding every operation on every edge is trained once on digits
with uniform path sampling (`torch_models/nb201_supernet.py`), in a Ray task when Ray is running
(on a GPU with `gpus`), and `candidates` distinct random cells are scored with the weights they
inherit (seconds for all of them). Asks then hand out the `top_k` best-scored cells for
standalone training, followed by `calibration` cells spread evenly over the rest of the ranking,
so that the Kendall tau between supernet score and trained result (`summary()`) is measured over
the whole range of scores, not only among near-ties at the top; after those, the remaining cells
in ranking order. The state keeps the scores and the ranking,
not the weights: a restored search continues with the same suggestions without retraining.
"""

from __future__ import annotations

import itertools
import math
import sys
import time
from typing import Any

from orchestrator.searchers._common import on_a_worker
from orchestrator.searchers.base import Strategy
from search_spaces.base import Arch, SearchSpace
from search_spaces.nb201 import EDGES, OPS, NB201Space

# Training images that recompute an arch's BN statistics before it is scored (the split is
# already shuffled and stratified, so the first ones are a fair sample).
CALIBRATION_IMAGES = 512


class SupernetSearch(Strategy):
    def __init__(
        self,
        space: SearchSpace,
        *,
        mode: str = "max",
        seed: int | None = None,
        supernet_epochs: int = 30,
        candidates: int = 200,
        top_k: int = 10,
        calibration: int = 20,
        bn: str = "recalibrate",
        score_by: str = "accuracy",
        lr: float = 0.05,
        batch_size: int = 64,
        threads: int = 1,
        gpus: float = 0,
    ):
        super().__init__(space, mode=mode, seed=seed)
        if not isinstance(space, NB201Space):
            raise ValueError(
                f"the supernet covers the nb201 space only, not {getattr(space, 'name', space)!r}"
            )
        if supernet_epochs < 1 or candidates < 1 or top_k < 0 or calibration < 0 or gpus < 0:
            raise ValueError(
                "need supernet_epochs >= 1, candidates >= 1, top_k >= 0, calibration >= 0 "
                "and gpus >= 0"
            )
        if bn not in ("recalibrate", "batch") or score_by not in ("accuracy", "loss"):
            raise ValueError(
                f"bn is 'recalibrate' or 'batch' and score_by 'accuracy' or 'loss', "
                f"got {bn!r} and {score_by!r}"
            )
        self.options = dict(
            epochs=supernet_epochs, lr=lr, batch_size=batch_size, bn=bn, threads=threads, gpus=gpus
        )
        self.n_candidates, self.top_k, self.calibration = candidates, top_k, calibration
        self.score_by = score_by
        self.scores: dict[str, float] = {}  # cell string -> supernet score (larger is better)
        self.order: list[str] = []  # the order in which cells are handed out
        self.n_asked = 0
        self.results: dict[str, float] = {}  # cell string -> trained result (larger is better)
        self.timings: dict[str, float] = {}

    # ---- ask / tell ----------------------------------------------------------------------
    def ask(self) -> Arch | None:
        if not self.order:
            self._rank()
        if self.n_asked >= len(self.order):
            return None  # every candidate has been handed out
        self.n_asked += 1
        return self.space.from_string(self.order[self.n_asked - 1])

    def update(self, arch: Arch, value: float | None) -> None:
        key = self.space.key(arch)
        if value is not None and key in self.scores:  # a cell it never scored cannot count
            self.results[key] = self.score(value)

    def summary(self) -> dict[str, float]:
        out = dict(self.timings)
        keys = [k for k in self.order if k in self.results]
        out["kendall_tau_n"] = float(len(keys))
        tau = kendall_tau([self.scores[k] for k in keys], [self.results[k] for k in keys])
        if tau is not None:
            out["kendall_tau"] = tau
        return out

    # ---- the supernet --------------------------------------------------------------------
    def _candidates(self) -> list[Arch]:
        total = len(OPS) ** len(EDGES)
        if self.n_candidates >= total:  # the whole space (15,625 cells)
            return [{"edges": list(e)} for e in itertools.product(OPS, repeat=len(EDGES))]
        seen: dict[str, Arch] = {}
        while len(seen) < self.n_candidates:
            arch = self.space.sample(self.rng)
            seen.setdefault(self.space.key(arch), arch)
        return list(seen.values())

    def _rank(self) -> None:
        candidates = self._candidates()
        print(
            f"nasorch: training the supernet ({self.options['epochs']} epochs) to rank "
            f"{len(candidates)} cells; trials start after it",
            file=sys.stderr,
            flush=True,
        )
        cells = [arch["edges"] for arch in candidates]
        # The rest of the random stream goes with the job, so where it runs changes nothing.
        job = (cells, self.options, self.space.C, self.space.N, self.rng)
        train = on_a_worker(
            train_and_score, cpus=self.options["threads"], gpus=self.options["gpus"]
        )
        results, self.timings = train(*job)
        for arch, (acc, loss) in zip(candidates, results):
            self.scores[self.space.key(arch)] = acc if self.score_by == "accuracy" else -loss
        # Ties (accuracy moves in steps of 1/len(val)) are broken by the cell string: stable.
        ranking = sorted(self.scores, key=lambda k: (-self.scores[k], k))
        self.order = hand_out_order(ranking, self.top_k, self.calibration)
        print(
            f"nasorch: supernet trained {self.options['epochs']} epochs in "
            f"{self.timings['supernet_train_seconds']:.1f} s, scored {len(candidates)} cells in "
            f"{self.timings['supernet_score_seconds']:.1f} s",
            file=sys.stderr,
        )

    # ---- state ---------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            **super().state(),
            "scores": self.scores,
            "order": self.order,
            "n_asked": self.n_asked,
            "results": self.results,
            "timings": self.timings,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self.scores = dict(state["scores"])
        self.order = list(state["order"])
        self.n_asked = state["n_asked"]
        self.results = dict(state["results"])
        self.timings = dict(state["timings"])


def train_and_score(
    cells: list[list[str]], options: dict[str, Any], C: int, N: int, rng: Any
) -> tuple[list[tuple[float, float]], dict[str, float]]:
    """Train a supernet on digits and score each cell with inherited weights: (validation
    accuracy, loss) per cell, and the timings. Uses CUDA when this process has a GPU."""
    import torch

    from search_spaces.torch_models.nb201_supernet import NB201Supernet, score, train_supernet
    from trainables import datasets

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    data = datasets.load("digits", "image")
    x, y = torch.from_numpy(data.x_train).to(device), torch.from_numpy(data.y_train).to(device)
    x_val = torch.from_numpy(data.x_val).to(device)
    y_val = torch.from_numpy(data.y_val).to(device)
    threads = torch.get_num_threads()
    torch.set_num_threads(options["threads"])
    try:
        torch.manual_seed(rng.randrange(2**31))
        net = NB201Supernet(data.input_shape, data.num_classes, C=C, N=N).to(device)
        start = time.perf_counter()
        train_supernet(
            net, x, y, epochs=options["epochs"], rng=rng, lr=options["lr"],
            batch_size=options["batch_size"],
        )  # fmt: skip
        trained = time.perf_counter()
        x_calib = x[:CALIBRATION_IMAGES]
        results = [
            score(net, edges, x_val, y_val, bn=options["bn"], x_calib=x_calib) for edges in cells
        ]
        scored = time.perf_counter()
    finally:
        torch.set_num_threads(threads)
    timings = {
        "supernet_train_seconds": trained - start,
        "supernet_score_seconds": scored - trained,
        "supernet_candidates": float(len(cells)),
    }
    return results, timings


def hand_out_order(ranking: list[str], top_k: int, calibration: int) -> list[str]:
    """The top_k, then `calibration` picks evenly spaced over the rest (its best and worst
    included), then everything left in ranking order."""
    head, rest = ranking[:top_k], ranking[top_k:]
    n = min(calibration, len(rest))
    picks = sorted({round(i * (len(rest) - 1) / max(n - 1, 1)) for i in range(n)})
    spread = [rest[i] for i in picks]
    chosen = set(spread)
    return head + spread + [k for k in rest if k not in chosen]


def kendall_tau(a: list[float], b: list[float]) -> float | None:
    """Kendall's tau-b (ties counted as scipy does); None below 2 points or when undefined."""
    if len(a) < 2:
        return None
    from scipy.stats import kendalltau

    tau = kendalltau(a, b).statistic
    return None if math.isnan(tau) else float(tau)
