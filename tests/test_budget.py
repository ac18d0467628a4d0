"""`time_budget`: durations parse, the stopper keeps time across a resume, and a search ends
on time with the parent run saying which budget ended it."""

from __future__ import annotations

import pickle
import time

import pytest
from mlflow.tracking import MlflowClient

import orchestrator
from orchestrator.config import parse_config, parse_duration
from orchestrator.core.errors import UserError
from orchestrator.execution.budget import TimeBudget


@pytest.mark.parametrize(
    "value, seconds", [("90", 90), (90, 90), ("90s", 90), ("30m", 1800), ("1.5h", 5400)]
)
def test_durations(value, seconds):
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["soon", "10 minutes", "-5m", 0])
def test_a_bad_budget_is_one_line_naming_the_field(value):
    with pytest.raises(UserError) as e:
        parse_config({"name": "x", "search_space": {"name": "mlp"}, "time_budget": value})
    assert str(e.value).startswith("time_budget:") and "\n" not in str(e.value)


def test_time_spent_before_a_crash_counts():
    budget = TimeBudget(0.3)
    assert not budget.stop_all()
    time.sleep(0.2)
    again = pickle.loads(pickle.dumps(budget))  # what Ray's snapshot keeps
    assert again.spent >= 0.2 and not again.stop_all()
    time.sleep(0.15)
    assert again.stop_all() and again.ended and again("any-trial", {})


def test_a_search_ends_on_time(ray_local, tmp_path):
    cfg = {
        "name": "budget",
        "metric": "score",
        "num_samples": 30,
        "max_concurrent_trials": 2,
        "time_budget": "15s",  # Ray's workers may take seconds to start on a loaded machine
        "search_space": {
            "name": "custom",
            "options": {"params": {"x": {"type": "float", "low": 0, "high": 1}}},
        },
        # 40 epochs of 1 s; `epochs` tells nasorch a trial's budget (a cut trial: stopped_early)
        "trainable": {"name": "tests.helpers:long_paced", "options": {"epochs": 40}},
        "storage_path": str(tmp_path / "ray"),
        "tracking": {"uri": f"sqlite:///{tmp_path}/mlflow.db"},
    }
    result = orchestrator.run(cfg, progress=False)
    # Not a timing test (how long Ray takes to start and stop trial processes depends on the
    # machine's load): one trial alone lasts 40 s, so a search ending before that was cut.
    assert result.timings["fit"] < 40
    assert 1 <= len(result.trials) < 30
    assert "stopped_early" in set(result.trials["status"])
    parent = MlflowClient(result.tracking_uri).get_run(result.parent_run_id)
    assert parent.data.tags["nasorch.ended_by"] == "time_budget"
    assert parent.info.status == "FINISHED"


def test_accelerator_hours_count_each_trials_share_of_a_gpu():
    from orchestrator.execution.budget import AcceleratorBudget

    budget = AcceleratorBudget(1.0, gpu_per_trial=0.5)  # two trials share a GPU
    assert not budget("a", {"time_total_s": 3600.0})  # 0.5 GPU-hours
    assert not budget("b", {"time_total_s": 3000.0})  # 0.5 + 0.4167
    assert not budget("a", {"time_total_s": 3700.0})  # a's later report replaces its first
    assert budget("b", {"time_total_s": 3600.0}) and budget.ended  # 0.5139 + 0.5
    again = pickle.loads(pickle.dumps(budget))
    assert again.ended and again.spent_hours() == budget.spent_hours()


def test_accelerator_hours_need_gpus():
    config = {"name": "x", "search_space": {"name": "mlp"}, "accelerator_hours": 2}
    with pytest.raises(UserError, match="accelerator_hours: the trials use no GPU"):
        parse_config(config)
    parse_config({**config, "resources": {"gpu": 0.5}})
