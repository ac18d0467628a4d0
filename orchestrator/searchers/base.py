"""The Strategy interface: what to try next. Pure Python; knows nothing of Ray or schedulers.

A strategy is asked for architectures and told their results (`None` when the trial failed or
was rejected). Its whole state is a JSON-serialisable dict, so a search can be saved after every
result and restored after a crash with the very same next suggestions.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

from search_spaces.base import Arch, SearchSpace

Value = float | Sequence[float] | None


class Strategy(ABC):
    """Ask/tell searcher over a SearchSpace.

    Subclasses implement `ask` and `update`; everything else is optional and declared here with
    a default (as Optuna's BaseSampler declares its optional hooks), so the runner and the
    components read it without probing: `takes_directions` (ranks several objectives itself,
    given Optuna-style `directions`), `takes_dataset` (trains on data itself and is given the
    search's `dataset`), `folder` (set by the runner: the search's folder, where a strategy
    keeps files), `curves()`, `artifacts(folder)` and `figures()` (records for the parent run),
    `observe` (every partial result) and `summary()`.
    """

    takes_directions: ClassVar[bool] = False
    takes_dataset: ClassVar[bool] = False
    folder: str | None = None

    @property
    def multi_objective(self) -> bool:
        """Told every objective's value (its `directions` name several); else the first."""
        return False

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

    def tell(self, arch: Arch, value: Value) -> None:
        """The result of evaluating `arch`, in the metric's own units (None: failed). Several
        values (a multi-objective search) reach a single-objective strategy as the first: the
        one reduction, here, for every searcher."""
        self.update(arch, value if self.multi_objective else primary(value))

    @abstractmethod
    def update(self, arch: Arch, value: Any) -> None:
        """Learn from `tell`'s value: a float or None, or, where `multi_objective`, the values
        of every objective."""

    def observe(self, arch: Arch, epoch: int, value: float) -> None:
        """A partial result: `arch` reached `value` after `epoch` epochs (every report of a
        trial, before `tell` closes it). Searchers that learn from partial evaluations
        (ASHA's rungs) override this; the others ignore it."""
        return None

    def summary(self) -> dict[str, float]:
        """Numbers worth keeping about the search itself (logged on the parent run at the end)."""
        return {}

    def curves(self) -> dict[str, list[tuple[int, float]]]:
        """Metric series (step, value) for the parent run (darts: alpha per epoch)."""
        return {}

    def artifacts(self, folder: str) -> list[str]:
        """Files this strategy wrote into `folder` for the parent run."""
        return []

    def figures(self) -> dict[str, dict[str, Any]]:
        """Plots for the parent run, drawn by reporting (a strategy never draws): a name of
        `reporting.figures.FIGURES` -> its data (darts: `alphas`, the weights per edge)."""
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


def primary(value: Value) -> float | None:
    """The objective a single-objective searcher optimises: the value, or the first of several
    (so a multi-objective run can still be driven by, and compared with, these searchers)."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    return float(value[0])


def rng_to_json(rng: random.Random) -> list:
    version, internal, gauss = rng.getstate()
    return [version, list(internal), gauss]


def rng_from_json(state: list) -> tuple:
    version, internal, gauss = state
    return (version, tuple(internal), gauss)
