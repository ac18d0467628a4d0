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


def test_results_in_cloud_storage_are_read_through_the_whole_uri(tmp_path):
    """Ray's folder in cloud storage (here a file:// URI, opened as an s3:// one would be):
    its trials' result.json are read there, beside the driver's own folder, once each."""
    driver = tmp_path / "driver" / "recovery_exp_s3"
    driver.mkdir(parents=True)
    stored = tmp_path / "bucket" / "ray" / "recovery_exp_s3"
    results = [{"training_iteration": s, "timestamp": s, "acc": s} for s in (1, 2, 3)]
    _write_results(stored / "t001_abc12", results)
    _write_results(driver / "t001_abc12", results[:2])  # the same results, an older copy
    backlog = unrecorded_results(str(driver), {"abc12": 1}, f"file://{stored}")
    assert [r["training_iteration"] for r in backlog["abc12"]] == [2, 3]
    assert unrecorded_results(str(driver), {}, f"file://{tmp_path}/none") == {"abc12": results[:2]}
