"""Early-stopping schedulers that say why they stopped a trial.

Each class is Ray Tune's own scheduler with unchanged decisions; it only writes, when it stops a
trial before its last epoch, a readable reason into `stop_reasons[trial_id]`. The MLflow tracker
runs on the driver next to the scheduler and tags the trial's run with it (`trial_tags`).
`CurveStopping` is our own rule: it extrapolates each trial's learning curve.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ray.tune.schedulers import (
    AsyncHyperBandScheduler,
    FIFOScheduler,
    HyperBandScheduler,
    MedianStoppingRule,
    TrialScheduler,
)

from orchestrator import compat
from orchestrator.core import tags as T

CONTINUE, STOP = TrialScheduler.CONTINUE, TrialScheduler.STOP
TIME_ATTR = "training_iteration"  # the one clock every nasorch scheduler counts in (epochs)
# Exponents tried for the curve a - b * t^-c; ties go to the first, the most optimistic.
CURVE_EXPONENTS = (0.25, 0.5, 1.0, 2.0)


class StopReasons:
    """Mixin: why each early-stopped trial was stopped, as MLflow tags for the tracker."""

    stop_reasons: dict[str, str]

    def trial_tags(self, trial_id: str) -> dict[str, str]:
        reason = self.stop_reasons.get(trial_id)
        return {T.STOP_REASON: reason} if reason else {}

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        self._trains_on(trial.trial_id)
        return super().on_trial_result(tune_controller, trial, result)

    def _trains_on(self, trial_id: str) -> None:
        """A result from a trial this scheduler stopped: the stop never happened (a crash came
        between the decision and the stop, and the resumed trial trains on), so the reason is
        void; a later stop records its own."""
        self.stop_reasons.pop(trial_id, None)

    search_mode: str | None = None  # what Tune set: min or max

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        ok = super().set_search_properties(metric, mode, **spec)
        self.search_mode = mode or self.search_mode
        return ok

    @staticmethod
    def _clock(kwargs: dict) -> dict:
        """Every nasorch scheduler counts epochs (Ray's training_iteration)."""
        if kwargs.setdefault("time_attr", TIME_ATTR) != TIME_ATTR:
            raise ValueError(f"time_attr must be {TIME_ATTR!r}, got {kwargs['time_attr']!r}")
        return kwargs

    def _worse(self) -> str:
        return "below" if (self.search_mode or "max") == "max" else "above"


class ASHA(StopReasons, AsyncHyperBandScheduler):
    def __init__(self, *, max_t: int, reduction_factor: float = 3, **kwargs: Any):
        super().__init__(max_t=max_t, reduction_factor=reduction_factor, **self._clock(kwargs))
        self.max_epochs, self.reduction_factor = max_t, reduction_factor
        self.stop_reasons = {}

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        # Read before the bracket records this result.
        rung = compat.asha_rung(self, trial.trial_id, result.get(TIME_ATTR))
        action = super().on_trial_result(tune_controller, trial, result)
        epoch = result.get(TIME_ATTR, 0)
        if action == STOP and epoch < self.max_epochs:  # at max_t ASHA "stops" a finished trial
            measured = None if rung is None else compat.asha_cutoff(self, trial.trial_id, rung)
            if measured is None:
                self.stop_reasons[trial.trial_id] = f"asha: stopped at epoch {epoch:g}"
            else:
                milestone, (cutoff, others) = rung[0], measured
                value = result[self.metric]
                self.stop_reasons[trial.trial_id] = (
                    f"asha rung {milestone:g}: {self.metric} {value:.4f} {self._worse()} the "
                    f"rung's cutoff {cutoff:.4f} (top 1/{self.reduction_factor:g} of "
                    f"{others + 1} trials go on)"
                )
        return action


class _RecordingBracket(compat.hyperband_bracket_class()):
    """A Hyperband bracket that writes down why successive halving dropped each trial."""

    reasons: dict[str, str]
    worse: str

    def successive_halving(self, metric: str, metric_op: float) -> tuple[list, list]:
        epoch, live = compat.hyperband_bracket_view(self)
        entered = len(live)
        good, bad = super().successive_halving(metric, metric_op)
        if good and bad:  # every trial in `bad` is stopped by the scheduler
            cutoff = min(metric_op * live[t][metric] for t in good) * metric_op
            for t in bad:
                value = live[t][metric]
                self.reasons[t.trial_id] = (
                    f"hyperband rung {epoch:g}: {metric} {value:.4f} {self.worse} the cutoff "
                    f"{cutoff:.4f} (top {len(good)} of {entered} trials in its bracket go on)"
                )
        return good, bad


def _share_reasons(scheduler: Any, bracket: _RecordingBracket) -> None:
    bracket.reasons, bracket.worse = scheduler.stop_reasons, scheduler._worse()


class Hyperband(
    StopReasons,
    compat.hyperband_with_bracket_class(HyperBandScheduler, _RecordingBracket, _share_reasons),
):
    def __init__(self, **kwargs: Any):
        super().__init__(**self._clock(kwargs))
        self.stop_reasons = {}


class MedianStopping(StopReasons, MedianStoppingRule):
    def __init__(self, **kwargs: Any):
        super().__init__(**self._clock(kwargs))
        self.stop_reasons = {}

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        action = super().on_trial_result(tune_controller, trial, result)
        if action == STOP:
            t = result[TIME_ATTR]
            best, means = compat.median_rule_view(self, trial, t)
            self.stop_reasons[trial.trial_id] = (
                f"median rule at epoch {t:g}: best {self.metric} {best:.4f} "
                f"{self._worse()} the median {np.median(means):.4f} of {len(means)} other "
                "trials' running means"
            )
        return action


def predict_final(epochs: list[float], values: list[float], horizon: float) -> tuple[float, float]:
    """Extrapolates a learning curve to `horizon`: least squares of y(t) = a + b * t^-c for each
    c in CURVE_EXPONENTS (linear in a, b), keeping the best fit. Returns (prediction, c).

    A rising, saturating curve has b < 0. Deterministic, and microseconds per call."""
    t = np.asarray(epochs, dtype=float)
    y = np.asarray(values, dtype=float)
    best: tuple[float, float, np.ndarray] | None = None
    for c in CURVE_EXPONENTS:
        design = np.stack([np.ones_like(t), t**-c], axis=1)
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        residual = float(np.sum((design @ coef - y) ** 2))
        if best is None or residual < best[0] - 1e-12:
            best = (residual, c, coef)
    _, c, (a, b) = best
    return float(a + b * horizon**-c), c


class CurveStopping(StopReasons, FIFOScheduler):
    """Learning-curve stopping: after `grace_period` epochs, fit the trial's curve so far
    (`predict_final`) and stop it when its predicted value at `max_t`, given `margin` of slack,
    cannot reach the best value any other trial has already shown."""

    def __init__(self, max_t: int, grace_period: int = 3, margin: float = 0.02):
        super().__init__()
        self.max_t, self.grace_period, self.margin = max_t, grace_period, margin
        self._curves: dict[str, dict[float, float]] = {}  # trial id -> epoch -> score
        self._names: dict[str, str] = {}  # trial id -> t-number, for the reasons
        self.stop_reasons = {}

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        self._trains_on(trial.trial_id)
        t, value = result.get(TIME_ATTR), result.get(self.metric)
        if t is None or not isinstance(value, (int, float)):
            return CONTINUE
        sign = 1.0 if self.search_mode != "min" else -1.0  # scores: higher is better
        curve = self._curves.setdefault(trial.trial_id, {})
        curve[t] = sign * float(value)  # a resumed trial overwrites the epochs it repeats
        self._names[trial.trial_id] = T.trial_name(T.trial_number(trial.config))
        if t < self.grace_period or t >= self.max_t:
            return CONTINUE
        leader = self._leader(exclude=trial.trial_id)
        if leader is None:
            return CONTINUE
        best, leader_id = leader
        epochs = sorted(curve)
        predicted, c = predict_final(epochs, [curve[e] for e in epochs], self.max_t)
        if predicted + self.margin >= best:
            return CONTINUE
        self.stop_reasons[trial.trial_id] = (
            f"curve at epoch {t:g}: predicted {self.metric} at epoch {self.max_t} "
            f"{sign * predicted:.4f} (fit a - b*t^-{c:g}), with margin {self.margin:g} "
            f"{self._worse()} the best so far {sign * best:.4f} ({self._names[leader_id]})"
        )
        return STOP

    def _leader(self, exclude: str) -> tuple[float, str] | None:
        scores = [(max(c.values()), tid) for tid, c in self._curves.items() if tid != exclude]
        return max(scores) if scores else None

    def debug_string(self) -> str:
        return f"CurveStopping: {len(self.stop_reasons)} stopped"
