"""Schedulers' state goes through a SIGKILL of the driver and `nasorch resume`: ASHA's rungs
and stop reasons, PBT's exploits (apart from tests/test_resume.py so that the two run side by
side under `pytest -n 2`)."""

from __future__ import annotations

import json

import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests.test_resume import N, config, crash_and_resume, started, trials_by_number

pytestmark = pytest.mark.integration
__all__ = ["started"]  # the fixture, used by name


def test_sigkill_then_resume_with_asha(tmp_path, started):
    """ASHA's rungs and stop reasons go through the crash: every trial ends once, in one run,
    and every early stop says why."""
    cfg = config(tmp_path, "asha")
    cfg["scheduler"] = {"name": "asha", "options": {"grace_period": 1, "reduction_factor": 2}}
    (tmp_path / "asha.yaml").write_text(yaml.safe_dump(cfg))
    # killed once half the trials have reported
    crash_and_resume(tmp_path, started, "asha", lambda steps: len(steps) >= N // 2)

    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    trials = trials_by_number(client, "asha")
    assert sorted(trials) == list(range(1, N + 1))
    statuses = []
    for number, runs in trials.items():
        assert len(runs) == 1, f"trial {number} has {len(runs)} child runs"
        run = runs[0]
        assert run.info.status == "FINISHED"
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "score")]
        assert sorted(steps) == list(range(1, len(steps) + 1))  # none twice, none missing
        status = run.data.tags["nasorch.status"]
        statuses.append(status)
        if status == "stopped_early":
            assert run.data.tags["nasorch.stop_reason"].startswith("asha")
            assert len(steps) < 3
        else:
            assert status == "completed" and len(steps) == 3
    assert "stopped_early" in statuses and "completed" in statuses


@pytest.mark.slow  # ~100 s; PBT's exploits and checkpoints are also in test_schedulers.py
def test_sigkill_then_resume_with_pbt(tmp_path, started):
    """After exploits the trials' configs carry their donors' architectures; the resumed search
    still ends every trial once, in its own run (none closed as superseded)."""
    cfg = config(tmp_path, "pbt")
    cfg.update(num_samples=6, max_concurrent_trials=6)
    cfg["scheduler"] = {
        "name": "pbt",
        "options": {"perturbation_interval": 1, "quantile_fraction": 0.5},
    }
    (tmp_path / "pbt.yaml").write_text(yaml.safe_dump(cfg))
    # killed once about half the epochs are reported
    out = crash_and_resume(tmp_path, started, "pbt", lambda steps: sum(steps.values()) >= 8)
    assert "Remote file not found" not in out

    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    trials = trials_by_number(client, "pbt")
    assert sorted(trials) == list(range(1, 7))
    for number, runs in trials.items():
        assert len(runs) == 1, f"trial {number} has {len(runs)} child runs"
        assert runs[0].info.status == "FINISHED"
        assert runs[0].data.tags["nasorch.status"] == "completed"


def test_sigkill_then_resume_a_custom_loop(tmp_path, started, monkeypatch):
    """examples/custom_loop.py keeps its checkpoints through `orchestrator.trial`: killed
    mid-search and resumed, unfinished trials continue from their checkpoints (not from epoch
    1), and every epoch is in MLflow once."""
    from tests.conftest import ROOT

    # The example, held at epoch 10 until the test opens a gate: the kill comes while trials are
    # part way however loaded the machine is (unheld, a trial can end between two polls).
    gate = tmp_path / "gate"
    loop = '    for epoch in range(start + 1, options["epochs"] + 1):\n'
    source = (ROOT / "examples" / "custom_loop.py").read_text()
    assert loop in source, "examples/custom_loop.py changed its epoch loop"
    held = f"        while epoch > 10 and not os.path.exists({str(gate)!r}):\n"
    held += "            time.sleep(0.2)\n"
    source = source.replace(loop, loop + held)
    source = source.replace("import numpy", "import os\nimport time\n\nimport numpy", 1)
    (tmp_path / "custom_loop.py").write_text(source)
    cfg = yaml.safe_load((ROOT / "examples" / "custom_loop.yaml").read_text())
    epochs = 40
    cfg.update(name="loop", num_samples=3, scheduler={"name": "fifo"})
    cfg["trainable"]["options"]["epochs"] = epochs
    cfg["storage_path"] = str(tmp_path / "ray")
    cfg["tracking"] = {"uri": f"sqlite:///{tmp_path}/mlflow.db"}
    (tmp_path / "loop.yaml").write_text(yaml.safe_dump(cfg))
    # Ray snapshots the experiment every second (its own setting; "auto" can wait many seconds
    # on a loaded machine), so a trial part way is in a snapshot before the search is over.
    monkeypatch.setenv("TUNE_GLOBAL_CHECKPOINT_S", "1")
    at_kill: dict[str, int] = {}  # trial id -> last epoch in MLflow when the driver was killed

    def ready(steps: dict[str, int]) -> bool:
        """Two trials past their second epoch, one of them part way and already in Ray's
        snapshot (a trial the snapshot missed is suggested again after the resume, under a new
        id, and starts afresh: on a loaded machine the snapshot can lag the trials by seconds)."""
        at_kill.clear()
        at_kill.update(steps)
        snapshot = "".join(
            p.read_text() for p in (tmp_path / "ray").glob("loop-*/experiment_state-*.json")
        )
        part_way = [t for t, s in steps.items() if 2 <= s < epochs - 5 and t in snapshot]
        return sum(s >= 2 for s in steps.values()) >= 2 and bool(part_way)

    crash_and_resume(tmp_path, started, "loop", ready, before_resume=gate.touch)
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    trials = trials_by_number(client, "loop")
    assert sorted(trials) == [1, 2, 3]
    for number, runs in trials.items():
        assert len(runs) == 1 and runs[0].info.status == "FINISHED", number
        history = client.get_metric_history(runs[0].info.run_id, "val_accuracy")
        assert sorted(m.step for m in history) == list(range(1, epochs + 1)), number
    # Ray's own record of what each trial reported: a trial that had checkpoints when the driver
    # died goes on from them; one restarted from scratch would report epoch 1 twice.
    continued = 0
    for results in (tmp_path / "ray").glob("loop-*/t*/result.json"):
        trial_id = results.parent.name.rsplit("_", 1)[-1]
        if 2 <= at_kill.get(trial_id, 0) < epochs:
            lines = results.read_text().splitlines()
            reported = [json.loads(line)["epoch"] for line in lines if line.strip()]
            assert reported.count(1) == 1 and max(reported) == epochs, (trial_id, reported)
            continued += 1
    assert continued >= 1, at_kill
