"""Random search: independent uniform samples from the space."""

from __future__ import annotations

from orchestrator.searchers.base import Strategy, Value
from search_spaces.base import Arch


class RandomSearch(Strategy):
    def ask(self) -> Arch:
        return self.space.sample(self.rng)

    def tell(self, arch: Arch, value: Value) -> None:
        pass  # random search learns nothing
