"""Warm start from the MLflow record: fingerprints, the plan, the gate's answers, the adapter's
seeds, and real searches that learn from earlier ones on a SQLite store and a tracking server."""

from __future__ import annotations

import json
import random
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from orchestrator.core import tags as T
from orchestrator.core.gate import Gate
from orchestrator.searchers import STRATEGIES
from orchestrator.searchers.tune_adapter import StrategySearcher
from orchestrator.warm_start.fingerprint import fingerprint
from orchestrator.warm_start.plan import PastTrial, WarmStart
from search_spaces import NB201Space
from trainables.tabular import default_table_path

SPACE = {"name": "nb201", "options": {}}


def test_fingerprint_ignores_speed_and_separates_the_data_from_the_recipe():
    base = fingerprint("torch", {"dataset": "digits", "epochs": 5, "threads": 1}, SPACE, "acc")
    faster = fingerprint("torch", {"dataset": "digits", "epochs": 5, "threads": 4}, SPACE, "acc")
    other_data = fingerprint("torch", {"dataset": "cifar10", "epochs": 5}, SPACE, "acc")
    longer = fingerprint("torch", {"dataset": "digits", "epochs": 9}, SPACE, "acc")
    opts = {"dataset": "digits", "epochs": 5}
    wider = fingerprint("torch", opts, {"name": "nb201", "options": {"C": 16}}, "acc")
    assert base == faster
    assert other_data.full != base.full and other_data.recipe == base.recipe
    for changed in (longer, wider, fingerprint("torch", opts, SPACE, "loss")):
        assert changed.full != base.full and changed.recipe != base.recipe


def _past(space, rng, n, *, fp="A", recipe="R", complete=True, base=0.0) -> list[PastTrial]:
    out = []
    for _ in range(n):
        arch = space.sample(rng)
        out.append(
            PastTrial(arch, space.key(arch), base + rng.random(), 3 if complete else 1,
                      complete, fp, recipe, run_id=f"run{len(out)}")
        )  # fmt: skip
    return out


def test_the_plan_tells_its_own_past_answers_complete_trials_and_seeds_related_ones():
    space, rng = NB201Space(), random.Random(0)
    here = fingerprint("tabular", {"table": "a.csv"}, SPACE, "acc")
    own = _past(space, rng, 6, fp=here.full, recipe=here.recipe)
    stopped = _past(space, rng, 2, fp=here.full, recipe=here.recipe, complete=False)
    related = _past(space, rng, 8, fp="other-data", recipe=here.recipe, base=10.0)
    unrelated = _past(space, rng, 4, fp="x", recipe="other-recipe", base=100.0)
    plan = WarmStart.plan(own + stopped + related + unrelated, here, mode="max", top_k=3)
    assert [p.key for p in plan.told] == [p.key for p in own + stopped]
    assert set(plan.answers) == {p.key for p in own}  # a stopped trial is retrained if proposed
    best_related = sorted(related, key=lambda p: -p.value)[:3]
    assert plan.seeds == [p.arch for p in best_related]  # never the unrelated recipe's
    assert WarmStart.plan(related + unrelated, here, mode="max", transfer="all", top_k=1).seeds == [
        max(unrelated, key=lambda p: p.value).arch
    ]
    assert WarmStart.plan(related, here, mode="max", transfer="off").seeds == []
    assert WarmStart.plan(own, here, mode="max", reuse=False).told == []
    low = WarmStart.plan(related, here, mode="min", top_k=1).seeds
    assert low == [min(related, key=lambda p: p.value).arch]


class Recorder:
    """A strategy stand-in that remembers what it was told, in order."""

    def __init__(self):
        self.events = []

    def observe(self, arch, epoch, value):
        self.events.append(("observe", epoch, value))

    def tell(self, arch, value):
        self.events.append(("tell", value))


def test_priming_tells_a_stopped_trial_as_a_live_search_would():
    space, rng = NB201Space(), random.Random(1)
    here = fingerprint("tabular", {}, SPACE, "acc")
    (done,) = _past(space, rng, 1, fp=here.full, recipe=here.recipe)
    (stopped,) = _past(space, rng, 1, fp=here.full, recipe=here.recipe, complete=False)
    recorder = Recorder()
    assert WarmStart.plan([done, stopped], here, mode="max").prime(recorder) == 2
    assert recorder.events == [
        ("tell", done.value),
        ("observe", 1, stopped.value),
        ("tell", stopped.value),
    ]


def test_a_recorded_answer_is_used_once_then_counts_as_a_duplicate_and_survives_resume():
    space = NB201Space()
    arch = space.sample(random.Random(2))
    gate = Gate(space)
    gate.record = {space.key(arch): {"value": 91.5, "run_id": "r1", "epochs": 200, "metrics": {}}}
    verdict = gate.check(arch)
    assert (verdict.run, verdict.value, verdict.reason) == (False, 91.5, "reused")
    assert verdict.source["run_id"] == "r1"
    restored = Gate(space)
    restored.load_state(json.loads(json.dumps(gate.state())))
    assert restored.check(arch).reason == "duplicate"
    assert restored.summary()["trials_reused"] == 1.0


def test_the_adapter_suggests_seeds_first_and_reports_each_reuse():
    space = NB201Space()
    rng = random.Random(3)
    strategy = STRATEGIES["random"](space, seed=0)
    answered = strategy.ask()  # what the searcher's first proposal will be
    strategy = STRATEGIES["random"](space, seed=0)
    gate = Gate(space)
    source = {"value": 90.0, "run_id": "r9", "epochs": 1, "metrics": {"acc": 90.0}}
    gate.record = {space.key(answered): source}
    adapter = StrategySearcher(
        strategy, metric="acc", mode="max", base_config={"trainable_options": {}}, gate=gate
    )
    seeds = [space.sample(rng) for _ in range(2)]
    adapter.seeds = list(seeds)
    heard = []
    adapter.on_reuse = lambda number, config, source: heard.append((number, config, source))
    configs = [adapter.suggest(f"t{i}") for i in range(3)]
    assert [c["arch"] for c in configs[:2]] == seeds
    assert configs[2]["arch"] != answered  # answered from the record, not trained
    (number, config, source), = heard  # fmt: skip
    assert number == 3 and config["arch"] == answered and source["run_id"] == "r9"
    assert configs[2]["trial_number"] == 4  # the reused trial holds number 3
    restored = StrategySearcher(
        STRATEGIES["random"](space, seed=0), metric="acc", mode="max", base_config={},
        gate=Gate(space),
    )  # fmt: skip
    restored.set_state(json.loads(json.dumps(adapter.get_state())))
    assert restored.seeds == [] and restored.next_number == 5


# ---- real searches ------------------------------------------------------------------------


def _config(uri: str, trials: int, **extra) -> dict:
    return {
        "name": "warm",
        "metric": "test_accuracy",
        "num_samples": trials,
        "max_concurrent_trials": 2,
        "seed": 0,
        "search_space": {"name": "nb201"},
        "trainable": {"name": "tabular", "options": {"table": default_table_path()}},
        "searcher": {"name": "random"},
        "tracking": {"uri": uri},
        **extra,
    }


def _children(runs: list[dict], parent: str) -> list[dict]:
    return [r for r in runs if _tags(r).get("mlflow.parentRunId") == parent]


def _tags(run: dict) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run["data"].get("tags", [])}


def _check_second_search(runs: list[dict], first, second, n_first: int, n_second: int) -> None:
    """The second search trained none of the first's architectures; it has a reused run, linked
    to its source, for each one it proposed again (the same seed proposes them all again)."""
    a = {_tags(r)[T.ARCH_HASH]: r["info"]["run_id"] for r in _children(runs, first.parent_run_id)}
    kids = _children(runs, second.parent_run_id)
    reused = [r for r in kids if _tags(r)[T.STATUS] == "reused"]
    trained = [r for r in kids if _tags(r)[T.STATUS] != "reused"]
    assert len(a) == n_first and len(trained) == n_second and len(reused) == n_first
    assert not {_tags(r)[T.ARCH_HASH] for r in trained} & set(a)  # nothing trained twice
    for r in reused:
        assert a[_tags(r)[T.ARCH_HASH]] == _tags(r)[T.REUSED_FROM]
        assert r["info"]["status"] == "FINISHED"
    assert all(r["info"]["status"] != "RUNNING" for r in runs)
    parent = next(r for r in runs if r["info"]["run_id"] == second.parent_run_id)
    metrics = {m["key"]: m["value"] for m in parent["data"]["metrics"]}
    assert metrics["trials_reused"] == n_first and metrics["warm_start_results"] == n_first
    assert (second.trials["status"] == "reused").sum() == n_first


def _store_runs(uri: str) -> list[dict]:
    """Every run of the `warm` experiment in a SQLite store, shaped as the REST API gives them."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("warm")
    return [
        {
            "info": {"run_id": r.info.run_id, "status": r.info.status},
            "data": {
                "tags": [{"key": k, "value": v} for k, v in r.data.tags.items()],
                "metrics": [{"key": k, "value": v} for k, v in r.data.metrics.items()],
            },
        }
        for r in client.search_runs([exp.experiment_id], max_results=1000)
    ]


def test_a_second_search_trains_nothing_the_first_did_and_a_related_task_seeds_a_third(
    workdir, ray_local
):
    from orchestrator import run
    from orchestrator.core.errors import UserError

    uri = f"sqlite:///{workdir}/mlflow.db"
    with pytest.raises(UserError, match="warm_start.experiments: no MLflow experiment named 'x'"):
        run(_config(uri, 2, warm_start={"experiments": ["x"]}), progress=False)
    assert _store_runs(uri) == []  # stopped before anything was recorded
    first = run(_config(uri, 4), progress=False)
    second = run(_config(uri, 3, warm_start={}), progress=False)  # default: its own experiment
    _check_second_search(_store_runs(uri), first, second, 4, 3)
    # A related task: the same recipe on other data (a table of other values).
    table = pd.read_csv(default_table_path())
    table["test_accuracy"] = 100 - table["test_accuracy"] / 2
    table.to_csv(workdir / "other.csv", index=False)
    related = _config(uri, 4, warm_start={"top_k": 2, "reuse": True})
    related["trainable"]["options"]["table"] = str(workdir / "other.csv")
    third = run(related, progress=False)
    done = pd.concat([first.trials, second.trials[second.trials["status"] != "reused"]])
    best = done.sort_values("test_accuracy", ascending=False)["arch_hash"].iloc[0]
    # top_k 2, but seeds take at most a quarter of num_samples: the best one goes first.
    assert third.trials.sort_values("trial")["arch_hash"].iloc[0] == best
    assert len(third.trials) == 4 and (third.trials["status"] == "completed").all()


@pytest.mark.integration
def test_warm_start_from_a_tracking_server(workdir, ray_local):
    from orchestrator import run
    from tests.helpers_procs import MlflowServer, Rest, clean_env

    root = Path(tempfile.mkdtemp(prefix="nasorch-warm-"))
    server = MlflowServer(root, clean_env())
    server.start()
    try:
        first = run(_config(server.uri, 3), progress=False)
        again = ["warm_start.experiments=[warm]"]
        second = run(_config(server.uri, 2), progress=False, overrides=again)
        _check_second_search(Rest(server.uri).runs("warm"), first, second, 3, 2)
    finally:
        server.stop()
