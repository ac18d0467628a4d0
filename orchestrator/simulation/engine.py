"""A search in simulated time: real searcher and scheduler objects, curves instead of training.

N workers share a simulated clock. A worker that frees asks the scheduler for a paused or
pending trial (`choose_trial_to_run`, as Ray Tune's controller does), else the searcher for a
new one (through `StrategySearcher` and its gate, as a real search does). A running trial
reports each epoch at the time its curve says; the scheduler answers continue / stop / pause
with the same objects a real search builds (Ray Tune's ASHA, Hyperband, median stopping, our
curve rule), and the searcher hears results in the order and through the hooks Ray Tune uses
(`TuneController._process_trial_result` and `stop_trial`): a stopped trial's last result goes
to `on_trial_complete`, not to `on_trial_result`. Nothing sleeps; the same seed gives the same
run.
"""

from __future__ import annotations

import heapq
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from ray.tune.experiment import Trial
from ray.tune.schedulers import TrialScheduler
from ray.tune.search import Searcher

from trainables.curves import Curve, CurveSource

CONTINUE, STOP, PAUSE = TrialScheduler.CONTINUE, TrialScheduler.STOP, TrialScheduler.PAUSE
# Ray's Hyperband logs every too-small bracket at INFO: thousands of lines in a long simulation.
logging.getLogger("ray.tune.schedulers.hyperband").setLevel(logging.WARNING)


class SimTrial:
    """What Ray's schedulers read of a trial: id, status, config, last result."""

    def __init__(self, trial_id: str, number: int, config: dict, curve: Curve):
        self.trial_id, self.number, self.config = trial_id, number, config
        self.curve = curve  # what it reports, looked up once
        self.extra: dict[str, float] = {}  # reported beside the metric (a table's costs)
        self.status = Trial.PENDING
        self.last_result: dict = {}
        self.is_saving = False
        self.epoch = 0  # epochs reported so far
        self.started_at: float | None = None

    def __repr__(self) -> str:
        return self.trial_id


class SimController:
    """The part of Ray Tune's TuneController the schedulers call back into."""

    def __init__(self, sim: Simulation):
        self.sim = sim

    def get_trials(self) -> list[SimTrial]:
        # Ray's TuneController returns every trial, ended ones too; the schedulers simulated here
        # only pick PENDING or PAUSED ones from it (FIFO's choose_trial_to_run), so the ended are
        # left out: Ray's O(trials) scan per decision is not nasorch's cost to measure.
        return list(self.sim.live.values())

    def get_live_trials(self) -> list[SimTrial]:
        return list(self.sim.live.values())

    def stop_trial(self, trial: SimTrial) -> None:
        self.sim.stop(trial)


_ENDED = (Trial.TERMINATED, Trial.ERROR)


@dataclass
class SimResult:
    """One simulated search. `trajectory` holds (time, epochs spent, best so far) at each
    improvement; `stops` the trials' last epoch and whether they finished."""

    trajectory: list[tuple[float, int, float]] = field(default_factory=list)
    stops: list[tuple[int, int, str]] = field(default_factory=list)  # (number, epoch, status)
    trials: int = 0
    epochs: int = 0
    end_time: float = 0.0
    cpu: dict[str, float] = field(default_factory=lambda: dict.fromkeys(_CPU, 0.0))
    # (trials, cpu s per trial over the trials since the previous mark): what a trial costs now
    cost_at: list[tuple[int, float]] = field(default_factory=list)
    # With simulate(keep_trials=True): (arch, last value, epochs, ran every epoch) per trial,
    # what a warm start would read back from this search's record.
    ended: list[tuple[dict, float, int, bool]] = field(default_factory=list)
    gate: dict[str, float] = field(default_factory=dict)  # Gate.summary(): reuses, warm start

    def best_at(self, t: float) -> float | None:
        best = None
        for when, _, value in self.trajectory:
            if when > t:
                break
            best = value
        return best


_CPU = ("searcher", "scheduler", "bookkeeping")


class Simulation:
    def __init__(
        self,
        source: CurveSource,
        searcher: Searcher,
        scheduler: TrialScheduler,
        *,
        workers: int,
        max_time: float = float("inf"),
        max_trials: int | None = None,
        stopper: Any = None,
        cost_marks: tuple[int, ...] = (),
    ):
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.source, self.searcher, self.scheduler = source, searcher, scheduler
        self.workers, self.max_time, self.max_trials = workers, max_time, max_trials
        self.stopper = stopper  # a Ray Tune Stopper (time budgets), asked as Tune asks it
        self.metric, self.mode = source.metric, source.mode
        self.controller = SimController(self)
        self.trials: dict[str, SimTrial] = {}
        self.live: dict[str, SimTrial] = {}  # not ended, in the order added (as Ray lists them)
        self.events: list[tuple[float, int, str]] = []  # (time, seq, trial id): next report
        self.clock = 0.0
        self.busy = 0
        self.seq = 0
        self.finished_suggesting = False
        self.result = SimResult()
        self.cost_marks = sorted(cost_marks)
        self._last_mark = (0, 0.0)
        self._best: float | None = None

    # ---- the loop ----------------------------------------------------------------------------
    def run(self) -> SimResult:
        began = time.process_time()
        while True:
            self._fill_workers()
            if not self.events:
                break
            when, _, trial_id = heapq.heappop(self.events)
            if when > self.max_time:
                break
            self.clock = when
            self._report(self.trials[trial_id])
        self.result.end_time = min(self.clock, self.max_time)
        spent = time.process_time() - began
        self.result.cpu["bookkeeping"] = max(
            spent - self.result.cpu["searcher"] - self.result.cpu["scheduler"], 0.0
        )
        return self.result

    def _timed(self, part: str, fn: Any, *args: Any) -> Any:
        t = time.process_time()
        try:
            return fn(*args)
        finally:
            self.result.cpu[part] += time.process_time() - t

    def _fill_workers(self) -> None:
        while self.busy < self.workers:
            trial = self._timed("scheduler", self.scheduler.choose_trial_to_run, self.controller)
            if trial is None:
                trial = self._new_trial()
                if trial is None:
                    return
                trial = self._timed(
                    "scheduler", self.scheduler.choose_trial_to_run, self.controller
                )
                if trial is None:
                    return
            self._start(trial)

    def _new_trial(self) -> SimTrial | None:
        if self.finished_suggesting:
            return None
        if self.max_trials is not None and len(self.trials) >= self.max_trials:
            return None
        trial_id = f"s{len(self.trials) + 1:06d}"
        config = self._timed("searcher", self.searcher.suggest, trial_id)
        if config is None or config == Searcher.FINISHED:
            self.finished_suggesting = True
            return None
        curve = self.source.curve(config["arch"])
        trial = SimTrial(trial_id, len(self.trials) + 1, config, curve)
        trial.extra = self.source.reported(config["arch"])
        self.trials[trial_id] = trial
        self.live[trial_id] = trial
        self.result.trials += 1
        self._timed("scheduler", self.scheduler.on_trial_add, self.controller, trial)
        if self.cost_marks and self.result.trials == self.cost_marks[0]:
            self.cost_marks.pop(0)
            total = self.result.cpu["searcher"] + self.result.cpu["scheduler"]
            n0, total0 = self._last_mark
            self._last_mark = (self.result.trials, total)
            self.result.cost_at.append(
                (self.result.trials, (total - total0) / (self.result.trials - n0))
            )
        return trial

    def _start(self, trial: SimTrial) -> None:
        trial.status = Trial.RUNNING
        self.busy += 1
        self._schedule_next(trial)

    def _schedule_next(self, trial: SimTrial) -> None:
        times = trial.curve.times
        previous = times[trial.epoch - 1] if trial.epoch else 0.0
        self.seq += 1
        heapq.heappush(self.events, (self.clock + times[trial.epoch] - previous, self.seq,
                                     trial.trial_id))  # fmt: skip

    def _report(self, trial: SimTrial) -> None:
        curve = trial.curve
        trial.epoch += 1
        value = float(curve.values[trial.epoch - 1])
        result = {
            **trial.extra,
            self.metric: value,
            "training_iteration": trial.epoch,
            "epoch": trial.epoch,
            "time_total_s": float(curve.times[trial.epoch - 1]),
            "trial_id": trial.trial_id,
            "config": trial.config,
        }
        self.result.epochs += 1
        self._note_best(value)
        if self.stopper is not None and (self.stopper(trial.trial_id, result)
                                         or self.stopper.stop_all()):  # fmt: skip
            decision = STOP
        else:
            decision = self._timed(
                "scheduler", self.scheduler.on_trial_result, self.controller, trial, result
            )
        if decision != STOP:  # as Tune: a stopped trial's result goes to on_trial_complete
            self._timed("searcher", self.searcher.on_trial_result, trial.trial_id, result)
        trial.last_result = result
        last = trial.epoch >= self.source.max_epochs
        if decision == STOP or last:
            self.stop(trial)
        elif decision == PAUSE:
            trial.status = Trial.PAUSED
            self.busy -= 1
        else:
            self._schedule_next(trial)

    def stop(self, trial: SimTrial) -> None:
        """Tune's `stop_trial`: a running trial completes; a paused one is removed."""
        if trial.status in _ENDED:
            return
        if trial.status == Trial.RUNNING:
            self.busy -= 1
            self._timed("scheduler", self.scheduler.on_trial_complete, self.controller, trial,
                        trial.last_result)  # fmt: skip
            self._timed("searcher", self.searcher.on_trial_complete, trial.trial_id,
                        trial.last_result)  # fmt: skip
            if trial.trial_id in {e[2] for e in self.events}:  # stopped from another's result
                self.events = [e for e in self.events if e[2] != trial.trial_id]
                heapq.heapify(self.events)
        else:
            self._timed("scheduler", self.scheduler.on_trial_remove, self.controller, trial)
            self._timed("searcher", self.searcher.on_trial_complete, trial.trial_id,
                        trial.last_result or None)  # fmt: skip
        trial.status = Trial.TERMINATED
        self.live.pop(trial.trial_id, None)
        finished = trial.epoch >= self.source.max_epochs
        self.result.stops.append(
            (trial.number, trial.epoch, "completed" if finished else "stopped")
        )

    def note_answer(self, value: float) -> None:
        """A proposal the gate answered from an earlier search's record: this task's result,
        known without training (it counts toward the best, not toward the epochs spent)."""
        self._note_best(value)

    def _note_best(self, value: float) -> None:
        better = self._best is None or (value > self._best if self.mode == "max"
                                        else value < self._best)  # fmt: skip
        if better:
            self._best = value
            self.result.trajectory.append((self.clock, self.result.epochs, value))
