"""Differentiable search over NAS-Bench-201: DARTS, and DARTS-PT, which does not collapse.

On the first ask, the supernet (`torch_models/nb201_darts.py`) trains with architecture
parameters alpha, weights on training batches and alpha on validation batches, alternately, on
the search's own data, in Ray tasks when Ray runs (on a GPU with `gpus`). Each edge's op is then
chosen (`select`): `argmax`, DARTS's largest alpha; `perturbation`, DARTS-PT's op whose removal
raises the supernet's validation loss most, the weights tuned `tune_epochs` after each edge's
choice (DARTS-PT's Algorithm 1). Asks hand out that cell, then the next best by the ops' scores
summed over the edges; they train standalone as ordinary trials. The alpha trajectory
(`curves`) and a plot (`artifacts`) go on the parent run.

The training tasks come back to the driver every CHECKPOINT_SECONDS with a checkpoint (weights,
alpha, optimizers, random state), written atomically beside the search's folder (`folder`, set
by the runner) and moved into it, as CHECKPOINT_FILE, once trained. A search resumed (or started
again) after a crash during training continues from it; once trained, the JSON state holds the
scores and the trajectory, so a resumed search hands out the same cells without retraining.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import sys
from typing import Any

from orchestrator.core.jsonio import write_bytes_atomic
from orchestrator.searchers._common import on_a_worker
from orchestrator.searchers.base import Strategy
from search_spaces.base import Arch, SearchSpace
from search_spaces.nb201 import EDGE_NAMES, EDGES, OPS, NB201Space

SELECTIONS = ("argmax", "perturbation")
PARAMETER_FREE = ("none", "skip_connect", "avg_pool_3x3")
CHECKPOINT_FILE = "darts_supernet.pt"
CHECKPOINT_SECONDS = 60.0
PLOT_FILE = "darts_alphas.png"


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

    def artifacts(self, folder: str) -> list[str]:
        """The plot of the final weights (`plot_alphas`)."""
        if not self.scores:
            return []
        from orchestrator.reporting.alphas import plot_alphas

        try:
            path = os.path.join(folder, PLOT_FILE)
            return [
                plot_alphas(self.history["probabilities"], self.scores, self.job["select"], path)
            ]
        except Exception as e:  # a plot is never worth failing the search for
            print(f"nasorch: warning: the alpha plot was not drawn ({e})", file=sys.stderr)
            return []

    # ---- the search ----------------------------------------------------------------------
    def _search(self) -> None:
        job = {**self.job, "seed": self.rng.randrange(2**31)}
        # Until trained, the checkpoint sits beside the search's folder, named by the job: Ray
        # snapshots nothing before the first suggestion returns, so a search killed now cannot
        # be resumed, but the same search started again (same storage_path) continues it.
        pending = final = None
        if self.folder:
            digest = hashlib.sha256(json.dumps(job, sort_keys=True).encode()).hexdigest()[:16]
            root = os.path.dirname(os.path.abspath(self.folder))
            pending = os.path.join(root, f".darts-{digest}.pt")
            final = os.path.join(self.folder, CHECKPOINT_FILE)
        blob = None
        for path in (final, pending):
            if path and os.path.exists(path):
                with open(path, "rb") as f:
                    blob = f.read()
                break
        print(
            f"nasorch: training the darts supernet ({job['epochs']} epochs"
            f"{', from its checkpoint' if blob else ''}); trials start after it",
            file=sys.stderr,
            flush=True,
        )
        step = on_a_worker(search_epochs, cpus=self.job["threads"], gpus=self.gpus)
        while True:  # back on the driver, with a checkpoint, every CHECKPOINT_SECONDS
            blob, info = step(job, blob)
            if pending:
                write_bytes_atomic(pending, blob)
            if "scores" in info:
                break
        if pending:  # trained: the weights and alpha stay with the search
            os.replace(pending, final)
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


def search_epochs(job: dict[str, Any], blob: bytes | None) -> tuple[bytes, dict[str, Any]]:
    """The task: `job`'s data, then training from the checkpoint `blob` (None: from the
    start) for up to CHECKPOINT_SECONDS (`nb201_darts.resume_training`). Uses CUDA when this
    process has a GPU."""
    import torch

    from search_spaces.torch_models.nb201_darts import resume_training
    from trainables import datasets

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    data = datasets.load(job["dataset"], "image", job["val_fraction"])
    arrays = (data.x_train, data.y_train, data.x_val, data.y_val)
    tensors = [torch.from_numpy(a).to(device) for a in arrays]
    threads = torch.get_num_threads()
    torch.set_num_threads(job["threads"])
    try:
        return resume_training(job, blob, tensors, data.num_classes, CHECKPOINT_SECONDS)
    finally:
        torch.set_num_threads(threads)
