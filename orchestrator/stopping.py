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
from ray.tune.schedulers import hyperband as _hb

CONTINUE, STOP = TrialScheduler.CONTINUE, TrialScheduler.STOP
# Exponents tried for the curve a - b * t^-c; ties go to the first, the most optimistic.
CURVE_EXPONENTS = (0.25, 0.5, 1.0, 2.0)


class StopReasons:
    """Mixin: why each early-stopped trial was stopped, as MLflow tags for the tracker."""

    stop_reasons: dict[str, str]

    def trial_tags(self, trial_id: str) -> dict[str, str]:
        reason = self.stop_reasons.get(trial_id)
        return {"nasorch.stop_reason": reason} if reason else {}

    def _worse(self) -> str:
        return "below" if getattr(self, "_mode", "max") == "max" else "above"


class ASHA(StopReasons, AsyncHyperBandScheduler):
    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.stop_reasons = {}

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        rung = self._rung(trial, result)  # read before the bracket records this result
        action = super().on_trial_result(tune_controller, trial, result)
        epoch = result.get(self._time_attr, 0)
        if action == STOP and epoch < self._max_t:  # at max_t ASHA "stops" a finished trial
            if rung is None:
                self.stop_reasons[trial.trial_id] = f"asha: stopped at epoch {epoch:g}"
            else:
                milestone, cutoff, others = rung
                value = result[self._metric]
                self.stop_reasons[trial.trial_id] = (
                    f"asha rung {milestone:g}: {self._metric} {value:.4f} {self._worse()} the "
                    f"rung's cutoff {cutoff:.4f} (top 1/{self._rf:g} of {others + 1} trials go on)"
                )
        return action

    def _rung(self, trial: Any, result: dict) -> tuple[float, float, int] | None:
        """(milestone, cutoff in metric units, trials recorded there) of the rung this result
        reaches, as Ray's `_Bracket.on_result` finds it; None when it reaches none."""
        bracket = self._trial_info.get(trial.trial_id)
        t = result.get(self._time_attr)
        if bracket is None or t is None:
            return None
        for milestone, recorded in bracket._rungs:
            if t < milestone or trial.trial_id in recorded:
                continue
            cutoff = bracket.cutoff(recorded)
            if cutoff is None:
                return None
            return milestone, float(cutoff) * self._metric_op, len(recorded)
        return None

    @property
    def _rf(self) -> float:
        return self._brackets[0].rf


class _RecordingBracket(_hb._Bracket):
    """A Hyperband bracket that writes down why successive halving dropped each trial."""

    reasons: dict[str, str]
    worse: str

    def successive_halving(self, metric: str, metric_op: float) -> tuple[list, list]:
        epoch, entered = self._cumul_r, len(self._live_trials)
        good, bad = super().successive_halving(metric, metric_op)
        if good and bad:  # every trial in `bad` is stopped by the scheduler
            cutoff = min(metric_op * self._live_trials[t][metric] for t in good) * metric_op
            for t in bad:
                value = self._live_trials[t][metric]
                self.reasons[t.trial_id] = (
                    f"hyperband rung {epoch:g}: {metric} {value:.4f} {self.worse} the cutoff "
                    f"{cutoff:.4f} (top {len(good)} of {entered} trials in its bracket go on)"
                )
        return good, bad


class Hyperband(StopReasons, HyperBandScheduler):
    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.stop_reasons = {}

    def _create_bracket(self, s: int) -> _hb._Bracket:
        bracket = _RecordingBracket(
            time_attr=self._time_attr,
            max_trials=self._get_n0(s),
            init_t_attr=self._get_r0(s),
            max_t_attr=self._max_t_attr,
            eta=self._eta,
            s=s,
            stop_last_trials=self._stop_last_trials,
        )
        bracket.reasons, bracket.worse = self.stop_reasons, self._worse()
        return bracket


class MedianStopping(StopReasons, MedianStoppingRule):
    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.stop_reasons = {}

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        action = super().on_trial_result(tune_controller, trial, result)
        if action == STOP:
            t = result[self._time_attr]
            others = [o for o in self._trials_beyond_time(t) if o is not trial]
            means = [m for m in (self._running_mean(o, t) for o in others) if np.isfinite(m)]
            self.stop_reasons[trial.trial_id] = (
                f"median rule at epoch {t:g}: best {self._metric} {self._best_result(trial):.4f} "
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
        self._time_attr = "training_iteration"
        self._metric: str | None = None
        self._mode: str | None = None
        self._curves: dict[str, dict[float, float]] = {}  # trial id -> epoch -> score
        self._names: dict[str, str] = {}  # trial id -> t-number, for the reasons
        self.stop_reasons = {}

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        self._metric = metric or self._metric
        self._mode = mode or self._mode
        return True

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        t, value = result.get(self._time_attr), result.get(self._metric)
        if t is None or not isinstance(value, (int, float)):
            return CONTINUE
        sign = 1.0 if self._mode != "min" else -1.0  # scores: higher is better
        curve = self._curves.setdefault(trial.trial_id, {})
        curve[t] = sign * float(value)  # a resumed trial overwrites the epochs it repeats
        self._names[trial.trial_id] = f"t{trial.config.get('trial_number', 0):03d}"
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
            f"curve at epoch {t:g}: predicted {self._metric} at epoch {self.max_t} "
            f"{sign * predicted:.4f} (fit a - b*t^-{c:g}), with margin {self.margin:g} "
            f"{self._worse()} the best so far {sign * best:.4f} ({self._names[leader_id]})"
        )
        return STOP

    def _leader(self, exclude: str) -> tuple[float, str] | None:
        scores = [(max(c.values()), tid) for tid, c in self._curves.items() if tid != exclude]
        return max(scores) if scores else None

    def debug_string(self) -> str:
        return f"CurveStopping: {len(self.stop_reasons)} stopped"
