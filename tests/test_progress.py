"""The live progress line: its best never goes down, and a resumed search's clock says so."""

from __future__ import annotations

import io
import pickle
from types import SimpleNamespace

from orchestrator.execution.progress import Progress


def trial(number: int, status: str = "RUNNING"):
    return SimpleNamespace(trial_id=f"id{number}", config={"trial_number": number}, status=status)


def test_the_best_never_goes_down():
    progress = Progress("acc", "max", total=3, stream=io.StringIO())
    t1, t2 = trial(1), trial(2)
    progress.on_trial_result(0, [], t1, {"acc": 0.5})
    progress.on_trial_result(0, [], t2, {"acc": 0.7})
    progress.on_trial_result(0, [], t2, {"acc": 0.6})  # t002's latest value drops
    progress.on_trial_result(0, [], t1, {"acc": float("nan")})
    assert progress.line([t1, t2]).endswith("best acc: 0.7000 (t002)")


def test_minimising_keeps_the_lowest():
    progress = Progress("loss", "min", total=2, stream=io.StringIO())
    t1 = trial(1)
    for value in (0.9, 0.4, 0.8):
        progress.on_trial_result(0, [], t1, {"loss": value})
    assert progress.line([t1]).endswith("best loss: 0.4000 (t001)")


def test_a_resumed_search_says_so():
    progress = Progress("acc", "max", total=2, stream=io.StringIO())
    assert progress.line([]).startswith("[")
    assert "resumed" not in progress.line([])
    restored = pickle.loads(pickle.dumps(progress))  # what Ray does on `nasorch resume`
    line = restored.line([])
    assert line.startswith("[resumed,") and "   0.0s]" in line


def test_trials_waiting_with_none_running_say_they_wait_for_nodes(monkeypatch):
    from orchestrator.execution import progress as module

    now = [100.0]
    monkeypatch.setattr(module.time, "monotonic", lambda: now[0])
    progress = Progress("acc", "max", total=2, stream=io.StringIO())
    waiting = [trial(1, "PENDING"), trial(2, "PENDING")]
    assert "waiting for nodes" not in progress.line(waiting)  # trials start in a moment
    now[0] += module.STARVED_AFTER_S
    assert "2 pending (waiting for nodes) |" in progress.line(waiting)
    assert "waiting" not in progress.line([trial(1), trial(2, "PENDING")])  # one runs
    now[0] += 60
    assert "waiting" not in progress.line([trial(1, "PENDING")])  # the clock starts again
