"""`nasorch compare` on two real searches (random and TPE on the same space), read back from
their MLflow store only."""

from __future__ import annotations

import argparse

import pandas as pd
import pytest

import orchestrator
from orchestrator import compare
from orchestrator.cli import main
from orchestrator.errors import UserError

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
