"""Reading back what a crashed driver reported to Ray (`orchestrator/tracking/recovery.py`)."""

from __future__ import annotations

import json

from orchestrator.resumable.recovery import trial_id_from_dirname, unrecorded_results


def _write_results(folder, results):
    folder.mkdir(parents=True)
    with open(folder / "result.json", "w") as f:
        for result in results:
            f.write(json.dumps(result) + "\n")


def test_trial_id_from_dirname():
    assert trial_id_from_dirname("t003_abc12") == "abc12"
    assert trial_id_from_dirname("/x/exp/t012_1a2b3c4d/") == "1a2b3c4d"
    assert trial_id_from_dirname("train_abc12_00001_1_lr=0.1") is None
    assert trial_id_from_dirname("abc12") is None


def test_results_are_keyed_by_their_folder_not_their_metrics(tmp_path):
    """After a PBT exploit a trial's metrics carry the donor's trial id; the folder's is its own."""
    experiment = tmp_path / "recovery_exp_pbt"
    _write_results(
        experiment / "t003_abc12",
        [
            {"trial_id": "donor99", "training_iteration": step, "timestamp": step, "acc": step}
            for step in (1, 2, 3)
        ],
    )
    backlog = unrecorded_results(str(experiment), {"abc12": 1})
    assert set(backlog) == {"abc12"}
    assert [r["training_iteration"] for r in backlog["abc12"]] == [2, 3]


def test_folders_not_named_by_nasorch_fall_back_to_the_metrics(tmp_path):
    experiment = tmp_path / "recovery_exp_plain"
    _write_results(
        experiment / "train_fn_0a1b2_00000",
        [{"trial_id": "0a1b2", "training_iteration": 1, "timestamp": 1}],
    )
    assert list(unrecorded_results(str(experiment), {})) == ["0a1b2"]
