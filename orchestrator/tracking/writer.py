"""The MLflow writer process: turns the trackers' events into grouped MLflow writes.

It imports neither Ray nor torch, and it watches its parent: when the driver dies (even by
SIGKILL) it writes what it has and exits instead of lingering. One writer serves the searches of
a driver process one after the other (`acquire` / `release`): importing MLflow costs a second of
CPU, which `prestart` moves to where the driver waits anyway (Ray's start) and which a second
search in the same process (a notebook, a benchmark) does not pay again.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import os
import queue
import sys
import threading
import time
from typing import Any

from orchestrator.core import tags as T
from orchestrator.resumable import inflight
from orchestrator.resumable.state_file import SearchState

BATCH_SECONDS = 1.0  # how long events are gathered into one round of writes
CONTROL = ("open", "flush", "close")  # events about the writer, not about a trial
RETRY_SECONDS = (1.0, 30.0)  # a failed round is retried after 1 s, doubling up to 30 s
UNSENT_FILE = "nasorch_unsent.jsonl"  # next to the state file: records MLflow did not take yet


def writer_main(events, acks, driver):
    """Entry point of the writer process."""
    import logging

    # The scheduling loop and the trials come first: the writer catches up between them, and a
    # longer batching window means fewer store transactions for the same points.
    os.nice(10)
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    from mlflow.tracking import MlflowClient  # noqa: F401  (the slow import, done while idle)

    writer: _Writer | None = None
    while True:
        try:
            batch = [events.get(timeout=1.0)]
        except queue.Empty:
            if os.getppid() != driver:  # the driver died (even SIGKILL): nothing more will come
                if writer is not None:
                    writer.retry(force=True)
                    writer.spool()
                return
            if writer is not None:
                writer.retry()
            continue
        deadline = time.monotonic() + BATCH_SECONDS
        while batch[-1][0] not in ("flush", "close"):
            try:
                batch.append(events.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                break
        chunk: list = []  # a search's events since the last control event: one round
        for event in batch:
            kind, _, payload = event
            if kind not in CONTROL:
                chunk.append(event)
                continue
            if writer is not None and chunk:
                writer.write(chunk)
            chunk = []
            if kind == "open":
                environment, args = payload
                _adopt(environment)
                writer = _Writer(*args)
            elif kind == "flush" and writer is not None:
                token, final = payload
                writer.retry(force=True)
                if final:
                    writer.spool()
                acks.put((token, dict(writer.run_ids), writer.report()))
            elif kind == "close" and writer is not None:  # flushed before: nothing waits
                writer.spool()
                writer = None
        if writer is not None and chunk:
            writer.write(chunk)


def _adopt(environment: dict[str, Any]) -> None:
    """The search's MLflow settings (credentials, TLS options) and working folder, which may
    have changed in the driver since this process started."""
    env = environment["env"]
    for key in [k for k in os.environ if k.startswith("MLFLOW_") and k not in env]:
        del os.environ[key]
    os.environ.update(env)
    with contextlib.suppress(OSError):  # relative paths were resolved; this is for the rest
        os.chdir(environment["cwd"])


class WriterProcess:
    """The driver's handle on one writer process."""

    def __init__(self) -> None:
        ctx = mp.get_context("spawn")  # never fork a process that runs Ray's threads
        self.events = ctx.Queue()
        self.acks = ctx.Queue()
        self.process = ctx.Process(
            target=writer_main,
            args=(self.events, self.acks, os.getpid()),
            name="nasorch-mlflow-writer",
            daemon=True,
        )
        with _main_module_hidden():
            self.process.start()

    def open(self, uri, experiment_id, parent_run_id, state_path, run_ids) -> None:
        env = {k: v for k, v in os.environ.items() if k.startswith("MLFLOW_")}
        args = (uri, experiment_id, parent_run_id, state_path, run_ids)
        self.events.put(("open", None, ({"env": env, "cwd": os.getcwd()}, args)))

    def is_alive(self) -> bool:
        return self.process.is_alive()


_idle: list[WriterProcess] = []
_lock = threading.Lock()


def prestart() -> None:
    """Start a writer now, so that its MLflow import overlaps the driver's own set-up."""
    with _lock:
        if not any(w.is_alive() for w in _idle):
            _idle.append(WriterProcess())


def acquire() -> WriterProcess:
    """An idle writer of this process, or a new one (searches running side by side get one
    each)."""
    with _lock:
        while _idle:
            writer = _idle.pop()
            if writer.is_alive():
                return writer
    return WriterProcess()


def release(writer: WriterProcess) -> None:
    writer.events.put(("close", None, None))
    with _lock:
        if writer.is_alive():
            _idle.append(writer)


@contextlib.contextmanager
def _main_module_hidden():
    """Spawned processes re-import the parent's __main__; a user's script that calls
    orchestrator.run() without an `if __name__ == "__main__"` guard would then run its search
    again inside the writer. The writer needs nothing from __main__, so hide it while starting."""
    main = sys.modules.get("__main__")
    saved = {k: getattr(main, k) for k in ("__file__", "__spec__") if hasattr(main, k)}
    try:
        if "__file__" in saved:
            del main.__file__
        if "__spec__" in saved:
            main.__spec__ = None  # spawn reads it; None means "nothing to import"
        yield
    finally:
        for k, v in saved.items():
            setattr(main, k, v)


def spooled_progress(state_path: str) -> tuple[set[str], dict[str, int]]:
    """What a search's spool file will write first when it is resumed: the trials whose runs it
    creates, and the last epoch it holds per trial (so the resume backfill does not add them
    again)."""
    spool = SearchState(state_path).path.with_name(UNSENT_FILE)
    started: set[str] = set()
    steps: dict[str, int] = {}
    if spool.is_file():
        for line in spool.read_text().splitlines():
            if not line.strip():
                continue
            kind, trial_id, payload = json.loads(line)
            if kind == "start":
                started.add(trial_id)
            elif kind == "metrics":
                steps[trial_id] = max(int(payload[1]), steps.get(trial_id, 0))
    return started, steps


class _Writer:
    """Writes one search's events. A round MLflow cannot take now (no connection, a server
    error) is kept and retried, in order, before anything newer; what is still unsent when the
    search ends (or the driver dies) is spooled to `nasorch_unsent.jsonl` next to the state
    file, and the next writer of that search (`nasorch resume`) sends it first. A value MLflow
    will never take is skipped alone and reported by name."""

    def __init__(self, uri, experiment_id, parent_run_id, state_path, run_ids):
        from mlflow.tracking import MlflowClient

        from orchestrator.tracking.sinks import make_sink

        self.client = MlflowClient(tracking_uri=uri)
        self.sink = make_sink(self.client)
        self.experiment_id = experiment_id
        self.parent_run_id = parent_run_id
        self.state = SearchState(state_path) if state_path else None
        self.run_ids: dict[str, str] = run_ids
        saved = self.state.read() if self.state else {}
        self.steps: dict[str, int] = saved.get("steps", {})  # trial id -> last epoch written
        self.trials: dict[str, list] = saved.get("trials", {})  # trial id -> [number, arch hash]
        self.ended: dict[str, list] = saved.get("ended", {})  # trial id -> [status, epochs]
        self.spool_path = self.state.path.with_name(UNSENT_FILE) if self.state else None
        self.unsent: list = self._read_spool()  # events not yet written, oldest first
        self.failures = 0  # rounds failed in a row
        self.next_try = 0.0
        self.reason: str | None = None  # why the last round failed, one line
        self.errors: list[str] = []
        self.rejected: list[str] = []  # "t003: metric 'acc@1' (why)"
        self._attempted: dict[str, tuple[str, list]] = {}  # runs created by the current round
        if self.unsent:
            self.retry(force=True)

    # ---- rounds --------------------------------------------------------------------------
    def write(self, events: list[tuple[str, Any, Any]]) -> None:
        self.unsent += events
        if time.monotonic() >= self.next_try:
            self.retry(force=True)

    def retry(self, force: bool = False) -> None:
        """Try to write everything unsent, if there is any and a retry is due (or forced)."""
        if not self.unsent or (not force and time.monotonic() < self.next_try):
            return
        events = self.unsent
        kept = (
            dict(self.run_ids), dict(self.steps), {k: list(v) for k, v in self.trials.items()},
            dict(self.ended),
        )  # fmt: skip
        try:
            self._write(events)
        except Exception as e:  # the round is kept for the next try; nothing is dropped
            self.sink.discard()
            self.run_ids, self.steps, self.trials, self.ended = kept
            for trial_id, (run_id, trial) in self._attempted.items():
                if run_id in self.sink.created:  # runs the store did create are not redone
                    self.run_ids[trial_id], self.trials[trial_id] = run_id, trial
            self.failures += 1
            self.reason = f"{type(e).__name__}: {str(e).strip().splitlines()[0][:300]}"
            self.errors = (self.errors + [self.reason])[-5:]
            wait = min(RETRY_SECONDS[0] * 2 ** (self.failures - 1), RETRY_SECONDS[1])
            self.next_try = time.monotonic() + wait
            return
        self.unsent, self.failures, self.reason = [], 0, None
        self._note_rejected()
        if self.spool_path is not None and self.spool_path.exists():
            self.spool_path.unlink()  # everything it held is written now

    def spool(self) -> None:
        """Keep what is unsent in a file, for `nasorch resume` to send."""
        if self.spool_path is None or not self.unsent:
            return
        tmp = self.spool_path.with_name(f".{UNSENT_FILE}.tmp")
        tmp.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w") as f:
            for event in self.unsent:
                f.write(json.dumps(event) + "\n")
        os.replace(tmp, self.spool_path)
        if self.state is not None:
            self.state.update(unsent={"count": len(self.unsent), "file": str(self.spool_path)})

    def _read_spool(self) -> list:
        if self.spool_path is None or not self.spool_path.is_file():
            return []
        with open(self.spool_path) as f:
            return [json.loads(line) for line in f if line.strip()]

    def report(self) -> dict[str, Any]:
        """What the driver needs to say about delivery: unsent records, skipped values."""
        spooled = self.spool_path is not None and self.spool_path.exists()
        return {
            "errors": self.errors[-5:],
            "unsent": len(self.unsent),
            "reason": self.reason,
            "spool": str(self.spool_path) if spooled else None,
            "rejected": list(self.rejected),
        }

    def _note_rejected(self) -> None:
        if not self.sink.rejected:
            return
        trial_of = {run_id: trial_id for trial_id, run_id in self.run_ids.items()}
        for run_id, kind, key, why in self.sink.rejected:
            number = self.trials.get(trial_of.get(run_id, ""), [0])[0]
            name = T.trial_name(number) if number else run_id[:8]
            self.rejected.append(f"{name}: {kind} {key!r} ({why})")
        self.sink.rejected.clear()

    def _write(self, events: list[tuple[str, Any, Any]]) -> None:
        from mlflow.entities import Metric, Param, RunTag

        sink = self.sink
        changed = False
        errors: list[tuple[str, str]] = []
        self._attempted = {}
        intent = inflight.round_intent(events, self.run_ids)
        if self.state:  # a kill before the state file is updated below: resume asks MLflow
            inflight.note(self.state, intent)
        for kind, trial_id, payload in events:
            if kind == "start":
                name, tags, params, cost, *stamp = payload
                if trial_id not in self.run_ids:
                    run_id = sink.create(self.experiment_id, name, tags)
                    self.run_ids[trial_id] = run_id
                    number = int(tags.get(T.TRIAL_NUMBER, 0))
                    self.trials[trial_id] = [number, tags.get(T.ARCH_HASH, "")]
                    self._attempted[trial_id] = (run_id, self.trials[trial_id])
                    changed = True
                # Logged even when the run exists: a round that failed after creating it is
                # retried whole (MLflow ignores equal params and repeated points).
                ts = stamp[0] if stamp else int(time.time() * 1000)
                sink.log(
                    self.run_ids[trial_id],
                    metrics=[Metric(k, v, ts, 0) for k, v in cost.items()],
                    params=[Param(k, v) for k, v in params.items()],
                )
                continue
            if kind == "alias":  # a re-suggested trial continues a crashed driver's run
                old_id = payload
                self.run_ids[trial_id] = self.run_ids.pop(old_id)
                self.steps[trial_id] = self.steps.pop(old_id, 0)
                self.trials[trial_id] = self.trials.pop(old_id, [0, ""])
                if old_id in self.ended:
                    self.ended[trial_id] = self.ended.pop(old_id)
                sink.log(self.run_ids[trial_id], tags=[RunTag(T.TRIAL_ID, trial_id)])
                changed = True
                continue
            run_id = self.run_ids.get(trial_id)
            if run_id is None:
                continue
            if kind == "reopen":
                sink.reopen(run_id)
            elif kind == "supersede":  # closed for good: no longer the search's run
                sink.log(run_id, tags=[RunTag(T.STATUS, "superseded")])
                sink.end(run_id, "KILLED")
                for owned in (self.run_ids, self.steps, self.trials, self.ended):
                    owned.pop(trial_id, None)
                changed = True
            elif kind == "metrics":
                metrics, step, ts = payload
                sink.log(run_id, metrics=[Metric(k, v, ts, step) for k, v in metrics.items()])
                self.steps[trial_id] = max(step, self.steps.get(trial_id, 0))
                changed = True  # the state file records the last epoch written
            elif kind == "tags":
                sink.log(run_id, tags=[RunTag(k, v) for k, v in payload.items()])
            elif kind == "end":
                tags, mlflow_status, error = payload
                sink.log(run_id, tags=[RunTag(k, v) for k, v in tags.items()])
                sink.end(run_id, mlflow_status)
                if error:
                    errors.append((run_id, error))
                if tags.get(T.EPOCHS) is not None:  # ended, not closed as interrupted
                    self.ended[trial_id] = [tags[T.STATUS], int(tags[T.EPOCHS])]
                    changed = True
        sink.commit()
        for run_id, error in errors:
            self.client.log_text(run_id, error, "error.txt")
        if changed and self.state:  # after the writes: it never claims more than is there
            self.state.update(
                runs=self.run_ids, steps=self.steps, trials=self.trials, ended=self.ended
            )
        if intent and self.state:
            inflight.clear(self.state)
