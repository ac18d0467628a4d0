"""A kill between MLflow taking a round and the state file recording it (the whole process tree
SIGKILLed): resume learns from MLflow what the round wrote, so no run is doubled and no epoch
is logged twice (`orchestrator/resumable/inflight.py`)."""

from __future__ import annotations

import pytest

from orchestrator.resumable import inflight
from orchestrator.resumable.state_file import SearchState
from orchestrator.tracking.writer import _Writer
from tests.test_sinks import _rounds, _start, _store


class Killed(BaseException):
    """The process dies here: nothing after it runs."""


def test_settle_finds_the_runs_and_epochs_a_killed_round_wrote(tmp_path):
    uri, client, experiment_id, parent = _store(tmp_path)
    state = SearchState(tmp_path / "exp")
    state.update(parent=parent)
    writer = _Writer(uri, experiment_id, parent, str(state.path), {})

    def killed(**fields):
        raise Killed

    writer.state.update = killed  # MLflow took the round; the state file never hears of it
    first, second = _rounds(parent)
    round_ = [e for e in first + second if e[0] in ("start", "metrics") and e[1] != "c"]
    with pytest.raises(Killed):
        writer.write(round_)
    assert "runs" not in state.read()
    assert inflight.path_for(state).is_file()

    assert inflight.settle(state, client, parent) == 4  # two runs, two trials' last epochs
    saved = state.read()
    children = {
        r.data.tags["nasorch.trial_id"]: r.info.run_id
        for r in client.search_runs([experiment_id], f"tags.mlflow.parentRunId = '{parent}'")
    }
    assert saved["runs"] == children and set(children) == {"a", "b"}
    assert saved["steps"] == {"a": 3, "b": 1}
    assert saved["trials"] == {"a": [1, ""], "b": [2, ""]}
    assert not inflight.path_for(state).exists()
    assert inflight.settle(state, client, parent) == 0  # settled once


def test_a_round_that_completes_leaves_no_note(tmp_path):
    uri, client, experiment_id, parent = _store(tmp_path)
    state = SearchState(tmp_path / "exp")
    writer = _Writer(uri, experiment_id, parent, str(state.path), {})
    first, _ = _rounds(parent)
    writer.write(first)
    assert writer.unsent == [] and not inflight.path_for(state).exists()
    assert state.read()["steps"] == {"a": 1, "b": 1}


def test_no_answer_from_mlflow_keeps_the_note_for_the_next_resume(tmp_path):
    state = SearchState(tmp_path / "exp")
    state.update(parent="p")
    inflight.note(state, {"starts": {"a": [1, "h"]}, "steps": {}})

    class Down:
        def get_run(self, run_id):
            raise ConnectionError("no route to host")

    assert inflight.settle(state, Down(), "p") == 0
    assert inflight.path_for(state).is_file()


def test_round_intent_names_new_runs_and_last_epochs():
    events = [
        _start("a", "p", 1),
        ("metrics", "a", ({"acc": 0.1}, 1, 0)),
        ("metrics", "a", ({"acc": 0.2, "loss": 1.0}, 2, 0)),
        ("metrics", "b", ({"loss": 2.0}, 4, 0)),
        ("tags", "b", {"x": "y"}),
    ]
    intent = inflight.round_intent(events, {"b": "run-b"})
    assert intent == {"starts": {"a": [1, ""]}, "steps": {"a": [2, "acc"], "b": [4, "loss"]}}
    assert inflight.round_intent([("tags", "b", {})], {}) == {}
