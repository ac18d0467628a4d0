"""`nasorch_state.json` has one owner: every writer merges its keys, none drops another's."""

from __future__ import annotations

import json
import multiprocessing as mp

import pytest

from orchestrator.core.errors import UserError
from orchestrator.resumable.state_file import STATE_FILE, VERSION, SearchState
from trainables.storage import join


def test_the_driver_and_the_writer_keep_each_others_keys(tmp_path):
    """The driver writes where the search lives; the MLflow writer then writes its runs. Before,
    the writer rewrote the file without `ray_path`, and a resume looked in the wrong place."""
    driver = SearchState(tmp_path)
    driver.update(parent="p1", ray_path="s3://b/x/run?endpoint_override=h:1&scheme=http")
    writer = SearchState(tmp_path / STATE_FILE)  # the writer is given the file's path
    writer.update(runs={"t1": "r1"}, steps={"t1": 3}, trials={"t1": [1, "abc"]})
    writer.update(runs={"t1": "r1", "t2": "r2"}, steps={"t1": 3, "t2": 1})
    state = SearchState(tmp_path).read()
    assert state == {
        "version": VERSION,
        "parent": "p1",
        "ray_path": "s3://b/x/run?endpoint_override=h:1&scheme=http",
        "runs": {"t1": "r1", "t2": "r2"},
        "steps": {"t1": 3, "t2": 1},
        "trials": {"t1": [1, "abc"]},
    }


def _hammer(folder: str, key: str, n: int) -> None:
    state = SearchState(folder)
    for i in range(n):
        current = state.read().get(key, {}) if key == "runs" else None
        if key == "runs":
            state.update(runs={**(current or {}), f"t{i}": f"r{i}"})
        else:
            state.update(parent=f"p{i}")


def test_two_processes_writing_at_once_lose_nothing(tmp_path):
    ctx = mp.get_context("spawn")
    procs = [
        ctx.Process(target=_hammer, args=(str(tmp_path), "parent", 60)),
        ctx.Process(target=_hammer, args=(str(tmp_path), "runs", 60)),
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    state = SearchState(tmp_path).read()
    assert state["parent"] == "p59"
    assert "runs" in state and "t59" in state["runs"]


def test_unknown_fields_and_newer_files_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown state fields: bogus"):
        SearchState(tmp_path).update(bogus=1)
    (tmp_path / STATE_FILE).write_text(json.dumps({"version": VERSION + 1}))
    with pytest.raises(UserError, match="newer nasorch"):
        SearchState(tmp_path).read()


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        ("/data/ray", "/data/ray/run-1"),
        ("/data/ray/", "/data/ray/run-1"),
        ("s3://bucket/ray", "s3://bucket/ray/run-1"),
        (
            "s3://bucket/ray?endpoint_override=127.0.0.1:9000&scheme=http",
            "s3://bucket/ray/run-1?endpoint_override=127.0.0.1:9000&scheme=http",
        ),
    ],
)
def test_a_storage_uri_keeps_its_query(base, expected):
    assert join(base, "run-1") == expected
