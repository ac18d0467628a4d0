"""`nasorch simulate --source mlflow:EXPERIMENT`: a past search's curves, read back from MLflow,
replayed as a table (orchestrator/simulation/mlflow_source.py). The conversion and the error
lines without MLflow; (integration) a small real search, then simulate on its record."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pandas as pd
import pytest

from orchestrator.core.errors import UserError
from orchestrator.simulation import build_source
from orchestrator.simulation.mlflow_source import (
    TrialHistory,
    parse_spec,
    times_from_metric,
    times_from_stamps,
    to_table,
)
from search_spaces import SEARCH_SPACES
from trainables.curves import CurveError

EPOCHS = 4


def _trial(width: int, epochs: int = EPOCHS, complete: bool = True) -> TrialHistory:
    values = {e: width / 100 * (1 - math.exp(-e)) for e in range(1, epochs + 1)}
    return TrialHistory({"width": width}, complete, values, {e: 2.0 * e for e in values})


SPACE = SEARCH_SPACES["custom"]({"width": [16, 32, 48, 64, 80]})


def test_full_curves_become_the_table_and_stopped_ones_are_left_out():
    trials = [_trial(16), _trial(32, epochs=1, complete=False), _trial(48), _trial(16)]
    table, left_out = to_table("exp", SPACE, trials, "acc", "max")
    assert left_out == 1 and table.max_epochs == EPOCHS and table.space.size() == 2
    assert {table.space.key(a) for a in table.space.archs} == {
        SPACE.key({"width": 16}),
        SPACE.key({"width": 48}),
    }
    curve = table.curve({"width": 48})
    assert np.allclose(curve.values, [trials[2].values[e] for e in range(1, EPOCHS + 1)])
    assert np.allclose(curve.times, [2, 4, 6, 8]) and table.full_time() == 8
    assert table.best == pytest.approx(trials[2].values[EPOCHS]) and table.mode == "max"
    rng = random.Random(0)
    for _ in range(20):  # searchers sample and mutate only among the recorded configurations
        assert table.space.mutate(table.space.sample(rng), rng)["width"] in (16, 48)


@pytest.mark.parametrize(
    "trials, message",
    [
        ([_trial(16), _trial(32, epochs=2, complete=False)], "1 configuration"),
        ([_trial(16), _trial(16)], "1 configuration"),  # one architecture trained twice
        ([_trial(16), _trial(32, epochs=5)], r"different numbers of epochs \(4, 5\)"),
        ([_trial(16, complete=False), _trial(32, complete=False)], "2 of 2 trial results"),
    ],
)
def test_too_few_or_uneven_curves_are_one_line(trials, message):
    with pytest.raises(CurveError, match=message) as e:
        to_table("exp", SPACE, trials, "acc", "max")
    assert "\n" not in str(e.value) and str(e.value).startswith("mlflow:exp: ")


def test_epoch_times_from_timestamps_and_from_a_logged_metric():
    # the first epoch from the run's start; the others from the gaps between log times
    assert times_from_stamps({1: 3_000, 2: 5_500, 3: 6_000}, 1_000) == {1: 2.0, 2: 4.5, 3: 5.0}
    # a run created after its first epoch was logged: the first takes the others' median
    assert times_from_stamps({1: 3_000, 2: 5_000, 3: 9_000}, 4_000) == {1: 3.0, 2: 5.0, 3: 9.0}
    # epochs within the same millisecond still take time
    assert times_from_stamps({1: 3_000, 2: 3_000}, 1_000) == {1: 2.0, 2: 2.001}
    assert times_from_metric({1: 1.5, 2: 2.5}, False, [1, 2]) == {1: 1.5, 2: 4.0}
    assert times_from_metric({1: 10.0, 2: 30.0}, True, [1, 2]) == {1: 10.0, 2: 30.0}
    # a value that stayed the same was logged once (the tracker's RepeatFilter)
    assert times_from_metric({1: 2.0}, False, [1, 2, 3]) == {1: 2.0, 2: 4.0, 3: 6.0}


def test_the_spec_and_its_tracking_uri(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////tmp/env.db")
    assert parse_spec("mlflow:exp") == ("exp", "sqlite:////tmp/env.db")
    assert parse_spec("mlflow:exp@http://u:p@host:5000") == ("exp", "http://u:p@host:5000")
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    name, uri = parse_spec("mlflow:exp")
    assert name == "exp" and uri.startswith("sqlite:///") and uri.endswith("mlflow.db")
    with pytest.raises(UserError, match="--source: 'mlflow:' names no experiment"):
        build_source("mlflow:")


def test_a_missing_store_experiment_or_search_is_one_line(tmp_path):
    from mlflow.tracking import MlflowClient

    missing = f"sqlite:///{tmp_path}/none.db"
    with pytest.raises(UserError, match="--source: mlflow:x: no MLflow store at"):
        build_source(f"mlflow:x@{missing}")
    uri = f"sqlite:///{tmp_path}/m.db"
    MlflowClient(uri).create_experiment("plain", artifact_location=str(tmp_path / "a"))
    for name, message in [("nope", "no MLflow experiment named 'nope'"),
                          ("plain", "holds no nasorch search")]:  # fmt: skip
        with pytest.raises(UserError) as e:
            build_source(f"mlflow:{name}@{uri}")
        assert str(e.value).startswith(f"--source: mlflow:{name}: ") and message in str(e.value)
        assert "\n" not in str(e.value)


def _write_curves(path, n: int = 6) -> pd.DataFrame:
    rows = []
    for i in range(n):
        final, seconds = 50 + 7 * i, 3.0 + i
        for epoch in range(1, EPOCHS + 1):
            rows.append({"param.width": 16 * (i + 1), "epoch": epoch,
                         "val_accuracy": final * (1 - math.exp(-epoch / (1 + i % 3))),
                         "epoch_seconds": seconds})  # fmt: skip
    frame = pd.DataFrame(rows)
    frame.to_csv(path, index=False)
    return frame


@pytest.mark.integration
def test_simulate_replays_a_real_searchs_recorded_curves(ray_local, tmp_path, capsys):
    import orchestrator
    from orchestrator.commands.cli import main

    curves = tmp_path / "c.csv"
    table = _write_curves(curves)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    result = orchestrator.run(
        {
            "name": "past", "metric": "val_accuracy", "num_samples": 4, "seed": 1,
            "max_concurrent_trials": 2,
            "search_space": {"name": "table", "options": {"path": str(curves)}},
            "trainable": {"name": "curve", "options": {"path": str(curves), "epochs": EPOCHS}},
            "storage_path": str(tmp_path / "ray"), "tracking": {"uri": uri},
        },
        progress=False,
    )  # fmt: skip
    done = result.trials[result.trials["status"] == "completed"]
    assert len(done) >= 2
    spec = f"mlflow:past@{uri}"
    source = build_source(spec)
    assert source.metric == "val_accuracy" and source.mode == "max"
    assert source.max_epochs == EPOCHS and source.space.size() == done["arch_hash"].nunique()
    # every candidate's replayed curve is its recorded metric history, which is the CSV's
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    for run_id, arch_json in zip(done["run_id"], done["arch_json"], strict=True):
        history = sorted(client.get_metric_history(run_id, "val_accuracy"), key=lambda m: m.step)
        arch = source.space.validate(json.loads(arch_json))
        curve = source.curve(arch)
        assert [m.step for m in history] == list(range(1, EPOCHS + 1))
        assert curve.values.tolist() == [m.value for m in history]
        rows = table[table["param.width"] == arch["width"]]
        assert np.allclose(curve.values, rows["val_accuracy"])
        assert np.allclose(curve.times, rows["epoch_seconds"].cumsum())  # curve_time_s
    out = tmp_path / "sim"
    code = main(["simulate", "--source", spec, "--combos", "random+asha,random+fifo",
                 "--workers", "2", "--seeds", "2", "--budget", "3", "--processes", "1",
                 "--no-plots", "--out", str(out)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 4 and set(runs["source"]) == {"past"} and (runs["trials"] > 0).all()
    assert (out / "summary.csv").is_file() and (out / "trajectory.csv").is_file()
    code = main(["simulate", "--source", f"mlflow:other@{uri}", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--source: mlflow:other: no MLflow" in err
    # A trainable that logs no time of its own: epoch times come from when MLflow logged each
    # epoch (tests.helpers.slow_epochs sleeps 0.4 s before each of its 3 reports).
    orchestrator.run(
        {
            "name": "timed", "metric": "score", "num_samples": 2, "seed": 1,
            "search_space": {"name": "custom", "options": {"params": {"x": [1, 2, 3]}}},
            "trainable": {"name": "tests.helpers:slow_epochs"},
            "storage_path": str(tmp_path / "ray"), "tracking": {"uri": uri},
        },
        progress=False,
    )  # fmt: skip
    timed = build_source(f"mlflow:timed@{uri}")
    for arch in timed.space.archs:
        curve = timed.curve(arch)
        assert curve.values.tolist() == [arch["x"] * e for e in (1, 2, 3)]
        # seconds the driver saw: at least one sleep's worth, though a loaded machine may
        # deliver two reports at once
        assert np.all(np.diff(curve.times) > 0) and curve.times[-1] > 0.1
