"""Which runs a search owns, and closes when it ends: the tracker's bookkeeping alone, with the
writer process replaced by a queue the test reads."""

from __future__ import annotations

import queue
from types import SimpleNamespace

import pytest

from orchestrator.resumable.state_file import SearchState
from orchestrator.tracking import mlflow_tracker
from orchestrator.tracking.mlflow_tracker import MlflowTracker


class FakeWriter:
    def __init__(self):
        self.events: queue.Queue = queue.Queue()

    def open(self, *args) -> None:
        pass


@pytest.fixture
def tracker(tmp_path, monkeypatch):
    """A resumed search's tracker: a crashed driver had runs r-old (trial 1) and r-other
    (trial 2) open."""
    monkeypatch.setattr(mlflow_tracker.writers, "acquire", FakeWriter)
    SearchState(tmp_path).update(
        parent="parent",
        runs={"old": "r-old", "other": "r-other"},
        steps={"old": 2},
        trials={"old": [1, "hash-a"], "other": [2, "hash-b"]},
    )
    return MlflowTracker(
        "sqlite:///unused.db", "1", "parent", run_tags={}, describe=str, flatten=lambda c: {},
        state_path=str(SearchState(tmp_path).path), max_epochs=3, metric="acc",
    )  # fmt: skip


def trial(trial_id: str, number: int, arch_hash: str, status: str = "TERMINATED"):
    config = {"trial_number": number, "arch_key": arch_hash, "arch": {"x": number}}
    return SimpleNamespace(
        trial_id=trial_id, config=config, status=status, error_file=None,
        last_result={"training_iteration": 3},
    )  # fmt: skip


def drain(tracker) -> list[tuple]:
    out = []
    while not tracker._writer.events.empty():
        out.append(tracker._writer.events.get())
    return out


def test_a_re_keyed_run_is_not_closed_as_interrupted(tracker):
    """Ray re-suggests trial 1 under a new id after the crash: its run continues under that id
    and ends FINISHED. The old id owns nothing: the end of the search must not close the run
    again as KILLED (a resumed run turned KILLED on S3 storage this way)."""
    new = trial("new", 1, "hash-a")
    tracker.on_trial_start(0, [], new)
    tracker.on_trial_complete(0, [], new)
    tracker.close_lost_runs({"new"})
    drain(tracker)
    assert tracker.close_open_runs() == 0
    assert drain(tracker) == []


def test_a_superseded_run_keeps_its_status(tracker):
    """Trial 2 comes back with another architecture: its old run is closed as superseded and
    is not closed again as interrupted when the search ends."""
    tracker.on_trial_start(0, [], trial("new2", 2, "hash-z"))
    events = drain(tracker)
    assert ("supersede", "other", None) in events
    tracker.on_trial_complete(0, [], trial("new2", 2, "hash-z"))
    drain(tracker)
    tracker.close_lost_runs({"new2"})
    closed = [e for e in drain(tracker) if e[0] in ("supersede", "end")]
    assert closed == [("supersede", "old", None)]  # Ray never resumed trial 1: superseded
    assert tracker.close_open_runs() == 0


def test_unfinished_trials_are_closed_and_reopened(tracker):
    tracker.on_trial_start(0, [], trial("old", 1, "hash-a", status="RUNNING"))
    assert drain(tracker)[0] == ("reopen", "old", None)  # resumed: RUNNING again
    assert tracker.close_open_runs() == 2  # the search stops with both trials unfinished
    ends = {e[1]: e[2] for e in drain(tracker) if e[0] == "end"}
    assert set(ends) == {"old", "other"}
    assert all(v == ({"nasorch.status": "interrupted"}, "KILLED", None) for v in ends.values())


def test_a_metric_that_never_changes_is_logged_once(tracker):
    """num_params every epoch (its value is the gate's cost, logged at step 0) and a fixed
    hyperparameter curve: logged once; a metric that changes after all gets every point."""
    t = trial("new", 7, "hash-q")
    t.config["cost"] = {"num_params": 100.0}
    tracker.on_trial_start(0, [], t)
    drain(tracker)
    for epoch, lr in ((1, 0.1), (2, 0.1), (3, 0.05)):
        result = {"acc": 0.5 + epoch / 10, "num_params": 100, "lr": lr}
        tracker.on_trial_result(0, [], t, {**result, "training_iteration": epoch})
    points = {}
    for kind, _, payload in drain(tracker):
        if kind == "metrics":
            values, step, _ = payload
            for key, value in values.items():
                points.setdefault(key, []).append((step, value))
    assert sorted(points["acc"]) == [(1, 0.6), (2, 0.7), (3, 0.8)]
    assert "num_params" not in points  # its one point is the cost, at step 0
    assert sorted(points["lr"]) == [(1, 0.1), (2, 0.1), (3, 0.05)]  # changed: all of it


def test_a_trial_ray_holds_as_ended_is_closed_on_resume(tracker):
    """Ray's last snapshot came after the tracker's: trial 1 ended there (TERMINATED, all 3
    epochs) but the tracker never learnt it. Ray will not run it again, so no hook would close
    its run: the first step of the resumed search does, and counts it as ended."""
    ended = trial("old", 1, "hash-a", status="TERMINATED")
    tracker.on_step_begin(0, [ended, trial("other", 2, "hash-b", status="PENDING")])
    events = drain(tracker)
    assert ("reopen", "old", None) in events
    ends = [payload for kind, tid, payload in events if kind == "end" and tid == "old"]
    assert ends and ends[-1][1] == "FINISHED" and ends[-1][0]["nasorch.status"] == "completed"
    assert tracker.statuses["old"] == "completed" and "other" not in tracker.statuses
    tracker.on_step_begin(1, [ended])  # once per session
    assert drain(tracker) == []


def test_a_trial_that_ended_before_its_run_was_written_gets_one_on_resume(tracker):
    """The killed driver's writer lagged behind the tracking server: Ray's snapshot holds
    trial 3 as ended (stopped early), but its run was never created. Ray will not run it
    again; the resumed search creates its run, with the status Ray kept, instead of losing it."""
    tracker.set_state({"statuses": {"lost": "stopped_early", "old": "completed"}})
    drain(tracker)
    lost = trial("lost", 3, "hash-c", status="TERMINATED")
    lost.last_result = {"training_iteration": 1}
    tracker.on_step_begin(0, [lost, trial("old", 1, "hash-a")])
    events = drain(tracker)
    assert [e[1] for e in events if e[0] == "start"] == ["lost"]  # "old" had its run: closed
    (end,) = [payload for kind, tid, payload in events if kind == "end" and tid == "lost"]
    assert end[0]["nasorch.status"] == "stopped_early" and end[1] == "FINISHED"
    assert end[0]["nasorch.epochs"] == "1"


def test_a_trial_rerun_from_an_older_snapshot_keeps_the_end_it_had(tmp_path, monkeypatch):
    """Trial 1 completed all 3 epochs before the crash, but Ray's last snapshot predates that:
    Ray reruns it, and this time the scheduler stops it at epoch 1. The rerun added nothing, so
    the run keeps its recorded end (completed, 3 epochs), without the rerun's stop reason; a
    trial whose rerun goes further than its record ends as the rerun does."""
    monkeypatch.setattr(mlflow_tracker.writers, "acquire", FakeWriter)
    SearchState(tmp_path).update(
        parent="parent", runs={"old": "r-old", "far": "r-far"}, steps={"old": 3, "far": 1},
        trials={"old": [1, "hash-a"], "far": [2, "hash-b"]},
        ended={"old": ["completed", 3], "far": ["stopped_early", 1]},
    )  # fmt: skip
    scheduler = SimpleNamespace(
        stop_reasons={"old": "asha rung 1: ...", "far": "asha rung 2: ..."},
        trial_tags=lambda t: {"nasorch.stop_reason": scheduler.stop_reasons[t]},
    )
    tracker = MlflowTracker(
        "sqlite:///unused.db", "1", "parent", run_tags={}, describe=str, flatten=lambda c: {},
        state_path=str(SearchState(tmp_path).path), max_epochs=None, metric="acc",
        scheduler=scheduler,
    )  # fmt: skip
    rerun = trial("old", 1, "hash-a")
    rerun.last_result = {"training_iteration": 1}
    further = trial("far", 2, "hash-b")
    further.last_result = {"training_iteration": 2}
    for t in (rerun, further):
        tracker.on_trial_start(0, [], t)
        tracker.on_trial_complete(0, [], t)
    ends = {tid: payload[0] for kind, tid, payload in drain(tracker) if kind == "end"}
    assert ends["old"] == {"nasorch.status": "completed", "nasorch.epochs": "3"}
    assert ends["far"] == {
        "nasorch.status": "stopped_early", "nasorch.epochs": "2",
        "nasorch.stop_reason": "asha rung 2: ...",
    }  # fmt: skip
    assert tracker.statuses == {"old": "completed", "far": "stopped_early"}
