"""Trial checkpoints pruned in step with Ray's experiment snapshots, so a resume finds them.

Ray's `num_to_keep` deletes a trial's older checkpoints as new ones arrive, but its experiment
snapshot (what `nasorch resume` restores) is written only every few seconds: a trial that
checkpoints faster than that can have the checkpoint its snapshot names deleted before the
driver dies, and Ray then fails the trial on resume ("Could not recover from checkpoint as it
does not exist on storage anymore"). Ray is told to keep every checkpoint instead; this callback
deletes a trial's checkpoints only once they are older than the one named by the snapshot
before the latest (Ray writes callback states right after the snapshot itself, so whichever of
the two is on disk when the driver dies, the checkpoints it names are still there).
"""

from __future__ import annotations

import logging
from typing import Any

from ray.tune import Callback

log = logging.getLogger(__name__)


class CheckpointPruner(Callback):
    def __init__(self, keep: int = 2):
        self.keep = keep  # at least this many of a trial's newest checkpoints stay
        self.made: dict[str, list[tuple[Any, str]]] = {}  # trial id -> (filesystem, path)
        self.named: dict[str, str] = {}  # trial id -> the newest path at the last snapshot

    def on_checkpoint(self, iteration: int, trials: list, trial: Any, checkpoint: Any, **info):
        self.made.setdefault(trial.trial_id, []).append((checkpoint.filesystem, checkpoint.path))

    def get_state(self) -> dict | None:
        """Called as Ray writes an experiment snapshot: prune up to the previous one's."""
        for trial_id, made in self.made.items():
            paths = [p for _, p in made]
            previous = self.named.get(trial_id)
            if previous in paths:
                cut = min(paths.index(previous), len(made) - self.keep)
                for fs, path in made[:cut]:
                    _delete(fs, path)
                del made[:cut]
        self.named = {t: made[-1][1] for t, made in self.made.items() if made}
        return None  # nothing to restore: a resumed search starts counting afresh


def _delete(fs: Any, path: str) -> None:
    try:
        fs.delete_dir(path)
    except (FileNotFoundError, OSError) as e:  # already gone, or storage hiccup: not fatal
        log.debug("could not delete checkpoint %s: %s", path, e)
