"""Predictor-guided local evolution: our own searcher (in the spirit of BANANAS and NPENAS).

After `num_init` random architectures, every ask builds a pool of candidates around the best
results of the current phase (all neighbours of the top `top_k`, two-step mutations of them, a
few random archs), drops every architecture already asked for, and returns the candidate that a
Gaussian-process predictor, fitted online to all results, rates best: by an independent
Thompson sample (`acquisition="its"`) or an upper confidence bound (`"ucb"`). A phase that goes
`patience` results without improving its best ends, and the next starts from a random arch.

Why these choices:
- never spending an evaluation twice is free on a finite space and it matters most there;
- neighbours of the best archs make it at least as exploitative as local search, which is hard
  to beat on NAS benchmarks (White et al., 2020), while the predictor ranks those neighbours
  instead of trying them in random order;
- a GP on the space's `encode` gives mean and uncertainty in closed form, in milliseconds for a
  few hundred results, and needs nothing from the space beyond `encode`;
- phases with restarts are what keeps local search from staying in a local optimum; the
  predictor, trained on every phase, makes each new phase faster than a blind restart;
- targets are rank-transformed to normal scores, so the searcher behaves the same under any
  monotone transform of the metric (accuracy, error, log-loss) and outliers such as diverged
  architectures do not dominate the fit;
- past `batch_after` results one fit serves several asks (one more per `batch_after` results,
  at most `_common.MAX_BATCH`), each the argmax of its own Thompson draw, as batch Thompson sampling
  does: a fit costs the same at any size, so the cost per ask stops growing with the search
  (under 5 ms at 10,000 trials), and a fit goes stale after as many new results as it served.
"""

from __future__ import annotations

import heapq
from statistics import NormalDist
from typing import Any

import numpy as np
from scipy.linalg import solve_triangular

from orchestrator.searchers._common import batch_size, one_blas_thread
from orchestrator.searchers.base import Strategy
from search_spaces.base import Arch, SearchSpace
from search_spaces.candidates import CandidateSpace

# The GP hyperparameters tried at each fit (fidelity.py fits over the same grid).
NOISE_GRID = (0.01, 0.1)
LENGTH_GRID = (0.5, 1.0, 2.0)  # squared lengthscale, relative to the mean squared distance


class GuidedSearch(Strategy):
    def __init__(
        self,
        space: SearchSpace,
        *,
        mode: str = "max",
        seed: int | None = None,
        num_init: int = 10,
        top_k: int = 5,
        num_mutations: int = 20,
        num_random: int = 20,
        acquisition: str = "its",
        kappa: float = 1.0,
        patience: int = 20,
        max_points: int = 200,
        batch_after: int | None = 250,
    ):
        super().__init__(space, mode=mode, seed=seed)
        if batch_after is not None and batch_after < 1:
            raise ValueError(f"batch_after must be >= 1 or null, got {batch_after}")
        if num_init < 1 or top_k < 1 or patience < 1:
            raise ValueError(
                f"num_init, top_k and patience must be >= 1, got {num_init}, {top_k}, {patience}"
            )
        if acquisition not in ("its", "ucb"):
            raise ValueError(f"acquisition must be 'its' or 'ucb', got {acquisition!r}")
        self.num_init, self.top_k, self.num_mutations = num_init, top_k, num_mutations
        self.num_random, self.acquisition, self.kappa = num_random, acquisition, kappa
        self.patience, self.max_points, self.batch_after = patience, max_points, batch_after
        self.queue: list[Arch] = []  # the last fit's further proposals, best first
        self.fit_tag: list[int] | None = None  # [context, progress, batch] of the last fit
        self.results: list[list] = []  # [arch, score or None], in the order told
        self.asked: set[str] = set()  # keys asked for (told or not): never asked again
        self.n_asked = 0
        self.restart_at = 0  # index in `results` where the current phase began
        self._index_results()

    def _index_results(self) -> None:
        """What each ask needs of the whole history, kept up to date as results are told (an
        ask costs the same after 10,000 results as after 500): the valid results in order, and
        a min-heap of the best `max_points // 2` of them as (score, -index)."""
        self._done: list[tuple[Arch, float]] = []
        self._top: list[tuple[float, int]] = []
        for arch, score in self.results:
            self._note(arch, score)

    def _note(self, arch: Arch, score: float | None) -> None:
        if score is None:
            return
        self._done.append((arch, score))
        # Ties keep the earlier result, as a stable sort of the history would.
        entry = (score, -(len(self._done) - 1))
        if len(self._top) < self.max_points // 2:
            heapq.heappush(self._top, entry)
        elif entry > self._top[0]:
            heapq.heapreplace(self._top, entry)

    def _fit_points(self) -> list[tuple[Arch, float]]:
        """The GP's points: all results, or past `max_points` the best half and the latest."""
        if len(self._done) <= self.max_points:
            return self._done
        n, half = len(self._done), self.max_points // 2
        keep = sorted({-i for _, i in self._top} | set(range(n - half, n)))
        return [self._done[i] for i in keep]

    # ---- ask / tell ------------------------------------------------------------------------
    def ask(self) -> Arch:
        self.n_asked += 1
        self._maybe_restart()
        phase = [(a, s) for a, s in self.results[self.restart_at :] if s is not None]
        pick = None
        # A new phase (and the start) begins from a random arch, as local search restarts do;
        # `num_init` results told before the first ask (a warm start) are a start already.
        started = self.n_asked > self.num_init or len(self._done) >= self.num_init
        if started and len(self._done) >= 2 and phase:
            progress = len(self.results)
            pick = self.queued(self.restart_at, progress)
            if pick is None:
                pick = self.propose(self._fit_points(), phase, self.restart_at, progress)
        if pick is None:
            pick = self.random_unseen()
        self.asked.add(self.space.key(pick))
        return pick

    def update(self, arch: Arch, value: float | None) -> None:
        self.asked.add(self.space.key(arch))
        self.results.append([arch, None if value is None else self.score(value)])
        self._note(*self.results[-1])

    def _maybe_restart(self) -> None:
        """After `patience` results without beating the phase's best, the phase is stuck in a
        local optimum: a new phase starts, anchored only on its own results (the predictor
        still learns from all of them)."""
        scores = [s for _, s in self.results[self.restart_at :]]
        valid = [i for i, s in enumerate(scores) if s is not None]
        if valid:
            best = max(valid, key=lambda i: (scores[i], -i))
            if len(scores) - 1 - best >= self.patience:
                self.restart_at = len(self.results)

    def random_unseen(self) -> Arch:
        for _ in range(100):
            arch = self.space.sample(self.rng)
            if self.space.key(arch) not in self.asked:
                return arch
        if isinstance(self.space, CandidateSpace):  # a table's rows: draw from those left
            left = [a for k, a in zip(self.space.keys, self.space.archs) if k not in self.asked]
            if left:
                return left[self.rng.randrange(len(left))]
        return arch  # a (nearly) exhausted space: repeating beats stopping

    def _candidates(self, phase: list[tuple[Arch, float]]) -> list[Arch]:
        # nlargest: the same picks as a stable sort, in O(n) (a phase may hold every result)
        top = [a for a, _ in heapq.nlargest(self.top_k, phase, key=lambda r: r[1])]
        pool = []
        for arch in top:
            pool += self.space.neighbours(arch, self.rng)
        for _ in range(self.num_mutations):
            pool.append(
                self.space.mutate(self.space.mutate(self.rng.choice(top), self.rng), self.rng)
            )
        pool += [self.space.sample(self.rng) for _ in range(self.num_random)]
        unique: dict[str, Arch] = {}
        for arch in pool:
            k = self.space.key(arch)
            if k not in self.asked:
                unique.setdefault(k, arch)
        return list(unique.values())

    def queued(self, context: int, progress: int) -> Arch | None:
        """The last fit's next proposal while the fit is fresh: made in the same `context` (the
        phase, `rungs`' epoch, `fidelity`'s model) and fewer results (or asks) ago than the
        proposals it served."""
        tag = self.fit_tag
        if tag is None or tag[0] != context or progress - tag[1] >= tag[2]:
            self.queue = []
        while self.queue:
            arch = self.queue.pop(0)
            if self.space.key(arch) not in self.asked:
                return arch
        return None

    def propose(
        self,
        done: list[tuple[Arch, float]],
        phase: list[tuple[Arch, float]],
        context: int = 0,
        progress: int = 0,
    ) -> Arch | None:
        """The candidate around `phase`'s best that a GP fitted to `done` rates best (None when
        every candidate was asked for already); past `batch_after` results (`progress`) the next
        best are queued for `queued`. `rungs` calls it with one rung's results."""
        cands = self._candidates(phase)
        self.queue, self.fit_tag = [], None
        if not cands:
            return None
        if len(done) > self.max_points:  # bound the O(n^3) fit: keep the best and the latest
            half = self.max_points // 2
            ranked = heapq.nlargest(half, range(len(done)), key=lambda i: done[i][1])
            keep = sorted(set(ranked) | set(range(len(done) - half, len(done))))
            done = [done[i] for i in keep]
        x = np.array([self.space.encode(a) for a, _ in done])
        y = normal_scores([s for _, s in done])
        with one_blas_thread():
            mean, std = fit_predict(x, y, np.array([self.space.encode(a) for a in cands]))
        batch = min(batch_size(progress, self.batch_after), len(cands))
        if self.acquisition == "its":
            # Independent Thompson sampling (as in BANANAS): a posterior draw per candidate
            # explores more than a fixed bonus and escapes local optima more often; a batch
            # takes each proposal from a draw of its own.
            picks = thompson_picks(mean, std, batch, self.rng, self.kappa)
        else:
            picks = [int(i) for i in np.argsort(-(mean + self.kappa * std), kind="stable")[:batch]]
        self.queue = [cands[i] for i in picks[1:]]
        self.fit_tag = [context, progress, batch]
        return cands[picks[0]]

    # ---- state -----------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            **super().state(),
            "results": self.results,
            "asked": sorted(self.asked),
            "n_asked": self.n_asked,
            "restart_at": self.restart_at,
            "queue": self.queue,
            "fit_tag": self.fit_tag,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self.results = [list(r) for r in state["results"]]
        self.asked, self.n_asked = set(state["asked"]), state["n_asked"]
        self.restart_at = state["restart_at"]
        self.queue, self.fit_tag = list(state.get("queue", [])), state.get("fit_tag")
        self._index_results()


def thompson_picks(
    mean: np.ndarray, std: np.ndarray, batch: int, rng: Any, kappa: float = 1.0
) -> list[int]:
    """`batch` distinct candidates, each the argmax of its own posterior draw (`fidelity`'s
    Thompson turns too)."""
    picks: list[int] = []
    for _ in range(batch):
        z = np.array([rng.gauss(0.0, 1.0) for _ in mean])
        value = mean + kappa * z * std
        value[picks] = -np.inf
        picks.append(int(np.argmax(value)))
    return picks


def normal_scores(values: list[float]) -> np.ndarray:
    """Ranks mapped to standard-normal quantiles (ties share their mean rank)."""
    v = np.asarray(values, dtype=float)
    order = v.argsort(kind="stable")
    ranks = np.empty(len(v))
    ranks[order] = np.arange(len(v))
    for u in np.unique(v):  # average the ranks of ties so equal scores get equal targets
        tie = v == u
        ranks[tie] = ranks[tie].mean()
    nd = NormalDist()
    return np.array([nd.inv_cdf((r + 0.5) / len(v)) for r in ranks])


def fit_predict(x: np.ndarray, y: np.ndarray, xq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GP regression with a squared-exponential kernel; the lengthscale and noise are picked
    from a small grid by marginal likelihood. Returns the posterior mean and std at `xq`."""
    d2 = _sqdist(x, x)
    scale = max(float(d2.mean()), 1e-12)
    best = None
    for rel in LENGTH_GRID:
        k = np.exp(-d2 / (2 * rel * scale))
        for noise in NOISE_GRID:
            try:
                chol = np.linalg.cholesky(k + noise * np.eye(len(y)))
            except np.linalg.LinAlgError:
                continue
            # Triangular solves: O(n^2) where a general solve is O(n^3) (70% of an ask at 200).
            alpha = solve_triangular(chol.T, solve_triangular(chol, y, lower=True), lower=False)
            nll = 0.5 * y @ alpha + np.log(np.diag(chol)).sum()
            if best is None or nll < best[0]:
                best = (nll, rel, chol, alpha)
    if best is None:
        return np.zeros(len(xq)), np.ones(len(xq))
    _, rel, chol, alpha = best
    kq = np.exp(-_sqdist(xq, x) / (2 * rel * scale))
    mean = kq @ alpha
    v = solve_triangular(chol, kq.T, lower=True)
    var = np.clip(1.0 - (v * v).sum(0), 1e-12, None)
    return mean, np.sqrt(var)


def _sqdist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.clip((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T, 0.0, None)
