"""Live progress of a search: one updating line on a terminal, plain lines in a log."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from ray.tune import Callback

from orchestrator.core import tags as T
from orchestrator.resumable import restored, versioned
from orchestrator.tracking.events import trial_status

STARVED_AFTER_S = 10.0  # no trial running this long while some wait: waiting for nodes


class Progress(Callback):
    def __init__(
        self,
        metric: str,
        mode: str,
        total: int,
        max_epochs: int | None = None,
        scheduler: Any = None,
        stream: TextIO | None = None,
        every: float = 10.0,
    ):
        self.metric, self.mode, self.total, self.max_epochs = metric, mode, total, max_epochs
        self.scheduler = scheduler  # knows which trials it stopped
        self._stream = stream
        self.tty = self.stream.isatty()
        self.every = every if not self.tty else 0.5
        self.start = time.monotonic()
        self.resumed = False
        self.enabled = True  # a resumed search with --quiet switches it off
        self.best: tuple[float, str] | None = None  # the best value any trial reported, and who
        self.ended: dict[str, str] = {}
        self._last_line = ""
        self._last_time = 0.0
        self._idle_since: float | None = None  # since when trials wait and none runs

    @property
    def stream(self) -> TextIO:
        return self._stream or sys.stdout

    # The pickled form's version, and how an older one is upgraded (resumable/versioned.py).
    STATE_VERSION = 1
    STATE_UPGRADES = {
        1: versioned.defaults(best=lambda: None, enabled=lambda: True, _idle_since=lambda: None)
    }

    def __getstate__(self) -> dict:  # Ray pickles callbacks; a stream cannot be pickled
        return versioned.stamped(self, {**self.__dict__, "_stream": None})

    def __setstate__(self, state: dict) -> None:
        """A resumed search: its clock starts again, and says so."""
        self.__dict__.update(versioned.upgraded(self, state))
        self.start, self.resumed = time.monotonic(), True
        self.tty = self.stream.isatty()
        restored.register("progress", self)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        # The best value reported so far: it never goes down while the search runs (the final
        # leaderboard ranks trials by their last value).
        value = result.get(self.metric)
        if isinstance(value, (int, float)) and value == value:
            better = max if self.mode == "max" else min
            if self.best is None or better(float(value), self.best[0]) != self.best[0]:
                self.best = (float(value), T.trial_name(T.trial_number(trial.config)))

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.ended[trial.trial_id] = trial_status(trial, self.max_epochs, self.scheduler)

    def on_trial_error(self, iteration, trials, trial, **info):
        self.ended[trial.trial_id] = "errored"
        name = T.trial_name(T.trial_number(trial.config))
        self._print(f"trial {name} failed; error in {trial.error_file}", force=True)

    def on_step_end(self, iteration, trials, **info):
        self._print(self.line(trials))

    def on_experiment_end(self, trials, **info):
        self._print(self.line(trials), force=True)
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()

    def line(self, trials: list[Any]) -> str:
        running = sum(t.status == "RUNNING" for t in trials)
        ended = list(self.ended.values())
        done = len(ended)
        early = ended.count("stopped_early")
        errored = ended.count("errored")
        pending = max(0, self.total - done - running)
        best = f"{self.best[0]:.4f} ({self.best[1]})" if self.best else "-"
        elapsed = time.monotonic() - self.start
        clock = f"[resumed, {elapsed:6.1f}s]" if self.resumed else f"[{elapsed:6.1f}s]"
        extra = f", {early} stopped early" if early else ""
        extra += f", {errored} errored" if errored else ""
        waiting = " (waiting for nodes)" if self._starved(running, trials) else ""
        budget = restored.peek("time_budget")  # the search's time_budget stopper, if it has one
        if budget is not None:  # the time left says more than a cap of trials never reached
            left = "budget spent" if budget.ended else f"{_duration(budget.left())} left"
            return (
                f"{clock} {left} | trials: {done} finished{extra}, {running} running{waiting} "
                f"| best {self.metric}: {best}"
            )
        return (
            f"{clock} trials: {done}/{self.total} finished{extra}, {running} running, "
            f"{pending} pending{waiting} | best {self.metric}: {best}"
        )

    def _starved(self, running: int, trials: list[Any]) -> bool:
        """Trials waiting to start and none running for 10 s: no node can take one now (an
        autoscaler starting nodes, or nodes that are gone)."""
        now = time.monotonic()
        if running or not any(t.status == "PENDING" for t in trials):
            self._idle_since = None
            return False
        if self._idle_since is None:
            self._idle_since = now
        return now - self._idle_since >= STARVED_AFTER_S

    def _print(self, line: str, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and (line == self._last_line or now - self._last_time < self.every):
            return
        self._last_line, self._last_time = line, now
        if self.tty:
            self.stream.write("\r\033[K" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def _duration(seconds: float) -> str:
    """1h02m, 4m05s, 42s."""
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"
