"""`fidelity`: a model of the learning curve over (configuration, epoch), in the spirit of
DyHPO, Hyper-Tune and MOBSTER (our own; pair it with the `fidelity` scheduler).

Every reported epoch of every trial (`observe`) is a training point of one Gaussian process on
the space's `encode` plus the epoch (log-scaled to the budget). New configurations are chosen
at the last epoch among random candidates and mutations of the best: by expected improvement
(EI) over the best predicted final value of the configurations tried so far, and every other
proposal by a Thompson draw of the model instead (`acquisition="alternate"`). The `fidelity`
scheduler (schedulers/fidelity.py) consults the same
model when a worker frees: continue a paused trial to its next rung, or start a new one,
whichever has the larger EI at the rung it would reach (`gains`, `new_gain`).

Why these choices, as measured (benchmarks/simulated.py, on seeds the grid does not use):
- EI and Thompson draws alternate: EI's greedy pick reaches a good configuration soonest (the
  lowest regret at a short budget), Thompson draws spread the proposals and keep finding
  better ones later; alternating did as well as EI early and better than either alone late,
  at 4 and at 32 workers (docs/benchmarks/simulated.md);
- the model is refit every `refit_every` observations, and less often as they accumulate (a
  fit every 1/16th more), on at most `max_points` of them: the cost of a decision stays flat at
  10,000 trials and 256 workers. Half are the latest observations, half the deepest
  observation of each of the best configurations. Not the best observations themselves: those
  are the later epochs of a handful of configurations, and a model fitted on them stalled at
  256 workers (late regret 0.0559, 0.0753 and 0.0274 against 0 on three LCBench tasks), and
  was worse late at 4 and 32 workers too (held-out seeds, docs/benchmarks/simulated.md);
- targets are normal scores of the ranks (as in `guided`), so EI is the same under any
  monotone transform of the metric and diverged runs do not dominate the fit;
- past `batch_after` asks one candidate pool serves several (its best by EI, 1 + asks //
  `batch_after` of them, at most `_common.MAX_BATCH`, until the model is refit; `guided`'s
  queue): a pool's cost is the same at any size, so the cost per ask stops growing;
- the state is the ordered list of observations and the fit's position in it: a restored
  searcher refits on exactly the points the original had, and asks the same next.
"""

from __future__ import annotations

import heapq
import math
import random
from typing import Any

import numpy as np
from scipy.linalg import solve_triangular
from scipy.special import ndtr

from orchestrator.searchers._common import batch_size, one_blas_thread
from orchestrator.searchers.base import Strategy
from orchestrator.searchers.guided import (
    LENGTH_GRID,
    NOISE_GRID,
    GuidedSearch,
    normal_scores,
    thompson_picks,
)
from search_spaces.base import Arch, SearchSpace

ACQUISITIONS = ("alternate", "ei", "its")  # EI and Thompson in turn, EI alone, Thompson alone


class FidelitySearch(Strategy):
    def __init__(
        self,
        space: SearchSpace,
        *,
        mode: str = "max",
        seed: int | None = None,
        num_init: int = 10,
        min_points: int = 10,
        refit_every: int = 8,
        max_points: int = 256,
        num_candidates: int = 64,
        top_k: int = 5,
        batch_after: int | None = 250,
        acquisition: str = "alternate",
    ):
        super().__init__(space, mode=mode, seed=seed)
        if acquisition not in ACQUISITIONS:
            raise ValueError(
                f"acquisition must be one of {', '.join(ACQUISITIONS)}, got {acquisition!r}"
            )
        if num_init < 1 or min_points < 2 or refit_every < 1 or max_points < 4 or top_k < 1:
            raise ValueError(
                "num_init, refit_every and top_k must be >= 1, min_points >= 2 and max_points "
                f">= 4, got {num_init}, {refit_every}, {top_k}, {min_points}, {max_points}"
            )
        self.num_init, self.min_points, self.refit_every = num_init, min_points, refit_every
        self.max_points, self.num_candidates, self.top_k = max_points, num_candidates, top_k
        self.acquisition = acquisition
        # Unseen random archs, the exhausted-space fallback and the queue of a pool's further
        # picks (checked `batch_after`) are `guided`'s; same generator.
        self.guide = GuidedSearch(space, mode=mode, batch_after=batch_after)
        self.guide.rng = self.rng
        self.horizon: int | None = None  # the last epoch (the scheduler sets it; else deepest)
        self.obs: list[list] = []  # [key, epoch, score] in the order observed
        self.archs: dict[str, Arch] = {}
        self.fitted_at = 0  # observations the current model was fitted on
        self.n_asked = 0
        self._reset_index()

    # ---- observations ----------------------------------------------------------------------
    def _reset_index(self) -> None:
        self._enc: dict[str, list[float]] = {}
        self._last: dict[str, tuple[int, float]] = {}  # key -> (deepest epoch, its score)
        self._best_at: dict[int, float] = {}
        self._deepest_obs: dict[str, int] = {}  # key -> index of its deepest observation
        self._model: _Model | None = None
        self._version = 0
        self._new: dict[int, float] = {}
        for i in range(len(self.obs)):
            self._index(i)

    def _index(self, i: int) -> None:
        key, epoch, score = self.obs[i]
        if self._last.get(key, (0, 0.0))[0] <= epoch:
            self._last[key] = (epoch, score)
            self._deepest_obs[key] = i
        self._best_at[epoch] = max(self._best_at.get(epoch, -math.inf), score)

    def observe(self, arch: Arch, epoch: int, value: float) -> None:
        key = self.space.key(arch)
        self.archs.setdefault(key, arch)
        self.obs.append([key, int(epoch), self.score(float(value))])
        self._index(len(self.obs) - 1)

    def update(self, arch: Arch, value: float | None) -> None:
        key = self.space.key(arch)
        self.guide.asked.add(key)
        if value is not None and key not in self._last:  # told without epochs: a table, a reuse
            self.observe(arch, self._deepest(), value)

    def _deepest(self) -> int:
        return self.horizon or max(self._best_at, default=1)

    # ---- the model -------------------------------------------------------------------------
    def model(self) -> _Model | None:
        """The GP, refit when enough new observations came in (None: too few yet)."""
        n = len(self.obs)
        due = max(self.refit_every, self.fitted_at // 16)
        if n >= self.min_points and (self.fitted_at == 0 or n - self.fitted_at >= due):
            self._fit(n)
        elif self._model is None and self.fitted_at:  # restored: the fit the original had
            self._fit(self.fitted_at)
        return self._model

    def _fit(self, n: int) -> None:
        half = self.max_points // 2
        deepest = self._deepest_obs if n == len(self.obs) else self._deepest_upto(n)
        best = heapq.nlargest(half, deepest.values(), key=lambda i: (self.obs[i][2], i))
        keep = sorted(set(best) | set(range(max(0, n - half), n)))
        points = {(self.obs[i][0], self.obs[i][1]): self.obs[i][2] for i in keep}  # last wins
        keys = [k for k, _ in points]
        epochs = np.array([e for _, e in points], dtype=float)
        x = np.array([self._encode(k) for k in keys])
        with one_blas_thread():
            self._model = _Model.fit(x, epochs, list(points.values()), self._deepest())
        self.fitted_at = n
        self._version += 1
        self._new = {}

    def _deepest_upto(self, n: int) -> dict[str, int]:
        """Each configuration's deepest observation among the first `n` (a restored fit)."""
        deepest: dict[str, int] = {}
        for i, (key, epoch, _) in enumerate(self.obs[:n]):
            if key not in deepest or self.obs[deepest[key]][1] <= epoch:
                deepest[key] = i
        return deepest

    def _encode(self, key: str) -> list[float]:
        if key not in self._enc:
            self._enc[key] = self.space.encode(self.archs[key])
        return self._enc[key]

    @property
    def version(self) -> int:
        """Changes with every refit: EIs computed under one version hold until the next."""
        return self._version

    def gains(self, archs: list[Arch], epochs: list[int]) -> list[float] | None:
        """EI of each arch's value at its epoch over the best value seen at that epoch."""
        model = self.model()
        if model is None or not archs:
            return None
        for a in archs:
            self.archs.setdefault(self.space.key(a), a)
        x = np.array([self._encode(self.space.key(a)) for a in archs])
        with one_blas_thread():
            return list(model.ei(x, np.array(epochs, float), self._best(epochs)))

    def new_gain(self, epoch: int) -> float | None:
        """The best EI at `epoch` among `num_candidates` unseen configurations (cached per fit;
        drawn from their own generator, so the asks stay those of the same observations)."""
        model = self.model()
        if model is None:
            return None
        if epoch not in self._new:
            rng = random.Random(f"{self.seed}:{self.fitted_at}")
            pool = [self.space.sample(rng) for _ in range(self.num_candidates)]
            x = np.array([self.space.encode(a) for a in pool])
            with one_blas_thread():
                ei = model.ei(x, np.full(len(pool), float(epoch)), self._best([epoch] * len(pool)))
            self._new[epoch] = float(ei.max())
        return self._new[epoch]

    def _best(self, epochs: list[int]) -> np.ndarray:
        """The best score seen at each epoch (at the nearest epoch below when none was)."""
        seen = sorted(self._best_at)
        best: dict[int, float] = {}
        for e in set(epochs):
            at = [s for s in seen if s <= e] or seen[:1]
            best[e] = self._best_at[at[-1]]
        return np.array([best[e] for e in epochs])

    # ---- ask -------------------------------------------------------------------------------
    def ask(self) -> Arch:
        self.n_asked += 1
        pick = None
        started = self.n_asked > self.num_init or len(self._last) >= self.num_init
        model = self.model() if started else None
        if model is not None:
            # A pool is fresh while the model that ranked it is, for as many asks as it held.
            pick = self.guide.queued(self.fitted_at, self.n_asked) or self._propose(model)
        if pick is None:
            pick = self.guide.random_unseen()
        self.guide.asked.add(self.space.key(pick))
        return pick

    def _propose(self, model: _Model) -> Arch | None:
        top = heapq.nlargest(self.top_k, self._last, key=lambda k: (self._last[k][1], k))
        pool = [self.space.sample(self.rng) for _ in range(self.num_candidates)]
        for key in top:
            pool += [self.space.mutate(self.archs[key], self.rng) for _ in range(4)]
        unique: dict[str, Arch] = {}
        for arch in pool:
            k = self.space.key(arch)
            if k not in self.guide.asked:
                unique.setdefault(k, arch)
        if not unique:
            return None
        cands = list(unique.values())
        final = np.full(len(cands), float(self._deepest()))
        batch = min(batch_size(self.n_asked, self.guide.batch_after), len(cands))
        x = np.array([self.space.encode(a) for a in cands])
        thompson = self.acquisition == "its" or (
            self.acquisition == "alternate" and self.n_asked % 2 == 1
        )
        with one_blas_thread():
            if thompson:  # each pick from a posterior draw of its own, as `guided`'s batches
                mean, std = model.predict(x, final)
                order = thompson_picks(mean, std, batch, self.rng)
            else:
                incumbent, _ = model.predict(
                    np.array([self._encode(k) for k in top]), np.full(len(top), final[0])
                )
                ei = model.ei_z(x, final, np.full(len(cands), incumbent.max()))
                order = [int(i) for i in np.argsort(-ei, kind="stable")[:batch]]
        picks = [cands[i] for i in order]
        self.guide.queue, self.guide.fit_tag = picks[1:], [self.fitted_at, self.n_asked, batch]
        return picks[0]

    def summary(self) -> dict[str, float]:
        return {"model_points": float(self.fitted_at)}

    # ---- state -----------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            **super().state(),
            "obs": self.obs,
            "archs": self.archs,
            "asked": sorted(self.guide.asked),
            "n_asked": self.n_asked,
            "fitted_at": self.fitted_at,
            "queue": self.guide.queue,
            "fit_tag": self.guide.fit_tag,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self.obs = [list(o) for o in state["obs"]]
        self.archs = dict(state["archs"])
        self.guide.asked = set(state["asked"])
        self.n_asked, self.fitted_at = state["n_asked"], state["fitted_at"]
        self.guide.queue, self.guide.fit_tag = list(state.get("queue", [])), state.get("fit_tag")
        self._reset_index()


class _Model:
    """A GP over [encode(arch), epoch feature] on normal scores; hyperparameters from a grid
    by marginal likelihood (as `guided`'s), kept so it predicts many times per fit."""

    def __init__(self, x, y, scores, chol, alpha, rel, scale, weight, horizon):
        self.x, self.chol, self.alpha = x, chol, alpha
        self.rel, self.scale, self.weight, self.horizon = rel, scale, weight, horizon
        order = np.argsort(scores, kind="stable")
        self.sorted_scores, self.sorted_z = np.asarray(scores)[order], y[order]

    @classmethod
    def fit(cls, x: np.ndarray, epochs: np.ndarray, scores: list[float], horizon: int) -> _Model:
        # The epoch spans as much as a typical distance between two configurations.
        spread = _sqdist(x, x).mean() if len(x) > 1 else 1.0
        weight = math.sqrt(max(spread, 1e-12))
        y = normal_scores(scores)
        full = np.hstack([x, weight * _epoch_feature(epochs, horizon)[:, None]])
        d2 = _sqdist(full, full)
        scale = max(float(d2.mean()), 1e-12)
        best = None
        for rel in LENGTH_GRID:
            k = np.exp(-d2 / (2 * rel * scale))
            for noise in NOISE_GRID:
                try:
                    chol = np.linalg.cholesky(k + noise * np.eye(len(y)))
                except np.linalg.LinAlgError:
                    continue
                alpha = solve_triangular(chol.T, solve_triangular(chol, y, lower=True))
                nll = 0.5 * y @ alpha + np.log(np.diag(chol)).sum()
                if best is None or nll < best[0]:
                    best = (nll, rel, chol, alpha)
        if best is None:  # never for a noise of 0.01 on a kernel matrix; kept total
            chol, alpha, rel = np.eye(len(y)), np.zeros(len(y)), 1.0
        else:
            _, rel, chol, alpha = best
        return cls(full, y, scores, chol, alpha, rel, scale, weight, horizon)

    def predict(self, x: np.ndarray, epochs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation, in normal-score units."""
        q = np.hstack([x, self.weight * _epoch_feature(epochs, self.horizon)[:, None]])
        kq = np.exp(-_sqdist(q, self.x) / (2 * self.rel * self.scale))
        v = solve_triangular(self.chol, kq.T, lower=True)
        return kq @ self.alpha, np.sqrt(np.clip(1.0 - (v * v).sum(0), 1e-12, None))

    def ei(self, x: np.ndarray, epochs: np.ndarray, best_scores: np.ndarray) -> np.ndarray:
        """EI over incumbents given in the metric's score units."""
        best_z = np.interp(best_scores, self.sorted_scores, self.sorted_z)
        return self.ei_z(x, epochs, best_z)

    def ei_z(self, x: np.ndarray, epochs: np.ndarray, best_z: np.ndarray) -> np.ndarray:
        mean, std = self.predict(x, epochs)
        u = (mean - best_z) / std
        return std * (u * ndtr(u) + np.exp(-0.5 * u * u) / math.sqrt(2 * math.pi))


def _epoch_feature(epochs: np.ndarray, horizon: int) -> np.ndarray:
    return np.log(np.maximum(epochs, 1.0)) / math.log(max(horizon, 2))


def _sqdist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.clip((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T, 0.0, None)
