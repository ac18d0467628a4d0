"""The MLflow writer process: turns the tracker's events into grouped MLflow calls.

It imports neither Ray nor torch, so it starts fast, and it watches its parent: when the driver
dies (even by SIGKILL) it writes what it has and exits instead of lingering.
"""

from __future__ import annotations

import json
import os
import queue
import time
from typing import Any

from orchestrator.jsonio import write_json_atomic

MAX_BATCH = 1000  # MLflow's limit on metrics per log_batch
BATCH_SECONDS = 1.0  # how long events are gathered into one round of writes


def writer_main(events, acks, uri, experiment_id, parent_run_id, state_path, run_ids, driver):
    """Entry point of the writer process."""
    import logging

    # The scheduling loop and the trials come first: the writer catches up between them, and a
    # longer batching window means fewer store transactions for the same points.
    os.nice(10)

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    writer = _Writer(uri, experiment_id, parent_run_id, state_path, run_ids)
    while True:
        try:
            batch = [events.get(timeout=1.0)]
        except queue.Empty:
            if os.getppid() != driver:  # the driver died (even SIGKILL): nothing more will come
                return
            continue
        deadline = time.monotonic() + BATCH_SECONDS
        while batch[-1][0] not in ("flush", "stop"):
            try:
                batch.append(events.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                break
        writer.write(batch)
        for kind, _, token in batch:
            if kind == "flush":
                acks.put((token, dict(writer.run_ids), writer.errors[-5:]))
        if batch[-1][0] == "stop":
            return


class _Writer:
    def __init__(self, uri, experiment_id, parent_run_id, state_path, run_ids):
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=uri)
        self.experiment_id = experiment_id
        self.parent_run_id = parent_run_id
        self.state_path = state_path
        self.run_ids: dict[str, str] = run_ids
        self.steps: dict[str, int] = {}  # trial id -> last epoch written (for resume)
        self.trials: dict[str, list] = {}  # trial id -> [trial number, arch hash]
        if state_path and os.path.exists(state_path):
            with open(state_path) as f:
                saved = json.load(f)
            self.steps, self.trials = saved.get("steps", {}), saved.get("trials", {})
        self.errors: list[str] = []

    def write(self, events: list[tuple[str, Any, Any]]) -> None:
        try:
            self._write(events)
        except Exception as e:  # keep the writer alive: one bad batch must not stop logging
            self.errors.append(f"{type(e).__name__}: {e}")

    def _write(self, events: list[tuple[str, Any, Any]]) -> None:
        from mlflow.entities import Metric, Param, RunTag

        pending: dict[str, dict[str, list]] = {}  # run id -> metrics / params / tags

        def batch(run_id: str) -> dict[str, list]:
            return pending.setdefault(run_id, {"metrics": [], "params": [], "tags": []})

        def send() -> None:
            for run_id, b in pending.items():
                for i in range(0, max(1, len(b["metrics"])), MAX_BATCH):
                    self.client.log_batch(
                        run_id,
                        metrics=b["metrics"][i : i + MAX_BATCH],
                        params=b["params"] if i == 0 else [],
                        tags=b["tags"] if i == 0 else [],
                    )
            pending.clear()

        changed = False
        ends: list[tuple[str, str, str | None]] = []
        for kind, trial_id, payload in events:
            if kind == "start":
                if trial_id not in self.run_ids:
                    name, tags, params, cost = payload
                    run = self.client.create_run(self.experiment_id, run_name=name, tags=tags)
                    self.run_ids[trial_id] = run.info.run_id
                    b = batch(run.info.run_id)
                    b["params"] += [Param(k, v) for k, v in params.items()]
                    number = int(tags.get("nasorch.trial_number", 0))
                    self.trials[trial_id] = [number, tags.get("nasorch.arch_hash", "")]
                    now = int(time.time() * 1000)
                    b["metrics"] += [Metric(k, v, now, 0) for k, v in cost.items()]
                    changed = True
                continue
            if kind == "alias":  # a re-suggested trial continues a crashed driver's run
                old_id = payload
                self.run_ids[trial_id] = self.run_ids[old_id]
                self.steps[trial_id] = self.steps.get(old_id, 0)
                self.trials[trial_id] = self.trials.get(old_id, [0, ""])
                batch(self.run_ids[trial_id])["tags"].append(RunTag("nasorch.trial_id", trial_id))
                changed = True
                continue
            run_id = self.run_ids.get(trial_id)
            if run_id is None:
                continue
            if kind == "supersede":
                batch(run_id)["tags"].append(RunTag("nasorch.status", "superseded"))
                send()
                self.client.set_terminated(run_id, status="KILLED")
                continue
            if kind == "metrics":
                metrics, step, ts = payload
                batch(run_id)["metrics"] += [Metric(k, v, ts, step) for k, v in metrics.items()]
                self.steps[trial_id] = max(step, self.steps.get(trial_id, 0))
                changed = True  # the state file records the last epoch written
            elif kind == "tags":
                batch(run_id)["tags"] += [RunTag(k, v) for k, v in payload.items()]
            elif kind == "end":
                tags, mlflow_status, error = payload
                batch(run_id)["tags"] += [RunTag(k, v) for k, v in tags.items()]
                ends.append((run_id, mlflow_status, error))
        send()
        # Runs are closed after the round's single log_batch per run: a run's last points and
        # its end cost one store transaction less each.
        for run_id, mlflow_status, error in ends:
            if error:
                self.client.log_text(run_id, error, "error.txt")
            self.client.set_terminated(run_id, status=mlflow_status)
        if changed and self.state_path:  # after the writes: it never claims more than is there
            write_json_atomic(
                self.state_path,
                {
                    "parent": self.parent_run_id,
                    "runs": self.run_ids,
                    "steps": self.steps,
                    "trials": self.trials,
                },
            )
