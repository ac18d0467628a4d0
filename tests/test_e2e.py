"""A real search: Ray Tune trials, Optuna TPE, ASHA, and the MLflow records, checked through
MlflowClient."""

from __future__ import annotations

import glob
import json
import os

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

import orchestrator
from orchestrator.core.errors import UserError
from tests.conftest import ROOT

SMALL = {
    "name": "e2e",
    "metric": "val_accuracy",
    "num_samples": 6,
    "max_concurrent_trials": 2,
    "seed": 1,
    "search_space": {"name": "mlp", "options": {"max_depth": 2, "widths": [32, 64]}},
    "trainable": {"name": "torch", "options": {"epochs": 4}},
    "searcher": {"name": "tpe"},
    "scheduler": {"name": "asha", "options": {"grace_period": 1, "reduction_factor": 2}},
}


@pytest.fixture(scope="module")
def search(ray_local, tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    cfg = {
        **SMALL,
        "storage_path": str(root / "ray"),
        "tracking": {"uri": f"sqlite:///{root}/mlflow.db"},
    }
    return orchestrator.run(cfg, progress=False)


def _runs(result):
    client = MlflowClient(result.tracking_uri)
    runs = client.search_runs([result.experiment_id], max_results=1000)
    parent = [r for r in runs if r.data.tags.get("nasorch.role") == "search"]
    children = [r for r in runs if r.data.tags.get("nasorch.role") == "trial"]
    return client, parent, children


def test_returns_every_trial_and_the_best(search):
    df = search.trials
    assert len(df) == 6
    assert set(df["status"]) <= {"completed", "stopped_early"}
    assert (df["epochs"] >= 1).all() and (df["epochs"] <= 4).all()
    assert search.best is not None
    assert search.best["val_accuracy"] == df["val_accuracy"].max()
    assert (df["status"] == "completed").sum() >= 1


def test_parent_run_records_the_search(search):
    client, parents, children = _runs(search)
    assert len(parents) == 1
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["nasorch.searcher"] == "tpe"
    assert parent.data.tags["nasorch.scheduler"] == "asha"
    m = parent.data.metrics
    assert m["best_val_accuracy"] == pytest.approx(search.best["val_accuracy"])
    assert m["trials_completed"] + m["trials_stopped_early"] == 6
    assert m["trials_stopped_early"] == (search.trials["status"] == "stopped_early").sum()
    arts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"config.yaml", "leaderboard.csv", "leaderboard.md", "trials.csv"} <= arts
    # ... and next to Ray's results, where the README says they are
    for name in ("leaderboard.csv", "leaderboard.md", "trials.csv"):
        assert os.path.isfile(os.path.join(search.experiment_path, name)), name
    board = pd.read_csv(os.path.join(search.experiment_path, "leaderboard.csv"))
    assert board["val_accuracy"].iloc[0] == pytest.approx(search.best["val_accuracy"])
    exp = client.get_experiment(search.experiment_id)
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"


def test_child_runs_per_trial_with_curves(search):
    client, parents, children = _runs(search)
    assert len(children) == 6
    names = sorted(r.info.run_name for r in children)
    assert names[0].startswith("t001 mlp[")
    by_trial = {r.data.tags["nasorch.trial_id"]: r for r in children}
    for row in search.trials.itertuples():
        run = by_trial[row.trial_id]
        tags = run.data.tags
        assert tags["mlflow.parentRunId"] == parents[0].info.run_id
        assert tags["nasorch.status"] == row.status
        assert tags["nasorch.arch_hash"] == row.arch_hash
        assert json.loads(tags["nasorch.arch"])["layers"]
        assert tags["nasorch.node"]
        assert tags["nasorch.device"] == "cpu"  # what it trained on (no GPU here)
        assert run.data.metrics["cpu_utilization"] > 0  # per epoch, with the device
        assert run.data.params["arch.activation"] in ("relu", "tanh", "gelu")
        assert "arch.layers.0.width" in run.data.params
        history = client.get_metric_history(run.info.run_id, "val_accuracy")
        assert [h.step for h in sorted(history, key=lambda h: h.step)] == list(
            range(1, row.epochs + 1)
        )
        assert run.data.metrics["num_params"] == row.num_params > 0
        # the same value every epoch: logged once, not as a flat curve
        assert len(client.get_metric_history(run.info.run_id, "num_params")) == 1


def _surely_running(experiment_path: str) -> dict[str, tuple[float, float]]:
    """Trial folder -> a span of seconds in which the trial was certainly running, from the
    times the trial itself measured (Ray's per-result `timestamp`, whole seconds, and
    `time_total_s`): it ended at or after its last result's timestamp, and it started at least
    `time_total_s` before its true end, which is under that timestamp + 1."""
    spans = {}
    for path in sorted(glob.glob(os.path.join(experiment_path, "t*_*", "result.json"))):
        with open(path) as f:
            last = [json.loads(line) for line in f if line.strip()][-1]
        end = float(last["timestamp"])
        spans[os.path.basename(os.path.dirname(path))] = (end + 1 - last["time_total_s"], end)
    return spans


def test_trials_ran_concurrently(search):
    spans = _surely_running(search.experiment_path)
    assert len(spans) == 6
    overlapping = [
        (a, b)
        for a, (start_a, end_a) in spans.items()
        for b, (start_b, end_b) in spans.items()
        if a < b and max(start_a, start_b) < min(end_a, end_b)
    ]
    assert overlapping, spans


def test_best_model_is_logged_and_loads(search):
    import mlflow
    import mlflow.pytorch
    import torch

    from trainables.datasets import load

    mlflow.set_tracking_uri(search.tracking_uri)
    models = mlflow.search_logged_models(
        experiment_ids=[search.experiment_id], output_format="list"
    )
    assert [m.name for m in models] == ["best_model"]
    assert models[0].source_run_id == search.parent_run_id
    model = mlflow.pytorch.load_model(models[0].model_uri)
    data = load("digits")
    with torch.no_grad():
        pred = model(torch.from_numpy(data.x_val)).argmax(1).numpy()
    acc = float(np.mean(pred == data.y_val))
    assert acc == pytest.approx(search.best["val_accuracy"], abs=1e-6)


def test_user_function_trainable(ray_local, workdir):
    result = orchestrator.run(
        {
            "name": "user-fn",
            "metric": "score",
            "num_samples": 4,
            "search_space": {"name": "custom", "options": {"params": {"a": ["x", "yy", "zzz"]}}},
            "trainable": {"name": "tests.helpers:noop"},
            "searcher": {"name": "random"},
            "dedupe": False,  # three archs, four trials
        },
        progress=False,
    )
    assert len(result.trials) == 4
    assert (result.trials["status"] == "completed").all()
    assert (result.trials["epochs"] == 3).all()
    assert (workdir / "nasorch_results" / "mlflow.db").exists()


def test_same_seed_same_trials(ray_local, workdir):
    """Random search ignores timing, and each trial's seed derives from the config's seed."""
    cfg = {
        **SMALL,
        "name": "repro",
        "num_samples": 3,
        "searcher": {"name": "random"},
        "scheduler": {"name": "fifo"},
        "trainable": {"name": "torch", "options": {"epochs": 2}},
    }
    first = orchestrator.run(cfg, progress=False).trials
    second = orchestrator.run(cfg, progress=False).trials
    assert list(first["arch_hash"]) == list(second["arch_hash"])
    assert list(first["val_accuracy"]) == list(second["val_accuracy"])


def test_errored_trials_are_recorded_and_a_search_without_a_result_fails(ray_local, workdir):
    """Every trial failed: each is recorded with its error, and the search says so in one line
    (the first error and where its log is) instead of ending as if it had a best trial."""
    with pytest.raises(UserError) as failed:
        orchestrator.run(
            {
                "name": "failing",
                "metric": "score",
                "num_samples": 2,
                "search_space": {"name": "custom", "options": {"params": {"a": ["x", "y"]}}},
                "trainable": {"name": "tests.helpers:fails"},
            },
            progress=False,
        )
    message = str(failed.value)
    assert "\n" not in message
    assert message.startswith("no trial produced score: 2 of 2 trials failed; first error: ")
    assert "boom: this trial always fails" in message
    log = message.rsplit("(log: ", 1)[1].rstrip(")")
    assert "boom: this trial always fails" in open(log).read()
    client = MlflowClient(f"sqlite:///{workdir}/nasorch_results/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("failing").experiment_id])
    parents = [r for r in runs if r.data.tags.get("nasorch.role") == "search"]
    children = [r for r in runs if r.data.tags.get("nasorch.role") == "trial"]
    assert parents[0].info.status == "FAILED" and len(children) == 2
    assert parents[0].data.metrics["trials_errored"] == 2
    for run in children:
        assert run.info.status == "FAILED"
        assert run.data.tags["nasorch.status"] == "errored"
        text = client.download_artifacts(run.info.run_id, "error.txt", str(workdir))
        assert "boom: this trial always fails" in open(text).read()


def test_constraints_keep_big_networks_out(ray_local, workdir):
    result = orchestrator.run(
        {
            **SMALL,
            "name": "constrained",
            "num_samples": 4,
            "search_space": {"name": "mlp", "options": {"max_depth": 2, "widths": [16, 512]}},
            "trainable": {"name": "torch", "options": {"epochs": 1}},
            "searcher": {"name": "random"},
            "scheduler": {"name": "fifo"},
            "constraints": {"max_params": 5000},
        },
        progress=False,
    )
    assert len(result.trials) == 4
    assert (result.trials["num_params"] <= 5000).all()
    assert result.summary["candidates_rejected"] > 0
    client, parents, children = _runs(result)
    assert parents[0].data.metrics["candidates_rejected"] == result.summary["candidates_rejected"]
    for run in children:  # every trial carries its cost
        assert {"num_params", "flops", "latency_ms", "size_mb"} <= set(run.data.metrics)


def test_duplicates_are_not_trained_again(ray_local, workdir):
    result = orchestrator.run(
        {
            "name": "dupes",
            "metric": "score",
            "num_samples": 5,
            "search_space": {"name": "custom", "options": {"params": {"a": ["x", "yy"]}}},
            "trainable": {"name": "tests.helpers:noop"},
        },
        progress=False,
    )
    assert sorted(result.trials["arch"]) == ["a=x", "a=yy"]  # the space has two members
    assert result.summary["duplicates_reused"] > 0


def test_multi_objective_front(ray_local, workdir):
    result = orchestrator.run(
        {
            **SMALL,
            "name": "mo",
            "num_samples": 6,
            "trainable": {"name": "torch", "options": {"epochs": 1}},
            "searcher": {"name": "nsga2", "options": {"sampler_options": {"population_size": 4}}},
            "scheduler": {"name": "fifo"},
            "objectives": [{"metric": "num_params", "mode": "min"}],
        },
        progress=False,
    )
    front = pd.read_csv(f"{result.experiment_path}/pareto_front.csv")
    assert len(front) == result.summary["pareto_points"] >= 1
    # The front and its hypervolume recomputed from the search's own trials. The reference point
    # (orchestrator/frontier.py) is the worst value seen in each objective: the lowest accuracy
    # and the most parameters.
    done = result.trials[result.trials["status"] != "errored"]
    points = {
        row.trial: (float(row.val_accuracy), float(row.num_params)) for row in done.itertuples()
    }
    on_front = {
        t: (acc, n)
        for t, (acc, n) in points.items()
        if not any(a >= acc and m <= n and (a, m) != (acc, n) for a, m in points.values())
    }
    assert set(front["trial"]) == set(on_front)
    reference = (min(a for a, _ in points.values()), max(n for _, n in points.values()))
    expected = _dominated_area(list(on_front.values()), reference)
    assert expected > 0
    assert result.summary["hypervolume"] == pytest.approx(expected, rel=1e-9)
    client, parents, _ = _runs(result)
    arts = {a.path for a in client.list_artifacts(parents[0].info.run_id)}
    assert {"pareto_front.csv", "pareto_front.png"} <= arts
    assert "hypervolume" in parents[0].data.metrics


def _dominated_area(front: list[tuple[float, float]], reference: tuple[float, float]) -> float:
    """Area of (accuracy up, params down) dominated by `front` within `reference`, summed over
    the cells of the grid the points' coordinates draw (no sweep, unlike pareto.py)."""
    xs = sorted({reference[0], *(a for a, _ in front)})
    ys = sorted({reference[1], *(n for _, n in front)})
    area = 0.0
    for x0, x1 in zip(xs, xs[1:]):
        for y0, y1 in zip(ys, ys[1:]):
            if any(a >= x1 and n <= y0 for a, n in front):
                area += (x1 - x0) * (y1 - y0)
    return area


def test_single_objective_searchers_refuse_several_objectives():
    with pytest.raises(orchestrator.UserError, match="'rea' optimises one objective"):
        orchestrator.load_config(
            {**SMALL, "searcher": {"name": "rea"}, "objectives": [{"metric": "num_params"}]}
        )


def test_tabular_nb201_through_ray(ray_local, workdir):
    from trainables.tabular import Table

    result = orchestrator.run(
        ROOT / "examples" / "nb201_tabular.yaml",
        overrides=["num_samples=12", "searcher.name=rea"],
        progress=False,
    )
    table = Table.load()
    df = result.trials
    assert len(df) == 12 and (df["status"] == "completed").all()
    for row in df.itertuples():  # every reported value is the table's value for that cell
        assert row.test_accuracy == pytest.approx(table.lookup(row.arch))
    assert (df["num_params"] > 0).all()


def test_tabular_bad_table_fails_before_ray(capsys):
    from orchestrator.commands.cli import main

    code = main(
        [
            "run",
            str(ROOT / "examples" / "nb201_tabular.yaml"),
            "--set",
            "trainable.options.table=/nope.csv",
        ]
    )
    assert code == 2
    assert "trainable.options: table '/nope.csv' not found" in capsys.readouterr().err
