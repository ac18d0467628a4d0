"""`time_budget` and `accelerator_hours`: a search ends when its wall-clock or GPU-hour
budget is spent, whatever is left of `num_samples`. Ray Tune stoppers: once a budget is spent
every running trial is stopped (it ends as stopped_early, with the epochs it reached) and no new
trial starts. Time spent before a crash counts: a resumed search has what is left."""

from __future__ import annotations

import time

from ray.tune.stopper import Stopper

from orchestrator.resumable import restored, versioned
from orchestrator.tracking.events import gpu_hours


class TimeBudget(Stopper):
    def __init__(self, seconds: float):
        self.seconds = seconds
        self.spent = 0.0  # before this driver started (a resumed search)
        self._since: float | None = None
        self.ended = False
        restored.register("time_budget", self)  # the runner asks it whether it ended the search

    def _elapsed(self) -> float:
        now = time.monotonic()
        if self._since is None:
            self._since = now
        return self.spent + now - self._since

    def left(self) -> float:
        """Seconds of the budget not yet spent."""
        return max(0.0, self.seconds - self._elapsed())

    def __call__(self, trial_id: str, result: dict) -> bool:
        return self.stop_all()

    def stop_all(self) -> bool:
        if not self.ended and self._elapsed() >= self.seconds:
            self.ended = True
        return self.ended

    # The pickled form's version (resumable/versioned.py): nothing added since the first.
    STATE_VERSION = 0
    STATE_UPGRADES: dict = {}

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["spent"], state["_since"] = self._elapsed(), None
        return versioned.stamped(self, state)

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(versioned.upgraded(self, state))
        restored.register("time_budget", self)


class AcceleratorBudget(Stopper):
    """`accelerator_hours`: the GPU time the trials hold, each trial's running time times its
    share of a GPU (`resources.gpu`), summed over trials; the search ends once it is spent.
    Counted from the trials' own clocks (Ray's `time_total_s`), so it survives a resume with
    the trials' results."""

    def __init__(self, hours: float, gpu_per_trial: float):
        self.hours = hours
        self.gpu = gpu_per_trial
        self.seconds: dict[str, float] = {}  # trial id -> its running time so far
        self.ended = False
        restored.register("accelerator_budget", self)

    def spent_hours(self) -> float:
        return gpu_hours(self.seconds, self.gpu)

    def __call__(self, trial_id: str, result: dict) -> bool:
        self.seconds[trial_id] = float(result.get("time_total_s", 0.0))
        return self.stop_all()

    def stop_all(self) -> bool:
        if not self.ended and self.spent_hours() >= self.hours:
            self.ended = True
        return self.ended

    # The pickled form's version (resumable/versioned.py): nothing added since the first.
    STATE_VERSION = 0
    STATE_UPGRADES: dict = {}

    def __getstate__(self) -> dict:
        return versioned.stamped(self, dict(self.__dict__))

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(versioned.upgraded(self, state))
        restored.register("accelerator_budget", self)
