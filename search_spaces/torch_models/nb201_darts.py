"""Differentiable architecture search on the NB201 supernet: DARTS, and DARTS-PT's selection.

Architecture parameters alpha (one row per edge, one column per operation of OPS) weigh the
operations of every edge: the supernet (`nb201_supernet.py`) runs each edge as the
softmax(alpha)-weighted sum of its operations. Steps alternate, first order (Liu et al. 2019):
alpha takes a step on a validation batch at the current weights, then the weights take one on a
training batch with alpha held fixed, so alpha learns from validation data only. With
`arch_lr=0` alpha stays uniform and only the weights train (DARTS-PT's "fixed alpha").

DARTS reads the cell off alpha (the largest weight of every edge). On NB201 that collapses to
parameter-free operations (Dong & Yang 2020: all skip connections, 54.30% on CIFAR-10): they
make the mixture easy to train, so alpha rewards them, although the convolutions do the work.
`perturbation_scores` is DARTS-PT's selection (Wang et al. 2021) instead: it measures how much
the supernet's validation loss rises when an operation is taken out of an edge's mixture, and
keeps the operation the supernet can least do without.
"""

from __future__ import annotations

import copy
import io
import math
import time
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from search_spaces.nb201_cell import EDGES, OPS
from search_spaces.torch_models.nb201_supernet import NB201Supernet

LR_MIN = 1e-3  # the weights' cosine schedule ends here (DARTS's setting)


class DartsTrainer:
    """A supernet, its alpha and both optimizers; `run_epoch` trains one epoch of alternating
    steps. Everything it needs to continue exactly is in `state_dict()`."""

    def __init__(
        self,
        net: NB201Supernet,
        *,
        epochs: int,
        seed: int,
        lr: float = 0.025,
        arch_lr: float = 3e-4,
        batch_size: int = 64,
    ):
        self.net, self.epochs, self.batch_size, self.lr = net, epochs, batch_size, lr
        self.gen = torch.Generator().manual_seed(seed)
        device = next(net.parameters()).device
        # Uniform at the start: every operation gets the same share of the first updates.
        self.alpha = nn.Parameter(torch.zeros(len(EDGES), len(OPS), device=device))
        # DARTS's optimizers on NB201 (Dong & Yang 2020, appendix).
        self.w_opt = torch.optim.SGD(
            net.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4, nesterov=True
        )
        self.a_opt = (
            torch.optim.Adam([self.alpha], lr=arch_lr, betas=(0.5, 0.999), weight_decay=1e-3)
            if arch_lr > 0
            else None
        )
        self.epoch = 0
        self.history: dict[str, list] = {
            "probabilities": [probabilities(self.alpha)],  # at the start, then after each epoch
            "train_loss": [],
            "val_loss": [],
            "val_accuracy": [],
        }

    def arch_step(self, x_val: Tensor, y_val: Tensor) -> tuple[float, float]:
        """One step of alpha on a validation batch; the weights' gradients are not touched."""
        logits = self.net(x_val, self.alpha.softmax(-1))
        loss = nn.functional.cross_entropy(logits, y_val)
        (self.alpha.grad,) = torch.autograd.grad(loss, [self.alpha])
        self.a_opt.step()
        self.alpha.grad = None
        return loss.item(), (logits.argmax(1) == y_val).float().mean().item()

    def weight_step(self, x: Tensor, y: Tensor, lr: float) -> float:
        """One step of the weights on a training batch, alpha held fixed."""
        return self._step(self.net(x, self.alpha.detach().softmax(-1)), y, lr)

    def _step(self, logits: Tensor, y: Tensor, lr: float) -> float:
        loss = nn.functional.cross_entropy(logits, y)
        for group in self.w_opt.param_groups:
            group["lr"] = lr
        self.w_opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.net.parameters(), 5.0)
        self.w_opt.step()
        return loss.item()

    def run_epoch(self, x: Tensor, y: Tensor, x_val: Tensor, y_val: Tensor) -> None:
        self.net.train()
        steps = -(-len(x) // self.batch_size)
        val = _cycle(len(x_val), self.batch_size, self.gen)
        sums = {"train_loss": 0.0, "val_loss": 0.0, "val_accuracy": 0.0}
        for step, idx in enumerate(_batches(len(x), self.batch_size, self.gen)):
            if self.a_opt is not None:
                v = next(val)
                val_loss, val_acc = self.arch_step(x_val[v], y_val[v])
                sums["val_loss"] += val_loss
                sums["val_accuracy"] += val_acc
            t = (self.epoch * steps + step) / (self.epochs * steps)
            lr = LR_MIN + 0.5 * (self.lr - LR_MIN) * (1 + math.cos(math.pi * t))
            sums["train_loss"] += self.weight_step(x[idx], y[idx], lr)
        self.epoch += 1
        for name, total in sums.items():
            if name == "train_loss" or self.a_opt is not None:
                self.history[name].append(total / steps)
        self.history["probabilities"].append(probabilities(self.alpha))

    def perturbation_scores(
        self, x_val: Tensor, y_val: Tensor, tune: int = 0, x: Tensor | None = None,
        y: Tensor | None = None,
    ) -> list[list[float]]:  # fmt: skip
        """DARTS-PT's selection (Wang et al. 2021, Algorithm 1), edge by edge in order: for
        each op, how much the validation loss rises when it is taken out of the edge's mixture
        (the other weights unchanged); the op of the largest rise then stands alone on the edge,
        and with `tune` the weights train that many epochs on (`x`, `y`), at the schedule's last
        rate, before the next edge is measured. Batch-norm uses each perturbed network's own
        statistics; the supernet, its optimizer and random state are left as they were."""
        saved = copy.deepcopy(
            (self.net.state_dict(), self.w_opt.state_dict(), self.gen.get_state())
        )
        weights = self.alpha.detach().softmax(-1).clone()
        scores = []
        for e in range(len(EDGES)):
            with torch.no_grad():
                base = self._loss(weights, x_val, y_val)
                row = []
                for k in range(len(OPS)):
                    without = weights.clone()
                    without[e, k] = 0.0
                    row.append(self._loss(without, x_val, y_val) - base if weights[e, k] else 0.0)
            scores.append(row)
            weights[e] = 0.0
            weights[e, max(range(len(OPS)), key=row.__getitem__)] = 1.0
            for _ in range(tune if e < len(EDGES) - 1 else 0):  # the last edge: nothing follows
                self.net.train()
                for idx in _batches(len(x), self.batch_size, self.gen):
                    self._step(self.net(x[idx], weights), y[idx], LR_MIN)
        net, w_opt, gen = saved
        self.net.load_state_dict(net)
        self.w_opt.load_state_dict(w_opt)
        self.gen.set_state(gen)
        return scores

    def _loss(self, weights: Tensor, x: Tensor, y: Tensor, batch: int = 512) -> float:
        self.net.train()
        total = sum(
            nn.functional.cross_entropy(self.net(x[i : i + batch], weights), y[i : i + batch],
                                        reduction="sum").item()
            for i in range(0, len(x), batch)
        )  # fmt: skip
        return total / len(x)

    def state_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "net": self.net.state_dict(),
            "alpha": self.alpha.detach().cpu(),
            "w_opt": self.w_opt.state_dict(),
            "a_opt": self.a_opt.state_dict() if self.a_opt is not None else None,
            "gen": self.gen.get_state(),
            "history": self.history,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch = state["epoch"]
        self.net.load_state_dict(state["net"])
        with torch.no_grad():
            self.alpha.copy_(state["alpha"])
        self.w_opt.load_state_dict(state["w_opt"])
        if self.a_opt is not None:
            self.a_opt.load_state_dict(state["a_opt"])
        self.gen.set_state(state["gen"])
        self.history = state["history"]


def resume_training(
    job: dict[str, Any],
    blob: bytes | None,
    data: Sequence[Tensor],
    num_classes: int,
    seconds: float,
) -> tuple[bytes, dict[str, Any]]:
    """Train the search `job` describes (C, N, seed, epochs, lr, arch_lr, batch_size, select,
    tune_epochs) on `data` (x, y, x_val, y_val) from the checkpoint `blob` (None: from the
    start) until its last epoch or for `seconds`, whichever comes first; at the last epoch,
    score the ops (`select`: "argmax", log softmax(alpha); "perturbation",
    `perturbation_scores`, tuning `tune_epochs` after each edge's choice). Returns
    the new checkpoint and {epoch, history, seconds, and scores once trained}."""
    x, y, x_val, y_val = data
    torch.manual_seed(job["seed"])
    net = NB201Supernet(tuple(x.shape[1:]), num_classes, C=job["C"], N=job["N"]).to(x.device)
    trainer = DartsTrainer(
        net, epochs=job["epochs"], seed=job["seed"], lr=job["lr"], arch_lr=job["arch_lr"],
        batch_size=job["batch_size"],
    )  # fmt: skip
    spent, scores = 0.0, None
    if blob is not None:
        saved = torch.load(io.BytesIO(blob), map_location=x.device)
        if saved["job"] == job:
            trainer.load_state_dict(saved)
            spent, scores = saved["seconds"], saved["scores"]
        else:  # another search's file: this one starts from the beginning
            print("nasorch: the supernet checkpoint is another search's; starting over")
    start = time.perf_counter()
    while trainer.epoch < job["epochs"]:  # at least one epoch per call
        trainer.run_epoch(x, y, x_val, y_val)
        if time.perf_counter() - start >= seconds:
            break
    if trainer.epoch >= job["epochs"] and scores is None:
        if job["select"] == "perturbation":
            scores = trainer.perturbation_scores(x_val, y_val, job["tune_epochs"], x, y)
        else:  # log-probabilities: their sum ranks whole cells by probability
            final = trainer.history["probabilities"][-1]
            scores = [[math.log(max(p, 1e-300)) for p in row] for row in final]
    spent += time.perf_counter() - start
    out = io.BytesIO()
    torch.save({**trainer.state_dict(), "job": job, "seconds": spent, "scores": scores}, out)
    info = {"epoch": trainer.epoch, "history": trainer.history, "seconds": spent}
    if scores is not None:
        info["scores"] = scores
    return out.getvalue(), info


def probabilities(alpha: Tensor) -> list[list[float]]:
    """softmax(alpha) per edge, as plain floats."""
    return alpha.detach().softmax(-1).cpu().tolist()


def _batches(n: int, batch_size: int, gen: torch.Generator) -> Iterator[Tensor]:
    order = torch.randperm(n, generator=gen)
    for i in range(0, n, batch_size):
        yield order[i : i + batch_size]


def _cycle(n: int, batch_size: int, gen: torch.Generator) -> Iterator[Tensor]:
    """Validation batches for as long as training needs them, reshuffled at every pass."""
    while True:
        yield from _batches(n, batch_size, gen)
