"""Regularized evolution (Real et al., AAAI 2019): tournament selection with aging.

The first `population_size` asks are random. After that each ask samples `sample_size` members
of the population, mutates the best of them, and each result joins the population while the
oldest member leaves (aging, not the worst: that is what regularizes it against lucky
evaluations). Results may arrive in any order and asks may run ahead of tells.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from orchestrator.searchers.base import Strategy
from search_spaces.base import Arch, SearchSpace


class RegularizedEvolution(Strategy):
    def __init__(
        self,
        space: SearchSpace,
        *,
        mode: str = "max",
        seed: int | None = None,
        population_size: int = 10,
        sample_size: int = 3,
    ):
        super().__init__(space, mode=mode, seed=seed)
        if population_size < 1 or not 1 <= sample_size <= population_size:
            raise ValueError(
                f"need population_size >= 1 and 1 <= sample_size <= population_size, "
                f"got {population_size} and {sample_size}"
            )
        self.population_size, self.sample_size = population_size, sample_size
        self.population: deque[tuple[Arch, float]] = deque(maxlen=population_size)
        self.n_asked = 0

    def ask(self) -> Arch:
        self.n_asked += 1
        # Random while the initial population is still being asked for (unless results told
        # before the first ask, a warm start, filled it already), or all of it failed.
        filling = self.n_asked <= self.population_size
        if (filling and len(self.population) < self.population_size) or not self.population:
            return self.space.sample(self.rng)
        k = min(self.sample_size, len(self.population))
        contestants = self.rng.sample(range(len(self.population)), k)
        parent = max(contestants, key=lambda i: self.population[i][1])
        return self.space.mutate(self.population[parent][0], self.rng)

    def update(self, arch: Arch, value: float | None) -> None:
        if value is None:
            return  # a failed child never joins the population
        self.population.append((arch, self.score(value)))  # maxlen drops the oldest

    def state(self) -> dict[str, Any]:
        return {
            **super().state(),
            "population": [[a, s] for a, s in self.population],
            "n_asked": self.n_asked,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self.population = deque(
            ((a, s) for a, s in state["population"]), maxlen=self.population_size
        )
        self.n_asked = state["n_asked"]
