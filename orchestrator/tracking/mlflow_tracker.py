"""Ray Tune callback that records every trial as a nested MLflow child run of the search's run.

Tune calls the hooks on the driver, between scheduling steps: they only put small events on a
queue. A separate writer process turns the queue into MLflow calls, grouped into `log_batch`
requests, so neither a slow tracking store nor MLflow's own CPU time (it holds the GIL) slows
the scheduling loop. Run ids are saved (atomic JSON) next to Ray's experiment state, so a resumed
search continues the same runs.
"""

from __future__ import annotations

import json
import os
import queue
import sys
import time
from typing import Any

from ray.tune import Callback

from orchestrator.core import interrupts
from orchestrator.core import tags as T
from orchestrator.resumable import restored, versioned
from orchestrator.resumable.recovery import unrecorded_results
from orchestrator.resumable.state_file import SearchState
from orchestrator.tracking import writer as writers
from orchestrator.tracking.events import (
    STATUS_TO_MLFLOW,
    DeviceUse,
    RepeatFilter,
    reported_metrics,
    status_of,
    trial_status,
)
from trainables.storage import locate, without_secrets

# The pseudo trial id of a trial answered from an earlier search's record (no Ray trial).
REUSED_ID = "reused-"

# Curves kept on the driver for the final plots; a search with more points reads MLflow back.
MAX_CURVE_POINTS = 200_000


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
        scheduler: Any = None,
        metric: str | None = None,
        gpu_per_trial: float = 0.0,
        storage: str = "",
    ):
        self.tracking_uri = tracking_uri
        self.experiment_id = experiment_id
        self.parent_run_id = parent_run_id
        self.run_tags = run_tags
        self.describe = describe  # arch -> short summary
        self.flatten = flatten  # config -> flat params
        self.state_path = state_path
        self.max_epochs = max_epochs
        self.scheduler = scheduler  # its stop reasons and PBT lineage become tags
        self.metric = metric  # its curve is kept for the search's plots (see seen())
        self.storage = storage  # the configured storage: checkpoints are located in it
        self._curves: dict[str, list[tuple[int, float]]] = {}  # fresh trial id -> curve
        self._ended: dict[str, float] = {}  # trial id -> when it ended (epoch seconds)
        self._points = 0
        self._repeats = RepeatFilter(always=metric)
        self._reconciled = False  # on_step_begin's one look at the restored trials
        self.interrupted = False  # Ctrl+C: Ray marks the trials it stops as TERMINATED
        self.run_ids: dict[str, str] = {}
        self.resume_steps: dict[str, int] = {}  # trial id -> last epoch recorded before a crash
        self.saved_trials: dict[str, list] = {}
        self.recorded_ends: dict[str, list] = {}  # trial id -> [status, epochs] before a crash
        self.backlog: dict[str, list[dict]] = {}  # set on resume: results the crash lost
        self._load_saved_runs()
        self.statuses: dict[str, str] = {}
        self.errors: list[str] = []
        self.delivery: dict[str, Any] = {}  # the writer's last delivery report (see flush)
        self.delivery_problem: str | None = None  # set by the runner: the summary failed
        self.last_error: str | None = None  # the last failed trial's exception, one line
        self.first_error: tuple[str, str] | None = None  # the first one, and its log file
        self._nodes: set[str] = set()
        self.devices = DeviceUse(gpu_per_trial)  # device tags, the CPU warning, GPU-hours
        self._flushes = 0
        self.reused: list[dict[str, Any]] = []  # trials answered from the record (results rows)
        self._start()

    def _start(self) -> None:
        self._writer = writers.acquire()
        known = {t: r for t, r in self.run_ids.items() if r != "pending"}  # ids not learned yet
        self._writer.open(
            self.tracking_uri, self.experiment_id, self.parent_run_id, self.state_path, known
        )

    @property
    def _queue(self) -> Any:
        """Where the Tune hooks put their events: the writer's queue."""
        return self._writer.events

    # The pickled form's version, and how an older one is upgraded (resumable/versioned.py):
    # version 1 added what snapshots before versions might lack.
    STATE_VERSION = 1
    STATE_UPGRADES = {
        1: versioned.defaults(
            scheduler=lambda: None, metric=lambda: None, devices=DeviceUse, reused=list,
            recorded_ends=dict, first_error=lambda: None, storage=str,
        )
    }  # fmt: skip

    # Ray pickles callbacks with the experiment state; the writer is restarted, not pickled.
    def __getstate__(self) -> dict:
        state = {k: v for k, v in self.__dict__.items() if k != "_writer"}
        return versioned.stamped(self, state)

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(versioned.upgraded(self, state))
        self._curves, self._ended = {}, {}  # a resumed driver saw no trial from its start
        self._repeats = RepeatFilter(always=self.metric)
        self._reconciled = False
        self.interrupted = False
        self._points = 0
        self._load_saved_runs()  # a resumed search continues the runs its writer created
        self._start()
        restored.register("tracker", self)

    def _load_saved_runs(self) -> None:
        if self.state_path:
            saved = SearchState(self.state_path).read()
            self.run_ids.update(saved.get("runs", {}))
            self.resume_steps = dict(saved.get("steps", {}))
            self.recorded_ends = dict(saved.get("ended", {}))
            # trial id -> [trial number, arch hash] of runs a crashed driver created
            self.saved_trials = dict(saved.get("trials", {}))
            # Records an earlier driver could not deliver: the writer sends them first.
            started, steps = writers.spooled_progress(self.state_path)
            for trial_id in started:
                self.run_ids.setdefault(trial_id, "pending")
            for trial_id, step in steps.items():
                self.resume_steps[trial_id] = max(step, self.resume_steps.get(trial_id, 0))

    # Ray snapshots callback states with its trials, so statuses survive a resume.
    def get_state(self) -> dict:
        return {"statuses": self.statuses}

    def set_state(self, state: dict) -> None:
        """Called by Ray when it resumes the search: recover what the crashed writer lost."""
        self.statuses.update(state.get("statuses", {}))
        if not self.state_path:
            return
        ray_path = SearchState(self.state_path).read().get("ray_path")  # s3://...: read there too
        folder = os.path.dirname(self.state_path)
        self.backlog = unrecorded_results(folder, self.resume_steps, ray_path)
        for trial_id, status in self.statuses.items():  # ended before the crash: Ray won't rerun
            if trial_id in self.run_ids:
                results = self._replay(trial_id)
                epochs = max([r.get("training_iteration", 0) for r in results], default=0)
                tags = {T.STATUS: status}
                if epochs:
                    tags[T.EPOCHS] = str(epochs)
                tags.update(self._scheduler_tags(trial_id))  # restored by SchedulerState first
                self._queue.put(("end", trial_id, (tags, STATUS_TO_MLFLOW[status], None)))

    def setup(self, **info):
        """Called once Ray's own Ctrl+C handler is in place: note interrupts before it runs."""
        self.interrupted = False
        interrupts.watch(self._interrupt)

    def _interrupt(self) -> None:
        self.interrupted = True

    def on_step_begin(self, iteration, trials, **info):
        """Once per session, before anything runs: trials that Ray's last snapshot holds as
        ended, but that ended after the tracker's own snapshot, are never run again, so no hook
        will close their runs: close them here, with what the crash kept from MLflow."""
        if not self._reconciled:
            self._reconciled = True
            self._close_ended(iteration, trials)

    def _close_ended(self, iteration: int, trials: list) -> None:
        """Close the run of every trial Ray holds as ended without the tracker having seen it
        end (also at the experiment's end: nothing may stay open). A trial that ended before a
        crash whose run the killed writer never created (it lagged behind a busy tracking
        server) gets its run now, with every result Ray kept: nothing recorded is lost."""
        for trial in trials:
            ended_before = self.statuses.get(trial.trial_id)
            if trial.status not in ("TERMINATED", "ERROR") or (
                ended_before is not None and trial.trial_id in self.run_ids
            ):
                continue
            results = list(self.backlog.get(trial.trial_id, []))
            self.on_trial_start(iteration, trials, trial)  # its run: reopened, claimed or new
            known = [trial.last_result or {}, *results]
            last = max(known, key=lambda r: r.get("training_iteration", 0))
            if ended_before is not None:  # Ray's snapshot said how it ended (set_state)
                status = ended_before
            elif trial.status == "ERROR":
                status = "errored"
            else:
                stopped = trial.trial_id in (getattr(self.scheduler, "stop_reasons", None) or {})
                status = status_of(False, last, self.max_epochs, stopped)
            self._end(trial, status, last)

    def _replay(self, trial_id: str) -> list[dict]:
        """Write a resumed trial's unrecorded results, and skip them if Ray reports them again."""
        results = self.backlog.pop(trial_id, [])
        for result in results:
            step = int(result.get("training_iteration", 0))
            ts = int(float(result.get("timestamp", time.time())) * 1000)
            self._queue.put(("metrics", trial_id, (reported_metrics(result), step, ts)))
            self.resume_steps[trial_id] = max(step, self.resume_steps.get(trial_id, 0))
        return results

    # ---- Tune hooks (driver: enqueue only) ------------------------------------------------
    def on_trial_start(self, iteration, trials, trial, **info):
        if trial.trial_id in self.run_ids:  # resumed: its run was closed when the search stopped
            self._queue.put(("reopen", trial.trial_id, None))
            self._replay(trial.trial_id)
            return
        config = trial.config
        arch = config.get("arch", {})
        number = config.get("trial_number", 0)
        if self._claim_lost_run(trial.trial_id, number, str(config.get("arch_key", ""))):
            self._replay(trial.trial_id)
            return
        tags, params = self._new_run(trial.trial_id, number, config, "running")
        name = f"{T.trial_name(number)} {self.describe(arch)}"
        self.run_ids[trial.trial_id] = "pending"
        self._curves[trial.trial_id] = []  # started in this session: its whole curve is seen
        cost = {k: float(v) for k, v in (config.get("cost") or {}).items()}  # from the gate
        self._repeats.start(trial.trial_id, cost)  # the costs are logged at step 0
        now = int(time.time() * 1000)
        self._queue.put(("start", trial.trial_id, (name, tags, params, cost, now)))
        self._replay(trial.trial_id)  # a crash may have lost even the run's creation

    def _new_run(
        self, trial_id: str, number: int, config: dict, status: str
    ) -> tuple[dict[str, str], dict[str, str]]:
        """The tags and params a trial's run is created with."""
        tags = {
            **self.run_tags,
            "mlflow.parentRunId": self.parent_run_id,
            T.ROLE: T.TRIAL,
            T.TRIAL_ID: trial_id,
            T.TRIAL_NUMBER: str(number),
            T.ARCH: json.dumps(config.get("arch", {}), sort_keys=True)[:5000],
            T.ARCH_HASH: str(config.get("arch_key", "")),
            T.STATUS: status,
        }
        params = {k: str(v)[:6000] for k, v in self.flatten(config).items()}
        return tags, params

    def record_reuse(self, number: int, config: dict, source: dict) -> None:
        """A trial answered from an earlier search's record: a run of its own, marked reused and
        linked to the run it came from, with that run's last metric values; nothing trained."""
        trial_id = f"{REUSED_ID}{number}"
        arch, run_id = config.get("arch", {}), source.get("run_id", "")
        link = f"#/experiments/{source.get('experiment_id', '')}/runs/{run_id}"
        tags, params = self._new_run(trial_id, number, config, "reused")
        tags[T.REUSED_FROM] = run_id
        tags["mlflow.note.content"] = (
            f"Not trained: the result of run [{run_id}]({link}), "
            "an earlier trial with the same architecture and fingerprint."
        )
        name = f"{T.trial_name(number)} {self.describe(arch)} (reused)"
        metrics = {k: float(v) for k, v in (source.get("metrics") or {}).items()}
        epochs = int(source.get("epochs") or 0)
        self.run_ids[trial_id] = "pending"
        self.statuses[trial_id] = "reused"
        now = int(time.time() * 1000)
        self._queue.put(("start", trial_id, (name, tags, params, {}, now)))
        self._queue.put(("metrics", trial_id, (metrics, epochs, now)))
        end_tags = {T.STATUS: "reused", T.EPOCHS: str(epochs)}
        self._queue.put(("end", trial_id, (end_tags, STATUS_TO_MLFLOW["reused"], None)))
        self.reused.append(
            {"number": number, "trial_id": trial_id, "arch": arch, "metrics": metrics,
             "epochs": epochs, "arch_key": config.get("arch_key", ""), "source": run_id,
             "checkpoint": source.get("checkpoint", "")}
        )  # fmt: skip

    def _claim_lost_run(self, trial_id: str, number: int, arch_hash: str) -> bool:
        """After a crash, Ray may re-suggest a trial its last snapshot missed: same number, new
        id. Its run continues if it is the same architecture; otherwise the old run is closed
        as superseded. Either way no run is left open or doubled."""
        for old_id, (old_number, old_hash) in list(self.saved_trials.items()):
            if old_number != number or old_id == trial_id or old_id not in self.run_ids:
                continue
            if old_id.startswith(REUSED_ID):  # ended when it was made; never Ray's
                continue
            del self.saved_trials[old_id]
            if old_hash == arch_hash:  # the run moves to the new id: the old one owns nothing
                self.run_ids[trial_id] = self.run_ids.pop(old_id)
                for moved in (self.resume_steps, self.recorded_ends):
                    if old_id in moved:
                        moved[trial_id] = moved.pop(old_id)
                self._queue.put(("alias", trial_id, old_id))
                return True
            self._supersede(old_id)
        return False

    def _supersede(self, old_id: str) -> None:
        self._queue.put(("supersede", old_id, None))
        self.run_ids.pop(old_id, None)  # closed: the search no longer owns it

    def close_open_runs(self) -> int:
        """Runs of trials the search leaves unfinished (interrupted, or cut short when the search
        failed) are closed as KILLED, never left RUNNING; a resume reopens them. `run_ids` holds
        exactly the runs this search owns (a superseded or re-keyed one leaves it)."""
        cut = [t for t in self.run_ids if t not in self.statuses]
        for trial_id in cut:
            self._queue.put(("end", trial_id, ({T.STATUS: "interrupted"}, "KILLED", None)))
        return len(cut)

    def fail_trial(self, trial_id: str, message: str) -> None:
        """A trial that ended the search (e.g. it never reported the metric): errored."""
        self.statuses[trial_id] = "errored"
        self.last_error = message
        tags = {T.STATUS: "errored", T.ERROR: message[:5000]}
        self._queue.put(("end", trial_id, (tags, "FAILED", message)))

    def close_lost_runs(self, known_trial_ids: set[str]) -> None:
        """Runs of trials that Ray never resumed nor re-suggested: closed as superseded."""
        for old_id in list(self.saved_trials):
            reused = old_id.startswith(REUSED_ID)  # ended when it was made; never Ray's
            if old_id not in known_trial_ids and old_id in self.run_ids and not reused:
                self._supersede(old_id)
            self.saved_trials.pop(old_id)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        step = int(result.get("training_iteration", 0))
        if trial.trial_id in self.resume_steps:  # epochs redone after a crash: recorded already
            if step <= self.resume_steps[trial.trial_id]:
                return
            del self.resume_steps[trial.trial_id]
        metrics = reported_metrics(result)
        if trial.trial_id not in self._nodes:  # once per trial: where it runs
            self._nodes.add(trial.trial_id)
            where = {
                T.NODE: result.get("hostname") or result.get("node_ip"),
                T.NODE_IP: result.get("node_ip"),
                T.NODE_ID: result.get("node_id"),  # Ray's node id, if the trainable says
            }
            tags = {k: str(v) for k, v in where.items() if v}
            self._queue.put(("tags", trial.trial_id, tags))
        device_tags, warning = self.devices.note(
            trial.trial_id, T.trial_name(T.trial_number(trial.config)), result
        )
        if device_tags:
            self._queue.put(("tags", trial.trial_id, device_tags))
        if warning:
            print(warning, file=sys.stderr)
        notes = getattr(self.scheduler, "result_notes", None)
        if notes:  # PBT: the hyperparameters in force (hp_*) and, after an exploit, the lineage
            extra, lineage = notes(trial.trial_id, result)
            metrics.update(extra)
            if lineage:
                self._queue.put(("tags", trial.trial_id, lineage))
        now = int(time.time() * 1000)
        for values, at, ts in self._repeats(trial.trial_id, metrics, step, now):
            self._queue.put(("metrics", trial.trial_id, (values, at, ts)))
        curve = self._curves.get(trial.trial_id)
        if curve is not None and self.metric in metrics:
            self._points += 1
            if self._points <= MAX_CURVE_POINTS:
                curve.append((step, metrics[self.metric]))

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._end(trial, trial_status(trial, self.max_epochs, self.scheduler))

    def on_trial_error(self, iteration, trials, trial, **info):
        self._end(trial, "errored")

    def on_experiment_end(self, trials, **info):
        if not self.interrupted:  # else the trials Ray stopped are unfinished, not ended
            self._close_ended(-1, trials)
        self.flush()

    def _end(self, trial: Any, status: str, last: dict | None = None) -> None:
        epochs = (last or trial.last_result or {}).get("training_iteration", 0)
        before = self.recorded_ends.get(trial.trial_id)
        if before is not None and epochs <= before[1]:
            # Ray reran, from a snapshot older than the record, a trial that had ended before
            # a crash: the rerun added nothing, and what the trial reached then stands.
            status, epochs = before
            scheduler_tags = {}
        else:
            scheduler_tags = self._scheduler_tags(trial.trial_id)
            if status != "stopped_early":  # a stop a crash kept from happening (status_of)
                scheduler_tags.pop(T.STOP_REASON, None)
        tags = {T.STATUS: status, T.EPOCHS: str(epochs), **scheduler_tags}
        checkpoint = getattr(trial, "checkpoint", None)
        if checkpoint is not None:  # a later search reusing this trial rebuilds its model here
            where = locate(checkpoint.path, self.storage)
            tags[T.CHECKPOINT] = without_secrets(where)
        self.statuses[trial.trial_id] = status
        self._repeats.end(trial.trial_id)
        self._ended[trial.trial_id] = time.time()
        error = None
        if status == "errored" and trial.error_file and os.path.exists(trial.error_file):
            with open(trial.error_file) as f:
                error = f.read()
            lines = [line.strip() for line in error.strip().splitlines() if line.strip()]
            self.last_error = lines[-1][:300] if lines else None
            if self.first_error is None and self.last_error:
                self.first_error = (self.last_error, trial.error_file)
        self._queue.put(("end", trial.trial_id, (tags, STATUS_TO_MLFLOW[status], error)))

    def _scheduler_tags(self, trial_id: str) -> dict[str, str]:
        """Why the scheduler stopped the trial (nasorch.stop_reason), its PBT lineage."""
        tags = getattr(self.scheduler, "trial_tags", None)
        return tags(trial_id) if tags else {}

    # ---- driver API ------------------------------------------------------------------------
    def seen(self) -> dict[str, dict]:
        """The metric's curve and end time of every trial this driver saw from start to end
        (what MLflow holds for them too), so the final plots need not read them back."""
        if self._points > MAX_CURVE_POINTS:
            return {"curves": {}, "ended": {}}
        done = [t for t in self._curves if t in self._ended]
        return {
            "curves": {t: self._curves[t] for t in done},
            "ended": {t: self._ended[t] for t in done},
        }

    def flush(self, timeout: float = 300.0, final: bool = False) -> dict[str, Any]:
        """Block until everything queued so far is written (or found unwritable for now); learn
        the runs' ids. With `final`, what MLflow did not take is spooled to a file for `nasorch
        resume`. Returns the writer's delivery report (see `delivery`)."""
        process = self._writer.process
        if not process.is_alive():
            self.delivery = {
                "unsent": -1,
                "reason": f"the MLflow writer process died (exit code {process.exitcode})",
            }
            return self.delivery
        self._flushes += 1
        self._queue.put(("flush", None, (self._flushes, final)))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and process.is_alive():
            try:
                token, run_ids, report = self._writer.acks.get(timeout=1.0)
            except queue.Empty:
                continue
            self.run_ids.update({t: r for t, r in run_ids.items() if t in self.run_ids})
            self.errors = report["errors"]
            self.delivery = report
            if token == self._flushes:
                return report
        self.delivery = {
            "unsent": -1,
            "reason": f"the MLflow writer gave no answer in {timeout:g} s",
        }
        return self.delivery

    def close(self) -> dict[str, Any]:
        """Everything is written or spooled; the writer goes back to serve this process's next
        search. Returns the delivery report."""
        try:
            return self.flush(final=True)
        finally:
            writers.release(self._writer)
