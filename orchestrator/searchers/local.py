"""Local search over the space's neighbourhood, with random restarts (White et al., 2020, found
this simple method to be a strong baseline on NAS benchmarks).

The search keeps a centre and tries its neighbours (`space.neighbours`) in random order.
`improvement="first"` moves to the first neighbour that beats the centre; `"best"` waits for all
neighbours and moves to the best. When the whole neighbourhood is done without improvement the
centre is a local optimum and the next random architecture becomes the centre. No architecture
is asked for twice. Asks can run ahead of tells: once the centre's neighbours are all out, asks
start the next restart early rather than wait.
"""

from __future__ import annotations

from typing import Any

from orchestrator.searchers.base import Strategy
from search_spaces.base import Arch, SearchSpace


class LocalSearch(Strategy):
    def __init__(
        self,
        space: SearchSpace,
        *,
        mode: str = "max",
        seed: int | None = None,
        improvement: str = "first",
        num_init: int = 1,
        neighbours_limit: int = 64,
    ):
        super().__init__(space, mode=mode, seed=seed)
        if improvement not in ("first", "best"):
            raise ValueError(f"improvement must be 'first' or 'best', got {improvement!r}")
        if num_init < 1:
            raise ValueError(f"num_init must be >= 1, got {num_init}")
        self.improvement, self.num_init, self.limit = improvement, num_init, neighbours_limit
        self.center: list | None = None  # [arch, score]
        self.best_neighbour: list | None = None  # [arch, score], for improvement="best"
        self.queue: list[Arch] = []  # neighbours of the centre not yet asked for
        self.out: list[str] = []  # keys of the centre's neighbours asked, not yet told
        self.restarts: list[str] = []  # keys of restart samples asked, not yet told
        self.seen: dict[str, float | None] = {}  # every key asked for, with its score once told
        self.n_asked = self.n_told = 0

    def _exhausted(self) -> bool:
        return not self.queue and not self.out

    def _move(self, arch: Arch, score: float) -> None:
        self.center, self.best_neighbour, self.out = [arch, score], None, []
        nbrs = self.space.neighbours(arch, self.rng, self.limit)
        self.queue = [n for n in nbrs if self.space.key(n) not in self.seen]

    def ask(self) -> Arch:
        self.n_asked += 1
        if self.n_asked > self.num_init:
            while self.queue:
                cand = self.queue.pop(0)
                k = self.space.key(cand)
                if k not in self.seen:
                    self.seen[k], self.out = None, [*self.out, k]
                    return cand
        # Initial samples and restarts: a random architecture not tried before.
        for _ in range(100):
            cand = self.space.sample(self.rng)
            if self.space.key(cand) not in self.seen:
                break
        k = self.space.key(cand)
        self.seen[k], self.restarts = None, [*self.restarts, k]
        return cand

    def update(self, arch: Arch, value: float | None) -> None:
        k = self.space.key(arch)
        score = None if value is None else self.score(value)
        self.seen[k] = score
        self.n_told += 1
        was_restart, was_neighbour = k in self.restarts, k in self.out
        self.restarts = [r for r in self.restarts if r != k]
        self.out = [o for o in self.out if o != k]
        if score is not None:
            if self.center is None or (self.n_told <= self.num_init and score > self.center[1]):
                self._move(arch, score)  # the best initial sample so far
                return
            if was_restart and self._exhausted():
                self._move(arch, score)  # the centre was a local optimum: start again here
                return
            if self.improvement == "first" and score > self.center[1]:
                self._move(arch, score)
                return
            if was_neighbour and (self.best_neighbour is None or score > self.best_neighbour[1]):
                self.best_neighbour = [arch, score]
        if self.improvement == "best" and self._exhausted() and self.best_neighbour:
            if self.best_neighbour[1] > self.center[1]:
                self._move(*self.best_neighbour)

    def state(self) -> dict[str, Any]:
        return {
            **super().state(),
            "center": self.center,
            "best_neighbour": self.best_neighbour,
            "queue": self.queue,
            "out": self.out,
            "restarts": self.restarts,
            "seen": self.seen,
            "n_asked": self.n_asked,
            "n_told": self.n_told,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self.center, self.best_neighbour = state["center"], state["best_neighbour"]
        self.queue, self.out, self.restarts = state["queue"], state["out"], state["restarts"]
        self.seen, self.n_asked, self.n_told = state["seen"], state["n_asked"], state["n_told"]
