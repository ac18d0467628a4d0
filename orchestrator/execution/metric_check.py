"""Stops a search whose trainable never reports the metric it optimises.

Ray Tune's own check raises a ValueError from deep inside its loop (a 72-line traceback, runs
left open). This stopper sees every result before the scheduler does: the first one that has
metrics but not the search's metric stops the search, and the runner turns `problem` into one
line naming the metric and what the trainable did report.
"""

from __future__ import annotations

from ray.tune.stopper import Stopper

from orchestrator.resumable import restored, versioned
from orchestrator.tracking.events import reported_metrics


class MetricCheck(Stopper):
    def __init__(self, metric: str):
        self.metric = metric
        self.problem: str | None = None
        self.trial_id: str | None = None  # the trial whose result lacked the metric

    def __call__(self, trial_id: str, result: dict) -> bool:
        if self.problem is not None:
            return True
        if self.metric in result:
            return False
        reported = sorted(reported_metrics(result))
        if not reported:  # a trial that ended without reporting anything: not this problem
            return False
        self.trial_id = trial_id
        self.problem = (
            f"metric: the trainable never reports {self.metric!r}; it reported "
            f"{', '.join(reported)} (set `metric` to one of them)"
        )
        return True

    # The pickled form's version (resumable/versioned.py): nothing added since the first.
    STATE_VERSION = 0
    STATE_UPGRADES: dict = {}

    def __getstate__(self) -> dict:
        return versioned.stamped(self, dict(self.__dict__))

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(versioned.upgraded(self, state))
        restored.register("metric_check", self)

    def stop_all(self) -> bool:
        return self.problem is not None
