"""`time_budget`: a search ends when its wall-clock budget is spent, whatever is left of
`num_samples`. A Ray Tune stopper: once the budget is spent it stops every running trial (they
end as stopped_early, with the epochs they reached) and no new trial starts. Time spent before
a crash counts: a resumed search has what is left.
"""

from __future__ import annotations

import time

from ray.tune.stopper import Stopper

from orchestrator.resume import restored


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

    def __call__(self, trial_id: str, result: dict) -> bool:
        return self.stop_all()

    def stop_all(self) -> bool:
        if not self.ended and self._elapsed() >= self.seconds:
            self.ended = True
        return self.ended

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["spent"], state["_since"] = self._elapsed(), None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        restored.register("time_budget", self)
