"""Which earlier trials can stand in for a new one: a fingerprint of what changes a result.

Two trials of the same architecture have the same result when the trainable, its options, the
search space's options and the metric are the same. Options that only change how fast a trial
runs (threads, compile, channels_last, time_scale) are left out. `recipe` is the same hash
without the data (the dataset, a table or curves file, the validation split): trials that share
it but not `full` ran the same recipe on another task, a prior rather than an answer.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

# Options that change speed, not results.
SPEED_ONLY = frozenset({"threads", "compile", "channels_last", "time_scale"})
# Options that name the data a trial learns or is looked up from (the task).
DATA = frozenset({"dataset", "table", "path", "val_fraction", "metric_column"})


@dataclass(frozen=True)
class Fingerprint:
    full: str  # recipe and data: a trial with the same one is an answer
    recipe: str  # without the data: a trial with only this in common is a related task's


def fingerprint(
    trainable: str, options: dict[str, Any], space: dict[str, Any], metric: str
) -> Fingerprint:
    """`options`: the trainable's validated options; `space`: the search space's name and
    options (`cfg.search_space.model_dump()`)."""
    kept = {k: v for k, v in options.items() if k not in SPEED_ONLY}
    recipe = {k: v for k, v in kept.items() if k not in DATA}
    base = {"trainable": trainable, "space": space, "metric": metric}
    return Fingerprint(_hash({**base, "options": kept}), _hash({**base, "options": recipe}))


def _hash(data: dict[str, Any]) -> str:
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]
