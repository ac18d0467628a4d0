"""The simulated-time backend: curve sources, the candidate space, the engine's determinism, the
`nasorch simulate` command, and (integration) the simulator stopping the same trials at the
same epochs as a real Ray Tune search replaying the same curves."""

from __future__ import annotations

import math
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from orchestrator.simulation import build_source, simulate
from search_spaces import SEARCH_SPACES
from tests.conftest import ROOT
from tests.helpers import require
from trainables.curves import CurveError, TableCurves, data_path

EPOCHS = 9


def write_curves(path: Path, n: int = 14, seed: int = 0, time_column: str = "epoch_seconds"):
    """`n` configurations x EPOCHS epochs of crossing, saturating curves, in the documented
    format (param.<name> columns)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        final, speed = rng.uniform(50, 95), rng.uniform(0.3, 3.0)
        seconds, total = rng.uniform(5, 20), 0.0
        for epoch in range(1, EPOCHS + 1):
            total += seconds
            rows.append({
                "param.width": int(16 * (1 + i % 4)), "param.lr": float(10 ** -(1 + i % 3)),
                "param.kind": "abc"[i % 3] + str(i), "epoch": epoch,
                "val_accuracy": final * (1 - math.exp(-epoch / speed)),
                time_column: seconds if time_column == "epoch_seconds" else total,
            })  # fmt: skip
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_a_users_curves_define_the_candidates(tmp_path):
    source = TableCurves.load(write_curves(tmp_path / "c.csv"))
    assert source.max_epochs == EPOCHS and source.space.size() == 14
    keys = set(source.curves)
    rng = random.Random(0)
    for _ in range(50):  # sampling and mutating never leave the table
        arch = source.space.sample(rng)
        assert source.space.key(arch) in keys
        assert source.space.key(source.space.mutate(arch, rng)) in keys - {source.space.key(arch)}
    curve = source.curve(source.space.sample(rng))
    assert np.all(np.diff(curve.times) > 0) and len(curve.values) == EPOCHS
    # cumulative `time` instead of per-epoch seconds: the same curves
    again = TableCurves.load(write_curves(tmp_path / "t.csv", time_column="time"))
    arch = source.space.sample(random.Random(3))
    assert np.allclose(again.curve(arch).times, source.curve(arch).times)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda df: df.drop(columns=["epoch"]), "no column 'epoch'"),
        (lambda df: df.assign(val_accuracy="x"), "'val_accuracy' is not a number"),
        (lambda df: df[df.epoch != 4], "not 1..n"),
        (lambda df: df.drop(columns=[c for c in df if c.startswith("param.")]), "no 'arch'"),
    ],
)
def test_a_bad_curves_file_is_one_line(tmp_path, change, message):
    path = write_curves(tmp_path / "c.csv")
    change(pd.read_csv(path)).to_csv(path, index=False)
    with pytest.raises(CurveError, match=message) as e:
        TableCurves.load(path)
    assert "\n" not in str(e.value)


def test_the_nb201_curves_and_their_candidates():
    source = build_source("nb201")
    assert source.max_epochs == 200 and source.space.size() == 200
    assert math.isclose(source.best, 91.3653, abs_tol=1e-3)  # its README: the best cell's val
    assert source.regret(source.best) == 0 and source.regret(source.worst) == pytest.approx(1)


def test_the_lcbench_surrogate():
    require("onnxruntime", extra="bench")
    source = build_source("lcbench:3945")
    rng = random.Random(0)
    archs = [source.space.sample(rng) for _ in range(20)]
    curves = source.curves(archs)
    assert source.max_epochs == 50
    for c in curves:
        assert np.all(np.isfinite(c.values)) and np.all(np.diff(c.times) >= 0)
        assert 0 <= c.values.min() and c.values.max() <= 100
    assert np.allclose(source.curve(archs[0]).values, curves[0].values)  # batch = one at a time
    assert float(np.mean([c.values[-1] - c.values[0] for c in curves])) > 0  # they learn


def test_a_simulation_is_deterministic_and_asha_stops_trials(tmp_path):
    source = TableCurves.load(write_curves(tmp_path / "c.csv"))
    runs = [simulate(source, "random", "asha", workers=3, seed=4) for _ in range(2)]
    assert runs[0].stops == runs[1].stops and runs[0].trajectory == runs[1].trajectory
    assert runs[0].trials == 14  # every candidate once, then the gate ends the search
    epochs = {e for _, e, status in runs[0].stops if status == "stopped"}
    assert epochs and epochs <= {1, 3}  # ASHA's rungs at grace 1, reduction 3
    fifo = simulate(source, "random", "fifo", workers=3, seed=4)
    assert all(status == "completed" for _, _, status in fifo.stops)
    assert fifo.epochs > runs[0].epochs


def test_decision_cost_is_read_at_each_mark_for_the_trials_since_the_last():
    source = build_source("nb201")
    result = simulate(source, "guided", "asha", workers=8, seed=0, max_trials=60,
                      cost_marks=(20, 60))  # fmt: skip
    assert [n for n, _ in result.cost_at] == [20, 60]
    assert all(cost > 0 for _, cost in result.cost_at)
    total = result.cpu["searcher"] + result.cpu["scheduler"]
    # 20 trials at the first cost, 40 at the second: the decision CPU up to the last mark, which
    # is most of it (after it only the running trials' last epochs are decided)
    spent = 20 * result.cost_at[0][1] + 40 * result.cost_at[1][1]
    assert 0.5 * total < spent <= total + 1e-9


def test_a_warm_started_simulation_tries_its_seeds_first_and_keeps_its_record():
    source = build_source("nb201")
    cold = simulate(source, "guided", "asha", workers=2, seed=1, max_trials=20, keep_trials=True)
    assert len(cold.ended) == 20
    best = sorted(cold.ended, key=lambda e: -e[1])[:3]
    assert all(e[3] == (e[2] == source.max_epochs) for e in cold.ended)  # complete = all epochs
    seeds = [arch for arch, *_ in best]
    warm = simulate(source, "guided", "asha", workers=2, seed=1, max_trials=20, seeds=seeds,
                    keep_trials=True)  # fmt: skip
    assert [arch for arch, *_ in warm.ended[:3]] == seeds


@pytest.mark.parametrize("combo", ["tpe+asha", "rungs+asha", "guided+asha", "random+hyperband",
                                   "random+curve", "random+median"])  # fmt: skip
def test_every_combination_runs_inside_the_table(tmp_path, combo):
    source = TableCurves.load(write_curves(tmp_path / "c.csv"))
    searcher, _, scheduler = combo.partition("+")
    result = simulate(source, searcher, scheduler, workers=2, seed=1)
    assert result.trials == 14 and result.trajectory


def test_rungs_learns_from_every_epoch(tmp_path):
    from orchestrator.searchers.rungs import RungGuidedSearch

    source = TableCurves.load(write_curves(tmp_path / "c.csv", n=40))
    strategy = RungGuidedSearch(source.space, seed=0, num_init=3, min_points=3)
    asked = [strategy.ask() for _ in range(6)]
    for arch in asked:
        for epoch, value in enumerate(source.curve(arch).values[:3], start=1):
            strategy.observe(arch, epoch, value)
    assert strategy.fidelity() == 3
    assert len(strategy.at(3)) == 6
    fitted, propose = [], strategy.guide.propose
    strategy.guide.propose = lambda done, pool, *rest: (
        fitted.append(done) or propose(done, pool, *rest)
    )
    arch = strategy.ask()  # proposes from the model at epoch 3, a cell not asked before
    assert [sorted(v for _, v in done) for done in fitted] == [
        sorted(float(source.curve(a).values[2]) for a in asked)
    ]
    source.space.validate(arch)
    assert source.space.key(arch) not in {source.space.key(a) for a in asked}


@pytest.mark.integration  # starts the command line in a process
def test_simulate_command(tmp_path):
    curves = write_curves(tmp_path / "c.csv")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "orchestrator.commands.cli", "simulate", "--source", str(curves),
           "--combos", "random+asha,rungs+asha", "--workers", "1,4", "--seeds", "2",
           "--processes", "1", "--out", str(out)]  # fmt: skip
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 2 * 2 * 2 and set(runs.combo) == {"random+asha", "rungs+asha"}
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary.budget) == {"early", "middle", "late"}
    assert summary.mean_rank.between(1, 2).all()
    assert (out / "regret_c_w4.png").stat().st_size > 1000
    assert len(pd.read_csv(out / "trajectory.csv")) > 0 and len(pd.read_csv(out / "rungs.csv"))
    bad = subprocess.run([*cmd[:4], "--combos", "random+nope"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--combos" in bad.stderr


@pytest.mark.parametrize("scheduler", ["pbt", "pb2"])
def test_population_schedulers_are_refused_in_one_line(tmp_path, scheduler):
    """PBT and PB2 pause, save and restart trials: hooks the simulated controller lacks (they
    failed with an AttributeError deep in Ray)."""
    import argparse

    from orchestrator.core.errors import UserError
    from orchestrator.simulation import study

    source = TableCurves.load(write_curves(tmp_path / "c.csv"))
    with pytest.raises(UserError) as e:
        simulate(source, "random", scheduler, workers=2, seed=1)
    assert "\n" not in str(e.value) and f"'{scheduler}' cannot be simulated" in str(e.value)
    assert "allowed: fifo, asha" in str(e.value) and "pbt" not in str(e.value).split("allowed")[1]
    with pytest.raises(UserError, match=f"--combos: 'random\\+{scheduler}'"):
        study.parse(argparse.Namespace(combos=f"random+{scheduler}"))


def test_the_table_space_and_curve_trainable_check_their_options(tmp_path):
    from orchestrator.core.errors import UserError
    from orchestrator.execution.components import load_config

    curves = write_curves(tmp_path / "c.csv")
    space = SEARCH_SPACES["table"](str(curves))
    assert space.size() == 14
    cfg = {
        "name": "x", "metric": "val_accuracy",
        "search_space": {"name": "table", "options": {"path": str(curves)}},
        "trainable": {"name": "curve", "options": {"path": str(curves), "epochs": EPOCHS + 1}},
    }  # fmt: skip
    with pytest.raises(UserError, match="epochs must be between 1 and 9"):
        load_config(cfg)


@pytest.mark.integration
def test_one_worker_simulation_matches_a_real_ray_run(ray_local, tmp_path):
    """The simulator is Ray Tune's decisions, not an imitation of them: with one worker, the
    simulated search and a real one replaying the same curves stop the same trials at the same
    epochs."""
    import orchestrator

    curves = write_curves(tmp_path / "c.csv", n=14, seed=2)
    source = TableCurves.load(curves)
    for scheduler in ("asha", "median"):
        simulated = simulate(source, "random", scheduler, workers=1, seed=3)
        cfg = {
            "name": f"fidelity-{scheduler}", "metric": "val_accuracy", "num_samples": 14,
            "max_concurrent_trials": 1, "seed": 3,
            "search_space": {"name": "table", "options": {"path": str(curves)}},
            "trainable": {"name": "curve", "options": {"path": str(curves), "epochs": EPOCHS}},
            "searcher": {"name": "random"},
            "scheduler": {"name": scheduler, "options": {
                "asha": {"grace_period": 1, "reduction_factor": 3},
                "median": {"grace_period": 1}}[scheduler]},
            "storage_path": str(tmp_path / "ray"),
            "tracking": {"uri": f"sqlite:///{tmp_path}/mlflow.db"},
        }  # fmt: skip
        real = orchestrator.run(cfg, progress=False)
        numbers = [int(str(t).lstrip("t")) for t in real.trials["trial"]]
        real_stops = sorted(zip(numbers, real.trials["epochs"].astype(int), strict=True))
        sim_stops = sorted((n, e) for n, e, _ in simulated.stops)
        assert real_stops == sim_stops, scheduler
        assert any(e < EPOCHS for _, e in sim_stops), scheduler  # the scheduler did stop some


def test_data_path_honours_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("NASORCH_DATA", str(tmp_path))
    assert data_path("x.csv") == tmp_path / "x.csv"


@pytest.mark.integration  # starts the benchmark script in processes
def test_the_benchmark_grid_runs_and_merges_parts_split_by_first_seed(tmp_path):
    """`benchmarks/simulated.py` builds its grid with `nasorch simulate`'s own options (every
    one of them, defaults included), and `--merge` joins two parts of a grid split with
    `--first-seed` into one table over the cells every combination ran."""
    script = [sys.executable, str(ROOT / "benchmarks" / "simulated.py")]
    bench = subprocess.run(
        [*script, "--workers", "4", "--tasks", "", "--max-trials", "20", "--processes", "1",
         "--seeds", "1", "--skip", "cost", "--out", str(tmp_path / "a")],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert bench.returncode == 0, bench.stderr[-2000:]
    assert "CPU-hours in all" in bench.stdout
    part = subprocess.run(  # the grid's second part: seed 1, every combination
        [sys.executable, "-m", "orchestrator.commands.cli", "simulate", "--source", "nb201",
         "--workers", "4", "--seeds", "1", "--first-seed", "1", "--max-trials", "20",
         "--no-plots", "--out", str(tmp_path / "b")],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert part.returncode == 0, part.stderr[-2000:]
    merged = subprocess.run(
        [*script, "--merge", str(tmp_path / "a"), str(tmp_path / "b")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert merged.returncode == 0, merged.stderr[-2000:]
    assert "all (2 source x workers x seed cells" in merged.stdout
    assert "fidelity+asha" in merged.stdout and "CPU-hours in all" in merged.stdout
