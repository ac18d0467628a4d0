"""Ray Tune callback that records every trial as a nested MLflow child run of the search's run.

Tune calls the hooks on the driver, between scheduling steps: they only put events on a queue.
One background thread turns the queue into MLflow calls, grouped into `log_batch` requests, so a
slow tracking store never slows the trials. Run ids are saved (atomic JSON) next to Ray's
experiment state, so a resumed search continues the same runs.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from typing import Any

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from ray.tune import Callback

from orchestrator.searchers.base import write_json_atomic

log = logging.getLogger(__name__)

# Keys Ray Tune adds to every result; they are bookkeeping, not the trial's metrics.
TUNE_KEYS = {
    "timestamp", "checkpoint_dir_name", "done", "training_iteration", "trial_id", "date",
    "time_this_iter_s", "time_total_s", "pid", "hostname", "node_ip", "time_since_restore",
    "iterations_since_restore", "experiment_tag", "config", "should_checkpoint", "epoch",
}  # fmt: skip
MAX_BATCH = 1000  # MLflow's limit on metrics per log_batch
STATUS_TO_MLFLOW = {"completed": "FINISHED", "stopped_early": "FINISHED", "errored": "FAILED"}


def trial_status(trial: Any, max_epochs: int | None = None) -> str:
    """completed / stopped_early / errored. A trial stopped by the scheduler reports fewer epochs
    than the trainable's budget; without a known budget, Ray's `done` flag tells."""
    if trial.status == "ERROR":
        return "errored"
    last = trial.last_result or {}
    if max_epochs is not None:
        return "completed" if last.get("training_iteration", 0) >= max_epochs else "stopped_early"
    return "completed" if last.get("done") else "stopped_early"


class MlflowTracker(Callback):
    def __init__(
        self,
        tracking_uri: str,
        experiment_id: str,
        parent_run_id: str,
        *,
        run_tags: dict[str, str],
        describe: Any,
        flatten: Any,
        state_path: str | None = None,
        max_epochs: int | None = None,
        flush_interval: float = 0.25,
    ):
        self.tracking_uri = tracking_uri
        self.experiment_id = experiment_id
        self.parent_run_id = parent_run_id
        self.run_tags = run_tags
        self.describe = describe  # arch -> short summary
        self.flatten = flatten  # config -> flat params
        self.state_path = state_path
        self.max_epochs = max_epochs
        self.flush_interval = flush_interval
        self.run_ids: dict[str, str] = {}
        if state_path and os.path.exists(state_path):
            with open(state_path) as f:
                self.run_ids = json.load(f).get("runs", {})
        self.statuses: dict[str, str] = {}
        self._nodes: set[str] = set()
        self._errors: list[str] = []
        self._start()

    def _start(self) -> None:
        self.client = MlflowClient(tracking_uri=self.tracking_uri)
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="nasorch-mlflow", daemon=True)
        self._thread.start()

    # Ray pickles callbacks with the experiment state; the writer is rebuilt, not pickled.
    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("client", "_queue", "_thread")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._start()

    # ---- Tune hooks (driver thread: enqueue only) -----------------------------------------
    def on_trial_start(self, iteration, trials, trial, **info):
        self._queue.put(("start", trial.trial_id, trial.config))

    def on_trial_result(self, iteration, trials, trial, result, **info):
        step = int(result.get("training_iteration", 0))
        metrics = {
            k: float(v)
            for k, v in result.items()
            if k not in TUNE_KEYS and isinstance(v, (int, float)) and not isinstance(v, bool)
        }
        node = result.get("hostname") or result.get("node_ip")
        if node and trial.trial_id not in self._nodes:
            self._nodes.add(trial.trial_id)
            self._queue.put(("tags", trial.trial_id, {"nasorch.node": str(node)}))
        self._queue.put(("metrics", trial.trial_id, (metrics, step, int(time.time() * 1000))))

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._end(trial, trial_status(trial, self.max_epochs))

    def on_trial_error(self, iteration, trials, trial, **info):
        self._end(trial, "errored")

    def on_experiment_end(self, trials, **info):
        self.flush()

    def _end(self, trial: Any, status: str) -> None:
        self.statuses[trial.trial_id] = status
        tags = {"nasorch.status": status, "nasorch.epochs": str(trial.last_result.get("training_iteration", 0))}
        error = None
        if status == "errored" and trial.error_file and os.path.exists(trial.error_file):
            with open(trial.error_file) as f:
                error = f.read()
        self._queue.put(("end", trial.trial_id, (tags, STATUS_TO_MLFLOW[status], error)))

    # ---- driver API ------------------------------------------------------------------------
    def flush(self, timeout: float = 120.0) -> None:
        """Block until everything queued so far is written."""
        done = threading.Event()
        self._queue.put(("flush", None, done))
        done.wait(timeout)

    def close(self) -> None:
        self.flush()
        self._queue.put(("stop", None, None))
        self._thread.join(timeout=30)
        for msg in self._errors[:3]:
            log.warning("MLflow write failed: %s", msg)

    # ---- writer thread ---------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            events = [self._queue.get()]
            deadline = time.monotonic() + self.flush_interval
            while events[-1][0] not in ("flush", "stop"):
                try:
                    events.append(self._queue.get(timeout=max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    break
            try:
                self._write(events)
            except Exception as e:  # keep the writer alive: one bad batch must not stop logging
                self._errors.append(f"{type(e).__name__}: {e}")
            for kind, _, payload in events:
                if kind == "flush":
                    payload.set()
            if events[-1][0] == "stop":
                return

    def _write(self, events: list[tuple[str, Any, Any]]) -> None:
        pending: dict[str, dict[str, list]] = {}  # run id -> metrics / params / tags

        def batch(run_id: str) -> dict[str, list]:
            return pending.setdefault(run_id, {"metrics": [], "params": [], "tags": []})

        def send() -> None:
            for run_id, b in pending.items():
                for i in range(0, max(1, len(b["metrics"])), MAX_BATCH):
                    first = i == 0
                    self.client.log_batch(
                        run_id,
                        metrics=b["metrics"][i : i + MAX_BATCH],
                        params=b["params"] if first else [],
                        tags=b["tags"] if first else [],
                    )
            pending.clear()

        new_runs = False
        for kind, trial_id, payload in events:
            if kind == "start":
                if trial_id not in self.run_ids:
                    self.run_ids[trial_id] = self._create_run(trial_id, payload, batch)
                    new_runs = True
                continue
            run_id = self.run_ids.get(trial_id)
            if run_id is None:
                continue
            if kind == "metrics":
                metrics, step, ts = payload
                batch(run_id)["metrics"] += [Metric(k, v, ts, step) for k, v in metrics.items()]
            elif kind == "tags":
                batch(run_id)["tags"] += [RunTag(k, v) for k, v in payload.items()]
            elif kind == "end":
                tags, mlflow_status, error = payload
                batch(run_id)["tags"] += [RunTag(k, v) for k, v in tags.items()]
                send()  # metrics before the run is closed
                if error:
                    self.client.log_text(run_id, error, "error.txt")
                self.client.set_terminated(run_id, status=mlflow_status)
        send()
        if new_runs and self.state_path:
            write_json_atomic(self.state_path, {"parent": self.parent_run_id, "runs": self.run_ids})

    def _create_run(self, trial_id: str, config: dict, batch: Any) -> str:
        arch = config.get("arch", {})
        number = config.get("trial_number", 0)
        run = self.client.create_run(
            self.experiment_id,
            run_name=f"t{number:03d} {self.describe(arch)}",
            tags={
                **self.run_tags,
                "mlflow.parentRunId": self.parent_run_id,
                "nasorch.role": "trial",
                "nasorch.trial_id": trial_id,
                "nasorch.trial_number": str(number),
                "nasorch.arch": json.dumps(arch, sort_keys=True)[:5000],
                "nasorch.arch_hash": str(config.get("arch_key", "")),
                "nasorch.status": "running",
            },
        )
        run_id = run.info.run_id
        batch(run_id)["params"] += [Param(k, str(v)[:6000]) for k, v in self.flatten(config).items()]
        return run_id
