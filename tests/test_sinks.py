"""The MLflow writer's two paths (client API, one SQL transaction per round) record the same
runs, a failed SQL round loses nothing, and one writer process serves searches in turn."""

from __future__ import annotations

import math
import time

import pytest
from mlflow.tracking import MlflowClient

from orchestrator.tracking import sinks
from orchestrator.tracking import writer as writers
from orchestrator.tracking.writer import _Writer


def _store(tmp_path, name="m"):
    uri = f"sqlite:///{tmp_path}/{name}.db"
    client = MlflowClient(uri)
    experiment_id = client.create_experiment("sinks")
    parent = client.create_run(experiment_id).info.run_id
    return uri, client, experiment_id, parent


def _start(trial_id, parent, number):
    tags = {
        "mlflow.parentRunId": parent,
        "nasorch.role": "trial",
        "nasorch.trial_id": trial_id,
        "nasorch.trial_number": str(number),
        "nasorch.status": "running",
    }
    payload = (f"t{number:03d} mlp", tags, {"arch.depth": "2"}, {"num_params": 7.0})
    return ("start", trial_id, payload)


def _rounds(parent):
    ts = int(time.time() * 1000)
    first = [_start("a", parent, 1), _start("b", parent, 2), _start("c", parent, 3)]
    first += [("metrics", "a", ({"acc": 0.5, "loss": 1.0}, 1, ts))]
    first += [("metrics", "b", ({"acc": 0.4}, 1, ts)), ("tags", "a", {"nasorch.node": "n1"})]
    second = [
        ("metrics", "a", ({"acc": 0.7, "loss": math.nan}, 2, ts + 1)),
        ("metrics", "a", ({"acc": 0.6, "loss": math.inf}, 3, ts + 2)),
        ("end", "a", ({"nasorch.status": "completed", "nasorch.epochs": "3"}, "FINISHED", None)),
        ("end", "b", ({"nasorch.status": "errored"}, "FAILED", "Traceback\nValueError: boom")),
        ("supersede", "c", None),
    ]
    return first, second


def _record(client, experiment_id, parent):
    """Everything MLflow's client reads back about the child runs, keyed by run name."""
    out = {}
    for run in client.search_runs([experiment_id], f"tags.mlflow.parentRunId = '{parent}'"):
        rid = run.info.run_id
        histories = {
            key: sorted((m.step, m.value) for m in client.get_metric_history(rid, key))
            for key in run.data.metrics
        }
        out[run.info.run_name] = {
            "status": run.info.status,
            "ended": run.info.end_time is not None,
            "lifecycle": run.info.lifecycle_stage,
            "artifacts": run.info.artifact_uri.endswith(f"{rid}/artifacts"),
            "params": run.data.params,
            "tags": run.data.tags,
            "metrics": run.data.metrics,
            "histories": histories,
            "files": [f.path for f in client.list_artifacts(rid)],
        }
    return out


@pytest.mark.parametrize("path", ["client", "sql"])
def test_both_paths_record_the_same_runs(tmp_path, monkeypatch, path):
    uri, client, experiment_id, parent = _store(tmp_path)
    if path == "client":
        monkeypatch.setattr(sinks, "make_sink", sinks.ClientSink)
    writer = _Writer(uri, experiment_id, parent, None, {})
    assert type(writer.sink) is (sinks.ClientSink if path == "client" else sinks.SqlSink)
    for events in _rounds(parent):
        writer.write(events)
    assert writer.errors == [] and getattr(writer.sink, "replayed", 0) == 0
    got = _record(client, experiment_id, parent)
    a, b, c = got["t001 mlp"], got["t002 mlp"], got["t003 mlp"]
    assert (a["status"], b["status"], c["status"]) == ("FINISHED", "FAILED", "KILLED")
    assert a["ended"] and b["ended"] and c["ended"] and a["lifecycle"] == "active"
    assert a["artifacts"] and a["params"] == {"arch.depth": "2"}
    assert a["tags"]["nasorch.status"] == "completed" and a["tags"]["nasorch.node"] == "n1"
    assert a["tags"]["mlflow.runName"] == "t001 mlp" and c["tags"]["nasorch.status"] == "superseded"
    assert a["histories"]["acc"] == [(1, 0.5), (2, 0.7), (3, 0.6)]
    assert a["metrics"] == {"acc": 0.6, "loss": 1.7976931348623157e308, "num_params": 7.0}
    assert math.isnan(dict(a["histories"]["loss"])[2])
    assert b["files"] == ["error.txt"]
    # The SQL path writes what the client path writes, as MLflow reads it back.
    if path == "sql":
        other = tmp_path / "other"
        other.mkdir()
        uri2, client2, experiment2, parent2 = _store(other)
        monkeypatch.setattr(sinks, "make_sink", sinks.ClientSink)
        reference = _Writer(uri2, experiment2, parent2, None, {})
        for events in _rounds(parent2):
            reference.write(events)
        expected = _record(client2, experiment2, parent2)
        for name in expected:
            expected[name]["tags"]["mlflow.parentRunId"] = parent
            assert _nan_safe(got[name]) == _nan_safe(expected[name])


def _nan_safe(record):
    return repr(record)  # NaN != NaN, but their reprs are equal


def test_a_failed_sql_round_is_replayed_through_the_client(tmp_path):
    uri, client, experiment_id, parent = _store(tmp_path)
    writer = _Writer(uri, experiment_id, parent, None, {})
    ts = int(time.time() * 1000)
    writer.write([_start("a", parent, 1), ("metrics", "a", ({"acc": 0.5}, 1, ts))])
    # A crash-and-resume can send a point that is stored already: the SQL transaction fails on
    # the duplicate key, and the round (with a new run in it) goes through the client instead.
    writer.write(
        [
            _start("b", parent, 2),
            ("metrics", "a", ({"acc": 0.5}, 1, ts)),
            ("metrics", "a", ({"acc": 0.8}, 2, ts + 1)),
            ("metrics", "b", ({"acc": 0.3}, 1, ts)),
            ("end", "a", ({"nasorch.status": "completed"}, "FINISHED", None)),
        ]
    )
    assert writer.errors == [] and writer.sink.replayed == 1
    got = _record(client, experiment_id, parent)
    assert got["t001 mlp"]["histories"]["acc"] == [(1, 0.5), (2, 0.8)]
    assert got["t001 mlp"]["status"] == "FINISHED"
    assert got["t002 mlp"]["histories"]["acc"] == [(1, 0.3)]


def test_one_writer_process_serves_searches_in_turn(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    pids, stores = [], []
    for name in ("first", "second"):
        uri, client, experiment_id, parent = _store(tmp_path, name)
        writer = writers.acquire()
        writer.open(uri, experiment_id, parent, None, {})
        writer.events.put(_start("a", parent, 1))
        writer.events.put(("flush", None, (7, False)))
        token, run_ids, report = writer.acks.get(timeout=60)
        assert (token, report["errors"], report["unsent"]) == (7, [], 0) and set(run_ids) == {"a"}
        pids.append(writer.process.pid)
        stores.append((client, experiment_id, parent))
        writers.release(writer)
    assert pids[0] == pids[1]
    for client, experiment_id, parent in stores:
        assert list(_record(client, experiment_id, parent)) == ["t001 mlp"]


def test_a_round_of_more_runs_than_old_sqlite_takes_variables(tmp_path):
    uri, client, experiment_id, parent = _store(tmp_path)
    writer = _Writer(uri, experiment_id, parent, None, {})
    ts = int(time.time() * 1000)
    events = []
    for n in range(1, 1101):  # one round: queries for them go in chunks of 500 run ids
        t = f"t{n}"
        events += [_start(t, parent, n), ("metrics", t, ({"acc": n / 2000}, 1, ts))]
        events += [("end", t, ({"nasorch.status": "completed"}, "FINISHED", None))]
    writer.write(events)
    assert writer.errors == [] and writer.sink.replayed == 0
    runs = client.search_runs(
        [experiment_id], "tags.`nasorch.status` = 'completed'", max_results=2000
    )
    assert len(runs) == 1100 and {r.info.status for r in runs} == {"FINISHED"}
    assert sorted(r.data.metrics["acc"] for r in runs)[-1] == 1100 / 2000


@pytest.mark.parametrize("path", ["sql", "client"])
def test_one_bad_value_is_skipped_alone_and_named(tmp_path, monkeypatch, path):
    """A metric name MLflow refuses ('acc@1') used to drop its whole round: every other record
    of every run in it. Now it alone is skipped, and reported with its trial and key."""
    if path == "client":
        monkeypatch.setattr(sinks, "make_sink", sinks.ClientSink)
    uri, client, experiment_id, parent = _store(tmp_path)
    writer = _Writer(uri, experiment_id, parent, None, {})
    ts = int(time.time() * 1000)
    writer.write(
        [
            _start("a", parent, 1),
            _start("b", parent, 2),
            ("metrics", "a", ({"acc": 0.5, "acc@1": 0.9}, 1, ts)),
            ("metrics", "b", ({"acc": 0.4}, 1, ts)),
            ("tags", "a", {"nasorch.node": "n1"}),
            ("end", "b", ({"nasorch.status": "completed"}, "FINISHED", None)),
        ]
    )
    assert writer.unsent == [] and writer.errors == []
    assert len(writer.rejected) == 1
    assert (
        writer.rejected[0].startswith("t001: metric 'acc@1' (")
        and "alphanumerics" in writer.rejected[0]
    )
    got = _record(client, experiment_id, parent)
    assert got["t001 mlp"]["histories"] == {"acc": [(1, 0.5)], "num_params": [(0, 7.0)]}
    assert got["t001 mlp"]["tags"]["nasorch.node"] == "n1"
    assert got["t002 mlp"]["histories"]["acc"] == [(1, 0.4)]
    assert got["t002 mlp"]["status"] == "FINISHED"


class FlakyClient:
    """An MlflowClient whose store is unreachable for the first `down` calls of log_batch."""

    def __init__(self, client, down: int):
        self.client, self.down = client, down

    def __getattr__(self, name):
        return getattr(self.client, name)

    def log_batch(self, *args, **kwargs):
        if self.down > 0:
            self.down -= 1
            raise ConnectionError("Connection refused")
        return self.client.log_batch(*args, **kwargs)


def test_an_unwritable_round_is_kept_retried_in_order_and_spooled(tmp_path, monkeypatch):
    """Rounds MLflow cannot take are kept (not dropped as before) and retried before newer
    ones; what is still unsent at the end goes to a file that the next writer sends first."""
    from orchestrator.resumable.state_file import SearchState

    uri, client, experiment_id, parent = _store(tmp_path)
    flaky = FlakyClient(client, down=3)
    monkeypatch.setattr(sinks, "make_sink", lambda c: sinks.ClientSink(flaky))
    state = SearchState(tmp_path / "exp")
    writer = _Writer(uri, experiment_id, parent, str(state.path), {})
    ts = int(time.time() * 1000)
    writer.write([_start("a", parent, 1), ("metrics", "a", ({"acc": 0.5}, 1, ts))])
    assert len(writer.unsent) == 2 and "Connection refused" in writer.reason
    run_a = writer.run_ids["a"]  # created before the failure: kept, never created twice
    writer.write([("metrics", "a", ({"acc": 0.6}, 2, ts + 1))])  # not due yet: queued behind
    assert len(writer.unsent) == 3
    writer.retry(force=True)  # still down
    writer.spool()
    spooled = tmp_path / "exp" / "nasorch_unsent.jsonl"
    assert len(spooled.read_text().splitlines()) == 3
    assert state.read()["unsent"] == {"count": 3, "file": str(spooled)}

    # The next writer of this search (a resume): the store answers again.
    monkeypatch.setattr(sinks, "make_sink", sinks.ClientSink)
    again = _Writer(uri, experiment_id, parent, str(state.path), {"a": run_a})
    assert again.unsent == [] and not spooled.exists()
    got = _record(client, experiment_id, parent)
    assert list(got) == ["t001 mlp"]
    assert got["t001 mlp"]["histories"]["acc"] == [(1, 0.5), (2, 0.6)]


def test_the_state_file_keeps_how_each_trial_ended(tmp_path):
    """A trial's end (status and epochs) is kept beside its run and last epoch, so that a
    resumed search knows what a trial Ray reruns had already reached; an errored end without
    epochs and a superseded run leave no entry."""
    from orchestrator.resumable.state_file import SearchState

    uri, client, experiment_id, parent = _store(tmp_path)
    state = SearchState(tmp_path / "exp")
    writer = _Writer(uri, experiment_id, parent, str(state.path), {})
    for events in _rounds(parent):
        writer.write(events)
    assert writer.unsent == []
    assert state.read()["ended"] == {"a": ["completed", 3]}
