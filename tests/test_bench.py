import argparse
import csv
from pathlib import Path

import pytest

from orchestrator.commands import bench
from orchestrator.core.errors import UserError
from trainables.tabular import default_table_path


def run(tmp_path, *extra):
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    args = parser.parse_args(["--out", str(tmp_path), "--workers", "1", *extra])
    return bench.execute(args)


def test_small_bench_writes_results_summary_and_plot(tmp_path, capsys):
    assert (
        run(tmp_path, "--searchers", "random,rea,local,guided", "--budget", "30", "--seeds", "2")
        == 0
    )
    with open(tmp_path / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["searcher", "seed", "evaluations", "best"]
    assert len(rows) == 4 * 2 * 30
    for name in ("random", "rea", "local", "guided"):
        curve = [float(r["best"]) for r in rows if r["searcher"] == name and r["seed"] == "0"]
        assert len(curve) == 30 and curve == sorted(curve)  # best-so-far never drops
    with open(tmp_path / "summary.csv") as f:
        summary = list(csv.DictReader(f))
    assert {(r["searcher"], r["evaluations"]) for r in summary} >= {("rea", "25"), ("rea", "30")}
    assert (tmp_path / "best_so_far.png").read_bytes()[:4] == b"\x89PNG"
    out = capsys.readouterr().out
    assert "mean +/- std over 2 seeds" in out and "guided" in out


def test_seeded_runs_are_reproducible(tmp_path):
    run(tmp_path / "a", "--searchers", "rea,tpe", "--budget", "15", "--seeds", "2")
    run(tmp_path / "b", "--searchers", "rea,tpe", "--budget", "15", "--seeds", "2")
    assert (tmp_path / "a/results.csv").read_text() == (tmp_path / "b/results.csv").read_text()


def test_other_table_min_mode_and_pareto(tmp_path):
    src = Path(default_table_path())  # $NASORCH_DATA or ../shared/data beside the repo
    lines = src.read_text().splitlines()
    table = tmp_path / "error.csv"
    # Another "dataset" of the same space: error instead of accuracy, under another column name.
    table.write_text(
        "arch,error\n"
        + "\n".join(f"{a},{100 - float(v)}" for a, v in (ln.rsplit(",", 1) for ln in lines[1:]))
    )
    out = tmp_path / "out"
    assert (
        run(
            out,
            "--table",
            str(table),
            "--metric-column",
            "error",
            "--mode",
            "min",
            "--searchers",
            "local,nsga2",
            "--budget",
            "20",
            "--seeds",
            "2",
            "--objective2",
            "num_params",
        )
        == 0
    )
    with open(out / "pareto_front.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows and set(rows[0]) == {"searcher", "seed", "arch", "error", "num_params"}
    assert (out / "pareto_front.png").exists()
    with open(out / "results.csv") as f:
        best = [float(r["best"]) for r in csv.DictReader(f)]
    assert min(best) >= 100 - 94.3734


@pytest.mark.parametrize(
    "extra, fragment",
    [
        (["--searchers", "random,bogus"], "--searchers: unknown searcher 'bogus'; allowed: "),
        (["--budget", "0"], "--budget"),
        (["--seeds", "0"], "--seeds"),
        (["--mode", "up"], "--mode"),
        (["--table", "/nonexistent/t.csv"], "not found"),
        (["--metric-column", "acc"], "no column 'acc'"),
        (["--objective2", "latency"], "--objective2: 'latency' is not offered"),
        (["--space-options", '{"C": 0}'], "--space-options"),
    ],
)
def test_bad_input_is_a_one_line_user_error(tmp_path, extra, fragment):
    with pytest.raises(UserError, match=fragment.replace("(", r"\(")) as info:
        run(tmp_path, *extra)
    assert "\n" not in str(info.value)


def test_bench_and_a_one_worker_simulate_of_the_same_table_give_the_same_curves(tmp_path):
    """One driver: `nasorch bench` of a table and `nasorch simulate` of the same rows as curves
    of one epoch, on one worker, find the same best so far after every evaluation, per seed
    (simulate's trajectory: the best at each improvement, by epochs spent)."""
    import random

    from orchestrator.simulation import study
    from search_spaces import NB201Space

    rng, space, rows = random.Random(1), NB201Space(), {}
    while len(rows) < 60:
        arch = space.sample(rng)
        rows[space.key(arch)] = arch["edges"].count("nor_conv_3x3") + rng.random()
    table = tmp_path / "t.csv"
    table.write_text(
        "arch,val_accuracy,epoch,time\n" + "".join(f"{k},{v},1,1\n" for k, v in rows.items())
    )
    searchers, budget, seeds = ["rea", "local", "tpe"], 25, 2
    space_options = f'{{"path": "{table}", "space": "nb201"}}'
    common = ["--searchers", ",".join(searchers), "--budget", str(budget), "--seeds", str(seeds)]
    bench_args = ["--table", str(table), "--metric-column", "val_accuracy", "--space", "table"]
    run(tmp_path / "bench", *bench_args, "--space-options", space_options, *common)
    parser = argparse.ArgumentParser()
    study.add_arguments(parser)
    combos = ",".join(f"{s}+fifo" for s in searchers)
    study.execute(parser.parse_args([
        "--source", f"{table}:nb201", "--combos", combos, "--workers", "1", "--seeds",
        str(seeds), "--budget", str(budget), "--processes", "1", "--no-plots",
        "--out", str(tmp_path / "sim"),
    ]))  # fmt: skip
    with open(tmp_path / "bench/results.csv") as f:
        benched = [(r["searcher"], int(r["seed"]), float(r["best"])) for r in csv.DictReader(f)]
    with open(tmp_path / "sim/trajectory.csv") as f:
        marks = [(r["combo"], int(r["seed"]), int(r["epochs"]), float(r["best"]))
                 for r in csv.DictReader(f)]  # fmt: skip
    for name in searchers:
        for seed in range(seeds):
            curve = [b for s, k, b in benched if s == name and k == seed]
            mine = sorted((e, b) for c, k, e, b in marks if c == f"{name}+fifo" and k == seed)
            simulated = [max((b for e, b in mine if e <= n), default=None) for n in
                         range(1, budget + 1)]  # fmt: skip
            assert len(curve) == budget and curve == simulated, (name, seed)
    assert (
        len({tuple(b for s, k, b in benched if s == "rea" and k == seed) for seed in range(seeds)})
        == seeds
    )  # the seeds differ: the comparison is not vacuous
