"""Live progress of a search: one updating line on a terminal, plain lines in a log."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from ray.tune import Callback

from orchestrator.tracking.mlflow_tracker import trial_status


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
        self.latest: dict[str, tuple[float, str]] = {}  # trial id -> (last value, t-number)
        self.ended: dict[str, str] = {}
        self._last_line = ""
        self._last_time = 0.0

    @property
    def stream(self) -> TextIO:
        return self._stream or sys.stdout

    def __getstate__(self) -> dict:  # Ray pickles callbacks; a stream cannot be pickled
        return {**self.__dict__, "_stream": None}

    def on_trial_result(self, iteration, trials, trial, result, **info):
        # Best = best *latest* value, as in the final leaderboard and the saved checkpoints.
        value = result.get(self.metric)
        if isinstance(value, (int, float)):
            self.latest[trial.trial_id] = (
                float(value),
                f"t{trial.config.get('trial_number', 0):03d}",
            )

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.ended[trial.trial_id] = trial_status(trial, self.max_epochs, self.scheduler)

    def on_trial_error(self, iteration, trials, trial, **info):
        self.ended[trial.trial_id] = "errored"
        name = f"t{trial.config.get('trial_number', 0):03d}"
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
        pick = max if self.mode == "max" else min
        best = "-"
        if self.latest:
            value, name = pick(self.latest.values(), key=lambda v: v[0])
            best = f"{value:.4f} ({name})"
        elapsed = time.monotonic() - self.start
        extra = f", {early} stopped early" if early else ""
        extra += f", {errored} errored" if errored else ""
        return (
            f"[{elapsed:6.1f}s] trials: {done}/{self.total} finished{extra}, {running} running, "
            f"{pending} pending | best {self.metric}: {best}"
        )

    def _print(self, line: str, force: bool = False) -> None:
        now = time.monotonic()
        if not force and (line == self._last_line or now - self._last_time < self.every):
            return
        self._last_line, self._last_time = line, now
        if self.tty:
            self.stream.write("\r\033[K" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
