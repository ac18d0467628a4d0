"""Schedulers: stop reasons, the learning-curve rule, PBT's lineage; unit tests on synthetic
results, then a PBT and an ASHA search checked through MlflowClient."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from ray.tune.schedulers import AsyncHyperBandScheduler, MedianStoppingRule, TrialScheduler

import orchestrator
from orchestrator.schedulers import SCHEDULERS
from orchestrator.schedulers.population import KEEP, PBT, is_log
from orchestrator.schedulers.stopping import (
    ASHA,
    CurveStopping,
    Hyperband,
    MedianStopping,
    predict_final,
)

CONTINUE, STOP = TrialScheduler.CONTINUE, TrialScheduler.STOP


@dataclass(eq=False)
class FakeTrial:
    trial_id: str
    config: dict = field(default_factory=dict)
    status: str = "RUNNING"
    last_result: dict = field(default_factory=dict)
    is_saving: bool = False

    def is_finished(self) -> bool:
        return False


class FakeController:
    def get_live_trials(self) -> list:
        return []


def _result(epoch: int, acc: float) -> dict:
    return {"training_iteration": epoch, "val_accuracy": acc}


def _ready(scheduler):
    scheduler.set_search_properties("val_accuracy", "max")
    return scheduler


def test_registry_has_every_scheduler():
    assert set(SCHEDULERS) == {
        "fifo",
        "asha",
        "hyperband",
        "median",
        "curve",
        "fidelity",
        "one_epoch",
        "pbt",
        "pb2",
    }


@pytest.mark.parametrize(
    "name, options, message",
    [
        ("curve", {"grace_period": 1}, "at least 2"),
        ("pbt", {"hyperparams": {"lr": [0.1, 0.01]}}, "hyperparams.lr"),
        ("pbt", {"perturbation_interval": 99}, "perturbation_interval must be between"),
        ("pbt", {"quantile_fraction": 0.8}, "quantile_fraction"),
        ("pb2", {"momentum": 1}, "unknown option 'momentum' for pb2"),
    ],
)
def test_bad_options_fail_with_one_line(name, options, message):
    cfg = {
        "name": "x",
        "search_space": {"name": "mlp"},
        "scheduler": {"name": name, "options": options},
    }
    with pytest.raises(orchestrator.UserError, match=message):
        orchestrator.load_config(cfg)


# ---- stop reasons --------------------------------------------------------------------------


def _feed(scheduler, stream, controller=None):
    trials: dict[str, FakeTrial] = {}
    actions, stopped = [], set()
    for trial_id, epoch, acc in stream:
        if trial_id in stopped:  # a stopped trial reports nothing more
            continue
        if trial_id not in trials:
            trials[trial_id] = FakeTrial(trial_id)
            scheduler.on_trial_add(controller, trials[trial_id])
        actions.append(scheduler.on_trial_result(controller, trials[trial_id], _result(epoch, acc)))
        if actions[-1] == STOP:
            stopped.add(trial_id)
    return actions


ASHA_STREAM = [
    ("a", 1, 0.9), ("b", 1, 0.95), ("c", 1, 0.5), ("a", 3, 0.95), ("b", 3, 0.9),
    ("d", 1, 0.99), ("a", 9, 0.97), ("e", 1, 0.2),
]  # fmt: skip


def test_asha_reasons_and_unchanged_decisions():
    kwargs = dict(time_attr="training_iteration", max_t=9, grace_period=1, reduction_factor=3)
    ours = _feed(_ready(ASHA(**kwargs)), ASHA_STREAM)
    theirs = _feed(_ready(AsyncHyperBandScheduler(**kwargs)), ASHA_STREAM)
    assert ours == theirs
    sched = _ready(ASHA(**kwargs))
    _feed(sched, ASHA_STREAM)
    assert set(sched.stop_reasons) == {"c", "b", "e"}  # "a" reached max_t: finished, not stopped
    assert sched.stop_reasons["c"].startswith("asha rung 1: val_accuracy 0.5000 below the rung's")
    assert "rung 3" in sched.stop_reasons["b"]
    assert sched.trial_tags("c") == {"nasorch.stop_reason": sched.stop_reasons["c"]}
    assert sched.trial_tags("a") == {}


@pytest.mark.parametrize("name", ["asha", "median", "curve"])
def test_a_stop_that_never_happened_leaves_no_reason(name):
    """A crash between a stop decision and the stop: the resumed trial reports again, so the
    recorded reason is void (the trial would otherwise end 'stopped_early' with every epoch)."""
    kwargs = {
        "asha": dict(max_t=9, grace_period=1, reduction_factor=3),
        "median": dict(grace_period=1, min_samples_required=2),
        "curve": dict(max_t=9, grace_period=1, margin=0.0),
    }[name]
    sched = _ready({"asha": ASHA, "median": MedianStopping, "curve": CurveStopping}[name](**kwargs))
    stream = [(t, e, acc) for e in (1, 2) for t, acc in [("a", 0.9), ("b", 0.8), ("c", 0.1)]]
    _feed(sched, stream, FakeController())
    assert "c" in sched.stop_reasons
    sched.on_trial_result(FakeController(), FakeTrial("c"), _result(3, 0.95))
    assert sched.trial_tags("c") == {}


def test_a_trial_that_reached_its_budget_is_complete_despite_a_stop_decision():
    """A crash between a scheduler's stop and the stop lets the resumed trial train to its
    budget: it is complete, not stopped early."""
    from orchestrator.tracking.events import status_of

    full, short = {"training_iteration": 3}, {"training_iteration": 2}
    assert status_of(False, full, max_epochs=3, stopped=True) == "completed"
    assert status_of(False, short, max_epochs=3, stopped=True) == "stopped_early"
    assert status_of(False, short, max_epochs=3, stopped=False) == "stopped_early"
    assert status_of(False, short, max_epochs=None, stopped=True) == "stopped_early"
    assert status_of(False, short, max_epochs=None, stopped=False) == "completed"
    assert status_of(True, full, max_epochs=3, stopped=False) == "errored"


def test_median_reasons_and_unchanged_decisions():
    stream = [(t, e, acc) for e in (1, 2) for t, acc in [("a", 0.9), ("b", 0.8), ("c", 0.85)]]
    stream += [("d", 1, 0.1), ("d", 2, 0.2)]
    kwargs = dict(time_attr="training_iteration", grace_period=1, min_samples_required=2)
    ours = _feed(_ready(MedianStopping(**kwargs)), stream, FakeController())
    assert ours == _feed(_ready(MedianStoppingRule(**kwargs)), stream, FakeController())
    sched = _ready(MedianStopping(**kwargs))
    _feed(sched, stream, FakeController())
    assert ours[-1] == STOP and len(sched.stop_reasons) == ours.count(STOP)
    assert sched.stop_reasons["d"].startswith("median rule at epoch 1: best val_accuracy 0.1000")


class HalvingController(FakeController):
    """What Ray's Hyperband asks of the controller when it halves a bracket."""

    def __init__(self):
        self.stopped: list[str] = []

    def stop_trial(self, trial) -> None:
        self.stopped.append(trial.trial_id)
        trial.status = "TERMINATED"


def test_hyperband_bracket_records_the_halving():
    """Through Ray's own calls: with max_t 9 and eta 3 the first 3 trials fill the full-budget
    bracket, the next 5 the middle one, and the third bracket takes 9 trials from epoch 1 and
    keeps a third of them at its first rung; the others are stopped with their reason."""
    sched = _ready(Hyperband(time_attr="training_iteration", max_t=9, reduction_factor=3))
    controller = HalvingController()
    fillers = [FakeTrial(f"f{i}", status="PENDING") for i in range(3 + 5)]
    trials = [FakeTrial(f"t{i}", status="PENDING") for i in range(9)]
    for t in fillers + trials:
        sched.on_trial_add(controller, t)
    actions = []
    for i, t in enumerate(trials):
        t.status = "RUNNING"
        actions.append(sched.on_trial_result(controller, t, _result(1, 0.1 * i)))
        if actions[-1] == TrialScheduler.PAUSE:  # waits for the rest of its rung
            t.status = "PAUSED"
    assert actions == [TrialScheduler.PAUSE] * 8 + [CONTINUE]  # t8 is among the best third
    assert controller.stopped == [f"t{i}" for i in range(6)]
    assert set(sched.stop_reasons) == set(controller.stopped)
    assert sched.stop_reasons["t0"] == (
        "hyperband rung 1: val_accuracy 0.0000 below the cutoff 0.6000 "
        "(top 3 of 9 trials in its bracket go on)"
    )


# ---- learning-curve stopping ---------------------------------------------------------------


def test_curve_prediction_recovers_a_saturating_curve():
    epochs = [1, 2, 3, 4]
    values = [0.95 - 0.4 * t**-0.5 for t in epochs]
    predicted, c = predict_final(epochs, values, 12)
    assert c == 0.5
    assert predicted == pytest.approx(0.95 - 0.4 * 12**-0.5, abs=1e-9)
    noisy = np.array(values) + np.array([0.01, -0.01, 0.01, -0.01])
    assert predict_final(epochs, list(noisy), 12)[0] == pytest.approx(0.835, abs=0.05)


def test_curve_stops_hopeless_trials_only():
    sched = _ready(SCHEDULERS["curve"](max_t=12, grace_period=3, margin=0.02))
    leader = [("a", e, 0.97 - 0.3 * e**-1.0) for e in range(1, 13)]
    poor = [("b", e, 0.6 - 0.3 * e**-1.0) for e in range(1, 5)]  # saturates near 0.6
    close = [("c", e, 0.96 - 0.3 * e**-1.0) for e in range(1, 5)]  # within the margin
    actions = _feed(sched, leader + poor + close)
    assert actions[:12] == [CONTINUE] * 12
    assert actions[12:15] == [CONTINUE, CONTINUE, STOP]  # grace period 3
    assert actions[15:] == [CONTINUE] * 4
    assert set(sched.stop_reasons) == {"b"}
    reason = sched.stop_reasons["b"]
    assert reason.startswith("curve at epoch 3: predicted val_accuracy at epoch 12 0.")
    assert "below the best so far 0.9450 (t000)" in reason


# ---- PBT -----------------------------------------------------------------------------------


def _pbt(**bounds):
    return PBT(bounds or {"lr": (1e-4, 1e-1), "dropout": (0.0, 0.5)}, max_t=6)


def test_pbt_initial_values_start_from_the_arch_or_the_trial_seed():
    sched = _pbt(lr=(1e-4, 1e-2), weight_decay=(0.0, 1e-3))
    config = {"arch": {"lr": 0.5}, "seed": 7}
    sched.initial_values(config)
    assert config["lr"] == 1e-2  # the searched value, clipped to the bounds
    again = {"arch": {"lr": 0.5}, "seed": 7}
    sched.initial_values(again)
    assert 0 <= config["weight_decay"] <= 1e-3 and again == config  # same seed, same value
    assert is_log(1e-4, 1e-2) and not is_log(0.0, 1e-3)


def test_pbt_exploit_keeps_identity_and_bounds_and_is_recorded():
    random.seed(0)
    sched = _pbt()
    sched.set_search_properties("val_accuracy", "max")
    receiver = FakeTrial("r", {"arch": {"w": 1}, "trial_number": 2, "seed": 2, "lr": 1e-3})
    donor = FakeTrial("d", {"arch": {"w": 9}, "trial_number": 5, "seed": 5, "lr": 0.1})
    donor.config["dropout"] = receiver.config["dropout"] = 0.5
    # Ray's exploit hands over the donor's config, its values explored (x1.2 here); nasorch's
    # hook keeps the receiver's identity and the bounds (the whole path: the PBT search below).
    explored = {**donor.config, "lr": 0.1 * 1.2, "dropout": 0.5 * 1.2}
    new = sched.adjust_new_config(receiver, explored)
    assert new["arch"] == {"w": 9}  # the donor's network comes with its weights
    assert {k: new[k] for k in KEEP} == {"trial_number": 2, "seed": 2}
    assert new["lr"] == 0.1 and new["dropout"] == 0.5  # x1.2 is clipped to the bounds
    sched.exploits["r"] = [
        {"epoch": 4, "donor": "t005", "donor_trial_id": "d", "from_epoch": 4,
         "old": {"lr": 1e-3, "dropout": 0.5}, "new": {"lr": 0.08, "dropout": 0.4}}
    ]  # fmt: skip
    metrics, tags = sched.result_notes("r", {"config": {**new, "lr": 0.08}})
    assert metrics["hp_lr"] == 0.08 and "hp_dropout" in metrics
    assert tags["nasorch.pbt.donor"] == "t005" and tags["nasorch.pbt.exploits"] == "1"
    assert tags["nasorch.pbt.last_exploit"].startswith("epoch 4: took t005's checkpoint of epoch 4")
    assert sched.result_notes("r", {"config": new})[1] == {}  # tags once per new exploit


# ---- searches through Ray and MLflow -------------------------------------------------------


def _children(result):
    client = MlflowClient(result.tracking_uri)
    runs = client.search_runs([result.experiment_id], max_results=1000)
    return client, [r for r in runs if r.data.tags.get("nasorch.role") == "trial"]


def _history(client, run, name):
    return sorted(client.get_metric_history(run.info.run_id, name), key=lambda m: m.timestamp)


def test_pbt_exploits_explores_and_resumes_from_checkpoints(ray_local, workdir):
    random.seed(0)  # Ray's PBT explores with the `random` module
    result = orchestrator.run(
        {
            "name": "pbt",
            "num_samples": 4,
            "max_concurrent_trials": 4,
            "seed": 0,
            "search_space": {"name": "mlp", "options": {"max_depth": 2, "widths": [32, 64]}},
            "trainable": {"name": "torch", "options": {"epochs": 6}},
            "searcher": {"name": "random"},
            "scheduler": {
                "name": "pbt",
                "options": {"perturbation_interval": 2, "quantile_fraction": 0.5},
            },
        },
        progress=False,
    )
    assert (result.trials["status"] == "completed").all()  # paused and exploited, not stopped
    assert sorted(result.trials["trial"]) == ["t001", "t002", "t003", "t004"]
    client, runs = _children(result)
    exploited = [r for r in runs if "nasorch.pbt.donor" in r.data.tags]
    assert exploited, "no trial exploited another"
    for run in exploited:
        lineage = json.loads(run.data.tags["nasorch.pbt.lineage"])
        assert run.data.tags["nasorch.pbt.exploits"] == str(len(lineage))
        lrs = {round(m.value, 12) for m in _history(client, run, "hp_lr")}
        assert len(lrs) > 1  # the explored learning rate is visible as a curve
        steps = [m.step for m in _history(client, run, "val_accuracy")]
        assert steps.count(1) == 1  # never restarted from scratch
        jumps = [b for a, b in zip(steps, steps[1:]) if b != a + 1]
        assert jumps == [e["from_epoch"] + 1 for e in lineage if e["from_epoch"] != e["epoch"]]
        assert steps[-1] == 6


def test_asha_tags_why_it_stopped_a_trial(ray_local, workdir):
    result = orchestrator.run(
        {
            "name": "asha-reasons",
            "num_samples": 4,
            "seed": 1,
            "search_space": {"name": "mlp", "options": {"max_depth": 2, "widths": [32, 64]}},
            "trainable": {"name": "torch", "options": {"epochs": 3}},
            "searcher": {"name": "random"},
            "scheduler": {"name": "asha", "options": {"grace_period": 1, "reduction_factor": 2}},
        },
        progress=False,
    )
    client, runs = _children(result)
    stopped = [r for r in runs if r.data.tags["nasorch.status"] == "stopped_early"]
    assert stopped
    for run in runs:
        reason = run.data.tags.get("nasorch.stop_reason")
        if run in stopped:
            epochs = run.data.tags["nasorch.epochs"]
            assert reason.startswith(f"asha rung {epochs}: val_accuracy ")
        else:
            assert reason is None


def test_after_an_exploit_the_searcher_learns_what_its_own_arch_reached():
    from orchestrator.core.gate import Gate
    from orchestrator.searchers.base import Strategy
    from orchestrator.searchers.tune_adapter import StrategySearcher
    from search_spaces import SEARCH_SPACES

    space = SEARCH_SPACES["mlp"](max_depth=2, widths=[32, 64])

    class Recorder(Strategy):
        def __init__(self):
            self.space, self.told, self.rng = space, [], random.Random(0)

        def ask(self):
            return space.sample(self.rng)

        def update(self, arch, value):
            self.told.append((arch, value))

    strategy = Recorder()
    searcher = StrategySearcher(
        strategy, metric="val_accuracy", mode="max", base_config={}, gate=Gate(space)
    )
    own = searcher.suggest("r")["arch"]
    donor = next(a for a in iter(strategy.ask, None) if a != own)
    searcher.on_trial_result("r", {"val_accuracy": 0.6, "config": {"arch": own}})
    searcher.on_trial_result("r", {"val_accuracy": 0.9, "config": {"arch": donor}})  # exploited
    searcher.on_trial_complete("r", {"val_accuracy": 0.95, "config": {"arch": donor}})
    assert strategy.told == [(own, 0.6)]  # not the donor's lineage's 0.95
    mine = searcher.suggest("s")["arch"]
    searcher.on_trial_result("s", {"val_accuracy": 0.7, "config": {"arch": mine}})
    searcher.on_trial_complete("s", {"val_accuracy": 0.8, "config": {"arch": mine}})
    assert strategy.told[-1] == (mine, 0.8)


def test_stop_reasons_and_exploits_survive_a_resume():
    from orchestrator.resumable.scheduler_state import SchedulerState

    asha = SCHEDULERS["asha"](max_t=6)
    asha.stop_reasons["a"] = "asha: stopped at epoch 1"
    pbt = _pbt()
    pbt.exploits["r"] = [
        {"epoch": 2, "donor": "t005", "donor_trial_id": "d", "from_epoch": 2, "old": {}, "new": {}}
    ]
    pbt._tagged["r"] = 1
    for before, fresh in ((asha, SCHEDULERS["asha"](max_t=6)), (pbt, _pbt())):
        SchedulerState(fresh).set_state(json.loads(json.dumps(SchedulerState(before).get_state())))
        assert fresh.stop_reasons == before.stop_reasons
        assert getattr(fresh, "exploits", None) == getattr(before, "exploits", None)
    assert pbt.trial_tags("r")["nasorch.pbt.donor"] == "t005"


def test_the_remembered_result_is_plain_json():
    from orchestrator.core.gate import Gate
    from orchestrator.searchers import STRATEGIES
    from orchestrator.searchers.tune_adapter import StrategySearcher
    from search_spaces import SEARCH_SPACES

    space = SEARCH_SPACES["mlp"](max_depth=2, widths=[32, 64])
    searcher = StrategySearcher(
        STRATEGIES["random"](space, seed=0), metric="acc", mode="max", base_config={},
        gate=Gate(space),
    )  # fmt: skip
    arch = searcher.suggest("r")["arch"]
    searcher.on_trial_result("r", {"acc": np.float32(0.5), "config": {"arch": arch}})
    assert json.loads(json.dumps(searcher.get_state()))["live"]["r"]["own"] == {"acc": 0.5}
