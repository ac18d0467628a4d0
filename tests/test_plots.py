"""Search plots: the pure drawing functions, and logging them from a real MLflow store."""

from __future__ import annotations

import logging
import math

import pandas as pd
import pytest
from mlflow.entities import Metric, RunTag
from mlflow.tracking import MlflowClient

from orchestrator.reporting import plots

PNG = b"\x89PNG\r\n\x1a\n"


def _is_png(path) -> bool:
    with open(path, "rb") as f:
        return f.read(8) == PNG


TRIALS = pd.DataFrame(
    {
        "trial": ["t001", "t002", "t003", "t004"],
        "status": ["completed", "stopped_early", "errored", "completed"],
        "score": [0.5, 0.3, None, 0.8],
        "epochs": [3, 1, 0, 3],
        "num_params": [1000, 200, None, 5000],
        "run_id": ["a", "b", "c", "d"],
    }
)


def test_best_so_far_keeps_the_best_and_skips_missing_values():
    assert plots.best_so_far([0.2, 0.1, math.nan, 0.4], "max") == [0.2, 0.2, 0.2, 0.4]
    assert plots.best_so_far([0.2, 0.1, 0.4], "min") == [0.2, 0.1, 0.1]
    first = plots.best_so_far([math.nan, 1.0], "max")
    assert math.isnan(first[0]) and first[1] == 1.0


def test_each_plot_writes_a_png(tmp_path):
    out = [
        plots.plot_best_so_far_trials(TRIALS, "score", "max", tmp_path / "a.png"),
        plots.plot_best_so_far_time(
            TRIALS, "score", "max", {"a": 2.0, "b": 3.0, "d": 9.0}, tmp_path / "b.png"
        ),
        plots.plot_learning_curves(
            {"t001": [(1, 0.2), (2, 0.4), (3, 0.5)], "t002": [(1, 0.3)], "t004": [(1, 0.5)]},
            {"t001": "completed", "t002": "stopped_early", "t004": "completed"},
            "score",
            tmp_path / "c.png",
            best="t004",
        ),
        plots.plot_tradeoff(TRIALS, "score", "max", tmp_path / "d.png"),
    ]
    assert all(_is_png(p) for p in out)


def test_empty_and_sizeless_searches_still_draw(tmp_path):
    empty = TRIALS.iloc[0:0]
    assert _is_png(plots.plot_best_so_far_trials(empty, "score", "max", tmp_path / "a.png"))
    assert _is_png(plots.plot_best_so_far_time(empty, "score", "max", {}, tmp_path / "b.png"))
    assert _is_png(plots.plot_learning_curves({}, {}, "score", tmp_path / "c.png"))
    same_size = TRIALS.assign(num_params=100)
    assert plots.plot_tradeoff(same_size, "score", "max", tmp_path / "d.png") is None


@pytest.fixture
def store(tmp_path):
    """A finished search written straight into a SQLite store: a parent and three trials."""
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.create_experiment("plots", artifact_location=(tmp_path / "art").as_uri())
    parent = client.create_run(exp, run_name="plots · random+asha").info.run_id
    trials = []
    for n, (status, curve) in enumerate(
        [("completed", [0.2, 0.4, 0.6]), ("stopped_early", [0.1]), ("completed", [0.3, 0.5, 0.7])],
        start=1,
    ):
        run = client.create_run(
            exp,
            run_name=f"t{n:03d} arch{n}",
            tags={"mlflow.parentRunId": parent, "nasorch.status": status},
        ).info.run_id
        metrics = [Metric("score", v, 1000 * step, step) for step, v in enumerate(curve, 1)]
        client.log_batch(run, metrics=metrics, tags=[RunTag("nasorch.epochs", str(len(curve)))])
        client.set_terminated(run)
        trials.append(
            {
                "trial": f"t{n:03d}",
                "status": status,
                "score": curve[-1],
                "run_id": run,
                "epochs": len(curve),
                "num_params": 100 * n,
            }  # fmt: skip
        )
    return client, exp, parent, pd.DataFrame(trials)


def test_log_search_plots_writes_and_logs_on_the_parent_run(store, tmp_path):
    client, exp, parent, trials = store
    files = plots.log_search_plots(client, parent, exp, trials, "score", "max", tmp_path / "out")
    names = sorted(p.rsplit("/", 1)[-1] for p in files)
    assert names == [
        "best_so_far_time.png", "best_so_far_trials.png", "learning_curves.png",
        "size_tradeoff.png",
    ]  # fmt: skip
    assert all(_is_png(p) for p in files)
    logged = sorted(a.path for a in client.list_artifacts(parent, "plots"))
    assert logged == [f"plots/{n}" for n in names]


def test_plots_never_fail_a_search(store, tmp_path, caplog):
    client, exp, parent, trials = store
    with caplog.at_level(logging.WARNING):
        files = plots.log_search_plots(client, "no-such-run", exp, trials, "score", "max", None)
    assert files == []
    assert "could not draw the search's plots" in caplog.text


@pytest.mark.parametrize("cap", [None, 1])
def test_a_search_draws_from_what_it_saw_exactly_what_mlflow_holds(
    ray_local, workdir, monkeypatch, cap
):
    """The final plots use the tracker's own copy of each curve instead of reading every child
    run back; that copy must be what MLflow holds. Past the cap on kept points (cap=1 here) the
    plots read MLflow back instead, and draw the same."""
    from pathlib import Path

    import orchestrator
    from orchestrator.tracking import mlflow_tracker

    drawn, read_back = {}, []
    draw, read = plots.plot_learning_curves, plots._read_back

    def capture(histories, statuses, metric, path, best=None):
        drawn.update(histories=dict(histories), statuses=dict(statuses))
        return draw(histories, statuses, metric, path, best)

    def counted(*args):
        read_back.append(args)
        return read(*args)

    monkeypatch.setattr(plots, "plot_learning_curves", capture)
    monkeypatch.setattr(plots, "_read_back", counted)
    if cap is not None:
        monkeypatch.setattr(mlflow_tracker, "MAX_CURVE_POINTS", cap)
    result = orchestrator.run(
        Path(__file__).parents[1] / "examples" / "nb201_tabular.yaml",
        overrides=["num_samples=6", "scheduler.name=asha"],
        progress=False,
    )
    assert len(read_back) == (0 if cap is None else 1)
    client = MlflowClient(result.tracking_uri)
    assert set(drawn["histories"]) == set(result.trials["trial"])
    metric = result.config.metric
    for row in result.trials.itertuples():
        stored = sorted((m.step, m.value) for m in client.get_metric_history(row.run_id, metric))
        assert drawn["histories"][row.trial] == stored and stored
        tags = client.get_run(row.run_id).data.tags
        assert drawn["statuses"][row.trial] == tags["nasorch.status"]
    logged = {a.path for a in client.list_artifacts(result.parent_run_id, "plots")}
    assert "plots/learning_curves.png" in logged
