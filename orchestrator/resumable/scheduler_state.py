"""The scheduler's bookkeeping through Ray's experiment snapshots.

The scheduler is not part of Ray's snapshot, so `SchedulerState`, a callback, carries nasorch's
records on it (stop reasons, PBT exploits) and ASHA's rungs.
"""

from __future__ import annotations

from typing import Any

from ray.tune import Callback
from ray.tune.schedulers import AsyncHyperBandScheduler

from orchestrator import compat

# nasorch's own records on a scheduler: why trials stopped, PBT's exploits (see stopping.py and
# population.py). They become MLflow tags when a trial ends, so they must survive a resume.
RECORDS = ("stop_reasons", "exploits", "_tagged", "rung_records")  # rungs: fidelity, one_epoch


class SchedulerState(Callback):
    """Carries the scheduler's bookkeeping through Ray's experiment snapshots: nasorch's stop
    reasons and PBT exploit records, and ASHA's rungs. Other statistics (Hyperband's brackets,
    the median rule's curves, PBT's quantiles) are rebuilt from the resumed trials' results."""

    def __init__(self, scheduler: Any):
        self.scheduler = scheduler

    def get_state(self) -> dict | None:
        s = self.scheduler
        state: dict[str, Any] = {k: getattr(s, k) for k in RECORDS if hasattr(s, k)}
        if isinstance(s, AsyncHyperBandScheduler):
            state.update(compat.asha_state(s))
        return state or None

    def set_state(self, state: dict) -> None:
        s = self.scheduler
        if not state:
            return
        for key in RECORDS:
            if key in state and hasattr(s, key):
                getattr(s, key).update(state[key])
        if "rungs" not in state or not isinstance(s, AsyncHyperBandScheduler):
            return
        compat.asha_restore(s, state)
