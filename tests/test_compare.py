"""`nasorch compare` on two real searches (random and TPE on the same space), read back from
their MLflow store only."""

from __future__ import annotations

import argparse

import pandas as pd
import pytest

import orchestrator
from orchestrator.commands import compare
from orchestrator.commands.cli import main
from orchestrator.core.errors import UserError
from orchestrator.tracking.session import existing_client

SPACE = {"name": "custom", "options": {"params": {"a": ["x", "yy", "zzz"], "b": [1, 22, 333]}}}


@pytest.fixture(scope="module")
def searches(ray_local, tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    uri = f"sqlite:///{root}/mlflow.db"
    results = [
        orchestrator.run(
            {
                "name": "cmp",
                "metric": "score",
                "num_samples": 4,
                "seed": 3,
                "search_space": SPACE,
                "trainable": {"name": "tests.helpers:noop"},
                "searcher": {"name": searcher},
                "storage_path": str(root / "ray"),
                "tracking": {"uri": uri},
            },
            progress=False,
        )
        for searcher in ("random", "tpe")
    ]
    return uri, results


def _args(uri, refs, out, **kw) -> argparse.Namespace:
    return argparse.Namespace(
        searches=refs, tracking_uri=uri, metric=kw.get("metric"), mode=kw.get("mode"), out=str(out)
    )


def test_compare_an_experiment_prints_and_saves_every_search(searches, tmp_path, capsys):
    uri, results = searches
    assert compare.execute(_args(uri, ["cmp"], tmp_path)) == 0
    table = pd.read_csv(tmp_path / "comparison.csv")
    assert list(table["searcher"]) == ["random", "tpe"]
    assert list(table["run_id"]) == [r.parent_run_id for r in results]
    for row, result in zip(table.itertuples(), results):
        assert row.trials == 4
        assert row.best_score == pytest.approx(result.best["score"])
        assert row.best_trial == result.best["trial"]
        assert row.total_epochs == result.trials["epochs"].sum()
        assert 0 < row.time_to_best_s <= row.wall_time_s
        assert row.accelerator_hours == 0  # CPU: resources.gpu = 0
    assert (tmp_path / "comparison.png").read_bytes()[:4] == b"\x89PNG"
    printed = capsys.readouterr().out
    assert "| search" in printed and "best score" in printed and "tpe+fifo" in printed
    assert "accelerator hours are 0" in printed
    assert (tmp_path / "comparison.md").read_text().startswith("| search")


def test_compare_parent_runs_by_id_in_the_order_given_with_another_mode(searches, tmp_path):
    uri, results = searches
    ids = [r.parent_run_id for r in reversed(results)]
    compare.execute(_args(uri, ids, tmp_path, metric="score", mode="min"))
    table = pd.read_csv(tmp_path / "comparison.csv")
    assert list(table["searcher"]) == ["tpe", "random"]
    worst = [r.trials["score"].min() for r in reversed(results)]
    assert list(table["best_score"]) == pytest.approx(worst)


def _plotted(ax, gid: str) -> list[float]:
    """The x values of the scatter drawn with `gid` on `ax`."""
    (points,) = [c for c in ax.collections if c.get_gid() == gid]
    return [float(x) for x, _ in points.get_offsets()]


def test_plot_shows_every_trial_and_the_best_per_search(searches):
    uri, results = searches
    client = existing_client(uri, field="--tracking-uri")
    parents = compare.resolve_searches(client, ["cmp"], uri)
    ax = compare.comparison_figure([compare.summarize(client, p) for p in parents]).axes[0]
    for row, result in enumerate(results):
        assert sorted(_plotted(ax, f"trials-{row}")) == sorted(result.trials["score"])
        assert _plotted(ax, f"best-{row}") == [pytest.approx(result.best["score"])]


def test_plot_does_not_blow_up_a_small_gap_between_the_bests():
    """Two searches whose bests differ by one validation image in 360 (0.0028) while their
    trials range from 0.13 to 0.95: the gap must look small, not fill half the axis."""

    def summary(name, values):
        return {
            "searcher": name,
            "scheduler": "fifo",
            "metric": "val_accuracy",
            "mode": "max",
            "best": max(values),
            "curve": [(float(i), v) for i, v in enumerate(values, 1)],
        }

    searches = [summary("random", [0.40, 0.9472, 0.74, 0.13]), summary("tpe", [0.9444, 0.91])]
    ax = compare.comparison_figure(searches).axes[0]
    low, high = ax.get_xlim()
    assert low <= 0.13 and high >= 0.9472  # every trial is on the axis
    assert (0.9472 - 0.9444) / (high - low) < 0.01
    assert not ax.patches  # dots, no bars whose length would depend on where the axis starts
    assert _plotted(ax, "trials-0") == [0.40, 0.9472, 0.74, 0.13]
    assert _plotted(ax, "best-1") == [0.9444]


def test_bad_input_is_one_line_and_exit_2(searches, tmp_path, capsys):
    uri, _ = searches
    with pytest.raises(UserError, match="nope: no experiment or search run"):
        compare.execute(_args(uri, ["nope"], tmp_path))
    with pytest.raises(UserError, match="no MLflow store"):
        compare.execute(_args(f"sqlite:///{tmp_path}/missing.db", ["cmp"], tmp_path))
    code = main(["compare", "cmp", "--tracking-uri", "http://127.0.0.1:9", "--out", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("nasorch: error: --tracking-uri: MLflow server at http://127.0.0.1:9")
    assert "\n" not in err


def test_ui_points_at_the_newest_search(searches):
    uri, results = searches
    url = compare.newest_search_url(uri, "http://127.0.0.1:5000")
    assert url == (
        f"http://127.0.0.1:5000/#/experiments/{results[-1].experiment_id}/runs"
        "?workflowType=machine_learning"
    )
    assert compare.newest_search_url("sqlite:////nonexistent/x.db", "http://h") is None
