"""Random search: independent uniform samples from the space."""

from __future__ import annotations

from orchestrator.searchers.base import Strategy
from search_spaces.base import Arch


class RandomSearch(Strategy):
    def ask(self) -> Arch:
        return self.space.sample(self.rng)

    def update(self, arch: Arch, value: float | None) -> None:
        pass  # random search learns nothing
