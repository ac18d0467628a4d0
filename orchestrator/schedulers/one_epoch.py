"""The one-epoch top-k baseline (Egele et al. 2023, "Is one epoch all you need for
multi-fidelity hyperparameter optimization?"): every trial trains `epoch` epochs (one by
default), and only those among the best `top_k` of all trials at that epoch so far go on to
the end.

Asynchronous, as ASHA is: a trial is judged when it reaches `epoch`, against every trial that
reached it before, so the first `top_k` always go on and later ones only when they beat the
k-th best. Egele et al. found this matches many multi-fidelity methods at a fraction of their
compute; it belongs in any comparison of them.
"""

from __future__ import annotations

from typing import Any

from ray.tune.schedulers import FIFOScheduler

from orchestrator.schedulers.stopping import CONTINUE, STOP, TIME_ATTR, StopReasons


class OneEpochTopK(StopReasons, FIFOScheduler):
    def __init__(self, *, max_t: int, epoch: int = 1, top_k: int = 3):
        super().__init__()
        self.max_t, self.epoch, self.top_k = max_t, epoch, top_k
        # The best top_k trials' scores at `epoch`; carried through snapshots by
        # resumable/scheduler_state.py as `rung_records`, with the trials they belong to.
        self.rung_records: dict[str, dict[str, float]] = {}
        self.stop_reasons = {}

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        self._trains_on(trial.trial_id)
        t, value = result.get(TIME_ATTR), result.get(self.metric)
        if t != self.epoch or t >= self.max_t or not isinstance(value, (int, float)):
            return CONTINUE
        score = float(value) if self.search_mode != "min" else -float(value)
        kept = self.rung_records.setdefault(str(self.epoch), {})
        if trial.trial_id in kept or len(kept) < self.top_k:
            kept[trial.trial_id] = score
            return CONTINUE
        worst_id, worst = min(kept.items(), key=lambda kv: (kv[1], kv[0]))
        if score > worst:
            del kept[worst_id]
            kept[trial.trial_id] = score
            return CONTINUE
        sign = 1.0 if self.search_mode != "min" else -1.0
        self.stop_reasons[trial.trial_id] = (
            f"one-epoch top-{self.top_k}: {self.metric} {value:.4f} at epoch {t} "
            f"{self._worse()} the {self.top_k}th best so far {sign * worst:.4f}"
        )
        return STOP

    def debug_string(self) -> str:
        return f"OneEpochTopK: {len(self.stop_reasons)} stopped"
