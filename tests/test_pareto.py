import csv

import pandas as pd
import pytest

from orchestrator.core.pareto import dominates, hypervolume_2d, pareto_front
from orchestrator.reporting.frontier import plot_fronts, write_front, write_front_csv


def test_dominates_respects_modes():
    assert dominates((2, 1), (1, 2), ["max", "min"])
    assert not dominates((2, 1), (1, 2), ["min", "min"])
    assert not dominates((1, 1), (1, 1), ["max", "min"])


def test_front_max_accuracy_min_params():
    pts = [(90, 10), (92, 20), (91, 30), (94, 50), (94, 60), (80, 5), (92, 20)]
    front = pareto_front(pts, ["max", "min"])
    assert sorted(front) == [0, 1, 3, 5, 6]  # duplicates of a front point are kept
    assert front[0] == 3  # best first objective first


def test_front_both_min_and_both_max():
    pts = [(1, 5), (2, 2), (5, 1), (3, 3), (6, 6)]
    assert sorted(pareto_front(pts, ["min", "min"])) == [0, 1, 2]
    assert sorted(pareto_front(pts, ["max", "max"])) == [4]


def test_hypervolume_2d():
    # min/min: points (1,3), (2,2), (3,1) with reference (4,4): 3 + 2 + 1 = 6
    assert hypervolume_2d([(1, 3), (2, 2), (3, 1)], (4, 4), ["min", "min"]) == pytest.approx(6)
    # a dominated point and a point outside the reference add nothing
    assert hypervolume_2d([(1, 3), (2, 2), (3, 1), (3, 3), (5, 0)], (4, 4), ["min", "min"]) == 6
    # max accuracy / min params, same geometry mirrored on the first axis
    assert hypervolume_2d([(-1, 3), (-2, 2), (-3, 1)], (-4, 4), ["max", "min"]) == pytest.approx(6)
    assert hypervolume_2d([], (4, 4), ["min", "min"]) == 0.0
    with pytest.raises(ValueError):
        hypervolume_2d([(1, 2, 3)], (4, 4, 4), ["min"] * 3)
    with pytest.raises(ValueError):
        pareto_front([(1, 2)], ["up", "min"])


def test_write_and_plot(tmp_path):
    rows = [{"arch": "a", "acc": 90.0, "params": 10}, {"arch": "b", "acc": 92.0, "params": 20}]
    write_front_csv(tmp_path / "f.csv", rows, ["arch", "acc", "params"])
    with open(tmp_path / "f.csv") as f:
        assert list(csv.DictReader(f))[1] == {"arch": "b", "acc": "92.0", "params": "20"}
    plot_fronts(
        tmp_path / "f.png",
        {"x": [(10, 90), (20, 92)]},
        ["params", "acc"],
        ["min", "max"],
        reference_front=[(5, 91)],
    )
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"


def test_a_search_front_is_written_once_by_reporting(tmp_path):
    trials = pd.DataFrame(
        {
            "trial": ["t000", "t001", "t002", "t003"],
            "acc": [0.9, 0.8, 0.95, 0.99],
            "params": [10.0, 20.0, 30.0, 5.0],
            "status": ["completed", "completed", "completed", "errored"],
            "run_id": ["r0", None, "r2", "r3"],
        }
    )
    metrics, paths = write_front(trials, ["acc", "params"], ["max", "min"], str(tmp_path))
    assert metrics["pareto_points"] == 2  # t001 is dominated by t000; t003 errored
    # reference: the worst seen (0.8, 30): t002 adds (0.95-0.8)*(30-30)=0, t000 (0.9-0.8)*20
    assert metrics["hypervolume"] == pytest.approx(2.0)
    with open(paths[0]) as f:
        rows = list(csv.DictReader(f))
    assert [r["trial"] for r in rows] == ["t002", "t000"]
    assert rows[0]["run_id"] == "r2"
    assert paths[1].endswith(".png") and open(paths[1], "rb").read(4) == b"\x89PNG"


def test_core_pareto_draws_nothing():
    """Core stays pure: the plot and the CSV are reporting's (not even a lazy matplotlib)."""
    import ast
    from pathlib import Path

    import orchestrator.core.pareto as core

    tree = ast.parse(Path(core.__file__).read_text())
    imported = {
        a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
    } | {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not imported & {"matplotlib", "csv", "pandas"}
