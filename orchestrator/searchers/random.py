"""Random search: independent uniform samples from the space."""

from __future__ import annotations

from search_spaces.base import Arch

from orchestrator.searchers.base import Strategy, Value


class RandomSearch(Strategy):
    def ask(self) -> Arch:
        return self.space.sample(self.rng)

    def tell(self, arch: Arch, value: Value) -> None:
        pass  # random search learns nothing
