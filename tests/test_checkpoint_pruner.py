"""CheckpointPruner deletes a trial's checkpoints only once no experiment snapshot that may be
on disk names them: those named by the latest and by the one before stay."""

from __future__ import annotations

from types import SimpleNamespace

import pyarrow.fs

from orchestrator.resumable.checkpoints import CheckpointPruner


def test_checkpoints_named_by_the_last_two_snapshots_stay(tmp_path):
    fs = pyarrow.fs.LocalFileSystem()
    pruner = CheckpointPruner(keep=2)
    trial = SimpleNamespace(trial_id="a")

    def checkpoint(i: int) -> str:
        path = tmp_path / f"checkpoint_{i:06d}"
        path.mkdir()
        pruner.on_checkpoint(0, [], trial, SimpleNamespace(filesystem=fs, path=str(path)))
        return path.name

    def left() -> list[str]:
        return sorted(p.name for p in tmp_path.iterdir())

    names = [checkpoint(i) for i in range(5)]
    pruner.get_state()  # snapshot 1 names checkpoint 4; nothing older than a snapshot yet
    assert left() == names
    names += [checkpoint(i) for i in range(5, 9)]
    pruner.get_state()  # snapshot 2 names 8: what snapshot 1 named (4) and newer stay
    assert left() == names[4:]
    pruner.get_state()  # snapshot 3 also names 8: only 8 and the newest `keep` stay
    assert left() == names[7:]
