import csv

import pytest

from orchestrator.core.pareto import (
    dominates,
    hypervolume_2d,
    pareto_front,
    plot_front_png,
    write_front_csv,
)


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
    plot_front_png(
        tmp_path / "f.png",
        {"x": [(10, 90), (20, 92)]},
        ["params", "acc"],
        reference_front=[(5, 91)],
    )
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"
