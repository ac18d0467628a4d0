"""The `fidelity` scheduler: ASHA's rungs, with promotion by expected improvement (our own).

At each of ASHA's rungs (grace_period x reduction_factor^k epochs) a trial outside the top
1/reduction_factor of that rung's results so far is stopped, exactly as Ray's ASHA would: the
safety net. A trial that survives is not continued at once, as ASHA does, but weighed: when
the searcher's model (the `fidelity` searcher, consulted through `consult`) rates continuing it
to its next rung below starting a new configuration or resuming another paused trial, by EI at
the rung each would reach, the trial pauses and frees its worker. When a worker frees,
`choose_trial_to_run` resumes the paused trial of the largest EI when it beats a new one.
With any other searcher (no model) it decides as ASHA does and pauses nothing.

The paused trials' EIs are computed for all of them once per model fit and kept in a heap, so
choosing among thousands of paused trials costs the same as among a few.

Why: ASHA promotes every trial in a rung's top third as soon as it gets there, so a good
searcher's proposals take most of the epochs; with few workers that is most of the budget.
Weighing a promotion against a fresh configuration is DyHPO's decision, made here at ASHA's
rungs so that what ASHA would stop is still stopped.
"""

from __future__ import annotations

import heapq
from typing import Any

import numpy as np
from ray.tune.experiment import Trial
from ray.tune.schedulers import FIFOScheduler

from orchestrator.schedulers.stopping import CONTINUE, STOP, TIME_ATTR, StopReasons

PAUSE = FIFOScheduler.PAUSE


class FidelityScheduler(StopReasons, FIFOScheduler):
    def __init__(self, *, max_t: int, grace_period: int = 1, reduction_factor: float = 3):
        super().__init__()
        self.max_t, self.reduction_factor = max_t, reduction_factor
        self.milestones: list[int] = []
        m = float(grace_period)
        while round(m) < max_t:
            if not self.milestones or round(m) > self.milestones[-1]:
                self.milestones.append(round(m))
            m *= reduction_factor
        # Rung -> trial id -> score (higher is better); carried through snapshots by
        # resumable/scheduler_state.py like the stop reasons.
        self.rung_records: dict[str, dict[str, float]] = {}
        self.stop_reasons = {}
        self.model: Any = None  # the searcher whose `gains` / `new_gain` decide promotions
        self._starved = False  # asked for a new trial, and none came: resume a paused one
        self._gains: dict[str, tuple[int, float]] = {}  # paused trial -> (model version, EI)
        self._heap: list[tuple[float, int, str]] = []  # (-EI, order, trial id), lazily pruned
        self._pushed = 0  # order of pushes: ties go to the trial paused first
        self._paused: dict[str, Any] = {}  # trial id -> trial, of those in the heap
        self._heap_version: int | None = None  # the model version the heap was built under

    def consult(self, strategy: Any) -> None:
        """Decide promotions with `strategy`'s model, when it has one (the `fidelity`
        searcher); it predicts up to this scheduler's last epoch."""
        if hasattr(strategy, "gains") and hasattr(strategy, "new_gain"):
            self.model = strategy
            strategy.horizon = self.max_t

    def _next(self, epoch: int) -> int:
        return next((m for m in self.milestones if m > epoch), self.max_t)

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        self._starved = False
        super().on_trial_add(tune_controller, trial)

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        self._trains_on(trial.trial_id)
        t, value = result.get(TIME_ATTR), result.get(self.metric)
        if t is None or not isinstance(value, (int, float)) or t not in self.milestones:
            return CONTINUE
        score = float(value) if self.search_mode != "min" else -float(value)
        recorded = self.rung_records.setdefault(str(t), {})
        again = trial.trial_id in recorded  # a resumed trial repeating its rung
        cutoff = None
        if recorded and not again:  # Ray's ASHA: the top 1/rf of the results before this one
            cutoff = float(np.nanpercentile(list(recorded.values()), 100 / self.reduction_factor
                                            * (self.reduction_factor - 1)))  # fmt: skip
        recorded[trial.trial_id] = score
        if cutoff is not None and score < cutoff:
            sign = 1.0 if self.search_mode != "min" else -1.0
            self.stop_reasons[trial.trial_id] = (
                f"fidelity rung {t}: {self.metric} {value:.4f} {self._worse()} the rung's cutoff "
                f"{sign * cutoff:.4f} (top 1/{self.reduction_factor:g} of {len(recorded)} trials "
                "go on)"
            )
            return STOP
        if self.model is None:
            return CONTINUE
        mine = self.model.gains([trial.config["arch"]], [self._next(t)])
        if mine is None:
            return CONTINUE
        paused = self._best_paused(tune_controller)
        rival = max(self._new_gain(), paused[1] if paused else 0.0)
        if mine[0] >= rival:
            return CONTINUE
        if self._heap_version == self.model.version:  # the heap holds it from now on
            self._gains[trial.trial_id] = (self.model.version, float(mine[0]))
            self._paused[trial.trial_id] = trial
            self._pushed += 1
            heapq.heappush(self._heap, (-float(mine[0]), self._pushed, trial.trial_id))
        return PAUSE

    def _new_gain(self) -> float:
        gain = self.model.new_gain(self.milestones[0] if self.milestones else self.max_t)
        return 0.0 if gain is None else gain

    def _best_paused(self, tune_controller: Any) -> tuple[Any, float] | None:
        def scan() -> list[Any]:
            return [t for t in tune_controller.get_trials() if t.status == Trial.PAUSED]

        if self.model is None:
            paused = scan()
            return (paused[0], 0.0) if paused else None
        # A paused trial's EI changes only when the model is refit: computed once per fit, for
        # every paused trial, into a heap that trials paused until the next fit join (a scan
        # of every trial per fit, not per decision: there may be thousands paused).
        self.model.model()  # refit first when due, so the version read is the one used
        version = self.model.version
        if version != self._heap_version and not self._rebuild(scan(), version):
            paused = scan()  # no model yet
            return (paused[0], 0.0) if paused else None
        best = self._heap_top(version)
        # A trial paused outside this scheduler's decisions (restored by a resume, or chosen
        # to run and left paused) is not in the heap: when it runs dry, look again, so a paused
        # trial is never left waiting while the search idles.
        if best is None and self._rebuild(scan(), version):
            best = self._heap_top(version)
        return best

    def _rebuild(self, paused: list[Any], version: int) -> bool:
        """The heap of `paused`'s EIs under model `version` (False: no model yet)."""
        epochs = [self._next(t.last_result.get(TIME_ATTR, 0)) for t in paused]
        gains = self.model.gains([t.config["arch"] for t in paused], epochs) if paused else []
        if gains is None:
            return False
        self._gains = {t.trial_id: (version, float(g)) for t, g in zip(paused, gains)}
        self._paused = {t.trial_id: t for t in paused}
        # Ties go to the trial paused first, as `max` over the trials in order did.
        self._heap = [(-g, i, t.trial_id) for i, (t, g) in enumerate(zip(paused, gains))]
        self._pushed = len(self._heap)
        heapq.heapify(self._heap)
        self._heap_version = version
        return True

    def _heap_top(self, version: int) -> tuple[Any, float] | None:
        while self._heap:
            gain, _, trial_id = self._heap[0]
            trial = self._paused.get(trial_id)
            if trial is not None and trial.status == Trial.PAUSED:
                if self._gains.get(trial_id) == (version, -gain):
                    return trial, -gain
            heapq.heappop(self._heap)  # resumed, ended, or re-paused with another EI since
        return None

    def choose_trial_to_run(self, tune_controller: Any) -> Any:
        pending = next((t for t in tune_controller.get_trials() if t.status == Trial.PENDING),
                       None)  # fmt: skip
        paused = self._best_paused(tune_controller)
        if paused is not None:
            new = self._new_gain() if self.model is not None else 0.0
            if self._starved or pending is None and self.model is None or paused[1] > new:
                self._gains.pop(paused[0].trial_id, None)  # its next rung is another
                return paused[0]
        if pending is None and paused is not None:
            self._starved = True  # the next call resumes one, unless a new trial comes first
        return pending

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict) -> None:
        self._gains.pop(trial.trial_id, None)
        super().on_trial_complete(tune_controller, trial, result)

    def on_trial_remove(self, tune_controller: Any, trial: Any) -> None:
        self._gains.pop(trial.trial_id, None)
        super().on_trial_remove(tune_controller, trial)

    def debug_string(self) -> str:
        return f"FidelityScheduler: {len(self.stop_reasons)} stopped"
