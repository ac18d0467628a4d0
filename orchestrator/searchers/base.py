"""The Strategy interface: what to try next. Pure Python; knows nothing of Ray or schedulers.

A strategy is asked for architectures and told their results (`None` when the trial failed or
was rejected). Its whole state is a JSON-serialisable dict, so a search can be saved after every
result and restored after a crash with the very same next suggestions.
"""

from __future__ import annotations

import json
import os
import random
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from orchestrator.core.jsonio import write_json_atomic
from search_spaces.base import Arch, SearchSpace

Value = float | Sequence[float] | None


class Strategy(ABC):
    """Ask/tell searcher over a SearchSpace."""

    def __init__(self, space: SearchSpace, *, mode: str = "max", seed: int | None = None):
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        self.space = space
        self.mode = mode
        self.seed = seed
        self.rng = random.Random(seed)

    @abstractmethod
    def ask(self) -> Arch | None:
        """The next architecture to evaluate, or None when the strategy has nothing left."""

    @abstractmethod
    def tell(self, arch: Arch, value: Value) -> None:
        """The result of evaluating `arch`, in the metric's own units (None: failed)."""

    def observe(self, arch: Arch, epoch: int, value: float) -> None:
        """A partial result: `arch` reached `value` after `epoch` epochs (every report of a
        trial, before `tell` closes it). Searchers that learn from partial evaluations
        (ASHA's rungs) override this; the others ignore it."""
        return None

    def summary(self) -> dict[str, float]:
        """Numbers worth keeping about the search itself (logged on the parent run at the end)."""
        return {}

    def score(self, value: float) -> float:
        """`value` oriented so that larger is always better."""
        return value if self.mode == "max" else -value

    # ---- state ---------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Everything needed to continue exactly where this strategy is (JSON-serialisable)."""
        return {"rng": rng_to_json(self.rng)}

    def load_state(self, state: dict[str, Any]) -> None:
        self.rng.setstate(rng_from_json(state["rng"]))

    def save(self, path: str | os.PathLike) -> None:
        write_json_atomic(path, {"strategy": type(self).__name__, "state": self.state()})

    def restore(self, path: str | os.PathLike) -> None:
        with open(path) as f:
            self.load_state(json.load(f)["state"])


def rng_to_json(rng: random.Random) -> list:
    version, internal, gauss = rng.getstate()
    return [version, list(internal), gauss]


def rng_from_json(state: list) -> tuple:
    version, internal, gauss = state
    return (version, tuple(internal), gauss)
