"""Differentiable search over NAS-Bench-201: DARTS, and DARTS-PT, which does not collapse.

On the first ask, the supernet (`torch_models/nb201_darts.py`) trains with architecture
parameters alpha, weights on training batches and alpha on validation batches, alternately, on
the search's own data, in Ray tasks when Ray runs (on a GPU with `gpus`). Each edge's op is then
chosen (`select`): `argmax`, DARTS's largest alpha; `perturbation`, DARTS-PT's op whose removal
raises the supernet's validation loss most, the weights tuned `tune_epochs` after each edge's
choice (DARTS-PT's Algorithm 1). Asks hand out that cell, then the next best by the ops' scores
summed over the edges; they train standalone as ordinary trials. The alpha trajectory
(`curves`) and the data of its plot (`figures`, drawn by reporting/alphas.py) go on the parent
run.

The supernet trains, checkpointed beside the search's folder (`folder`, set by the runner), in
trainables/supernet_training.py; this searcher only says where (`on_a_worker`). Once trained,
the JSON state holds the scores and the trajectory, so a resumed search hands out the same
cells without retraining.
"""

from __future__ import annotations

import itertools
import sys
from typing import Any

from orchestrator.searchers._common import on_a_worker
from orchestrator.searchers.base import Strategy
from search_spaces.base import Arch, SearchSpace
from search_spaces.nb201 import EDGE_NAMES, EDGES, OPS, NB201Space
from trainables import supernet_training

SELECTIONS = ("argmax", "perturbation")
PARAMETER_FREE = ("none", "skip_connect", "avg_pool_3x3")


class DartsSearch(Strategy):
    takes_dataset = True  # trains on the search's data: the torch trainable's, unless given

    def __init__(
        self,
        space: SearchSpace,
        *,
        mode: str = "max",
        seed: int | None = None,
        select: str = "argmax",
        supernet_epochs: int = 50,
        tune_epochs: int = 2,
        lr: float = 0.025,
        arch_lr: float = 3e-4,
        batch_size: int = 64,
        dataset: Any = "digits",
        val_fraction: float = 0.2,
        threads: int = 1,
        gpus: float = 0,
    ):
        super().__init__(space, mode=mode, seed=seed)
        if not isinstance(space, NB201Space):
            raise ValueError(
                f"darts covers the nb201 space only, not {getattr(space, 'name', space)!r}"
            )
        if select not in SELECTIONS:
            raise ValueError(f"select must be one of {', '.join(SELECTIONS)}, got {select!r}")
        positive = "an integer >= 1"
        for name, value, ok, allowed in (
            ("supernet_epochs", supernet_epochs, _count(supernet_epochs), positive),
            (
                "tune_epochs",
                tune_epochs,
                type(tune_epochs) is int and tune_epochs >= 0,
                "an integer >= 0",
            ),
            ("batch_size", batch_size, _count(batch_size), positive),
            ("threads", threads, _count(threads), positive),
            ("lr", lr, lr > 0, "> 0"),
            ("arch_lr", arch_lr, arch_lr >= 0, ">= 0 (0: alpha stays uniform)"),
            ("val_fraction", val_fraction, 0 < val_fraction < 1, "between 0 and 1"),
            ("gpus", gpus, gpus >= 0, ">= 0"),
        ):
            if not ok:
                raise ValueError(f"{name} must be {allowed}, got {value!r}")
        self.job = dict(
            select=select, epochs=supernet_epochs, lr=lr, arch_lr=arch_lr,
            tune_epochs=tune_epochs if select == "perturbation" else 0,
            batch_size=batch_size, dataset=_checked_dataset(dataset), val_fraction=val_fraction,
            C=space.C, N=space.N, threads=threads,
        )  # fmt: skip
        self.gpus = gpus
        self.folder: str | None = None  # the search's folder, for the checkpoint (the runner's)
        self.history: dict[str, list] = {}  # per epoch: probabilities, losses
        self.scores: list[list[float]] = []  # per edge and op: what the cells are ranked by
        self.timings: dict[str, float] = {}
        self.n_asked = 0
        self.results: dict[str, float] = {}  # cell string -> trained result (larger is better)
        self._order: list[tuple[str, ...]] | None = None  # follows from the scores, not saved

    # ---- ask / tell ----------------------------------------------------------------------
    def ask(self) -> Arch | None:
        if not self.scores:
            self._search()
        if self._order is None:
            self._order = ranked(self.scores)
        if self.n_asked >= len(self._order):
            return None
        self.n_asked += 1
        return {"edges": list(self._order[self.n_asked - 1])}

    def update(self, arch: Arch, value: float | None) -> None:
        if value is not None:
            self.results[self.space.key(arch)] = self.score(value)

    def derived(self) -> list[str] | None:
        """The derived cell, the best-scored op of every edge (None before the search)."""
        return derived_cell(self.scores) if self.scores else None

    def summary(self) -> dict[str, float]:
        out = dict(self.timings)
        cell = self.derived()
        if cell is not None:
            out["derived_skip_edges"] = float(cell.count("skip_connect"))
            out["derived_parameter_free_edges"] = float(sum(op in PARAMETER_FREE for op in cell))
        return out

    # ---- records on the parent run -------------------------------------------------------
    def curves(self) -> dict[str, list[tuple[int, float]]]:
        """(epoch, value) series: softmax(alpha) of every edge and op (epoch 0: the start),
        and the supernet's mean losses (and validation accuracy) per epoch."""
        out: dict[str, list[tuple[int, float]]] = {}
        for epoch, probs in enumerate(self.history.get("probabilities", [])):
            for edge, row in zip(EDGE_NAMES, probs, strict=True):
                for op, p in zip(OPS, row, strict=True):
                    out.setdefault(f"alpha/{edge}/{op}", []).append((epoch, p))
        for name in ("train_loss", "val_loss", "val_accuracy"):
            if self.history.get(name):
                out[f"supernet/{name}"] = list(enumerate(self.history[name], start=1))
        return out

    def figures(self) -> dict[str, dict[str, Any]]:
        """The final weights per edge, for reporting's `alphas` plot (`plot_alphas`)."""
        if not self.scores:
            return {}
        data = {"probabilities": self.history["probabilities"], "scores": self.scores}
        return {"alphas": {**data, "select": self.job["select"]}}

    # ---- the search ----------------------------------------------------------------------
    def _search(self) -> None:
        job = {**self.job, "seed": self.rng.randrange(2**31)}
        info = supernet_training.train_darts(
            job,
            self.folder,
            lambda step: on_a_worker(step, cpus=self.job["threads"], gpus=self.gpus),
        )
        self.history, self.scores = info["history"], info["scores"]
        self.timings = {"supernet_train_seconds": info["seconds"]}
        print(
            f"nasorch: the darts supernet trained {job['epochs']} epochs in "
            f"{info['seconds']:.1f} s; derived cell ({job['select']}): "
            f"{self.space.key({'edges': self.derived()})}",
            file=sys.stderr,
        )

    # ---- state ---------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            **super().state(),
            "history": self.history,
            "scores": self.scores,
            "timings": self.timings,
            "n_asked": self.n_asked,
            "results": self.results,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self.history = {k: list(v) for k, v in state["history"].items()}
        self.scores = [list(row) for row in state["scores"]]
        self.timings = dict(state["timings"])
        self.n_asked = state["n_asked"]
        self.results = dict(state["results"])
        self._order = None


def derived_cell(scores: list[list[float]]) -> list[str]:
    """The best-scored op of every edge."""
    return [OPS[max(range(len(OPS)), key=row.__getitem__)] for row in scores]


def ranked(scores: list[list[float]]) -> list[tuple[str, ...]]:
    """Every cell, best first by the sum of its ops' scores over the edges; ties by the ops."""
    cells = itertools.product(range(len(OPS)), repeat=len(EDGES))
    best = sorted(cells, key=lambda c: (-sum(row[k] for row, k in zip(scores, c)), c))
    return [tuple(OPS[k] for k in cell) for cell in best]


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _checked_dataset(dataset: Any) -> Any:
    """The torch trainable's `dataset` (a shipped name or a mapping), checked by its rules."""
    from pydantic import ValidationError

    from trainables.torch_loop import TorchOptions

    try:
        TorchOptions(dataset=dataset)
    except ValidationError as e:
        raise ValueError(f"dataset: {e.errors()[0]['msg'].removeprefix('Value error, ')}") from None
    return dataset
