import argparse
import csv
from pathlib import Path

import pytest

from orchestrator import bench
from orchestrator.errors import UserError
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
    src = Path(default_table_path())  # $NASORCH_NB201_TABLE or ../shared/data beside the repo
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
