"""The `curve` trainable: replays a curves CSV's learning curve under real Ray Tune.

Each epoch reports the table's metric for the trial's architecture (and `curve_time_s`, the
cumulative training seconds the table gives), optionally sleeping the table's epoch time times
`time_scale`. With `search_space: {name: table, options: {path: <same CSV>}}` a real search
replays exactly what `nasorch simulate` replays, which is how the simulator is checked against
Ray Tune (tests/test_simulation.py).
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, ConfigDict

from trainables.curves import CurveError, TableCurves


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str  # the curves CSV (docs/tutorials/choosing.md)
    space: str | None = None  # the space named by its `arch` column, e.g. nb201
    metric: str = "val_accuracy"
    epochs: int  # a trial's budget: at most the curves' length
    time_scale: float = 0.0  # sleep this fraction of each epoch's seconds (0: none)


def _source(opts: Options) -> TableCurves:
    return TableCurves.load(opts.path, metric=opts.metric, space=opts.space)


def curve(config: dict[str, Any]) -> None:
    from ray import tune

    opts = Options(**(config.get("trainable_options") or {}))
    c = _source(opts).curve(config["arch"])
    epochs = min(opts.epochs, len(c.values))
    previous = 0.0
    for epoch in range(1, epochs + 1):
        seconds = float(c.times[epoch - 1])
        if opts.time_scale > 0:
            time.sleep((seconds - previous) * opts.time_scale)
        previous = seconds
        tune.report(
            {opts.metric: float(c.values[epoch - 1]), "epoch": epoch, "curve_time_s": seconds}
        )


def check_options(options: dict[str, Any]) -> None:
    """Open the table when the config is loaded: a bad path or column fails in one line."""
    opts = Options(**options)
    source = _source(opts)
    if not 1 <= opts.epochs <= source.max_epochs:
        raise CurveError(f"epochs must be between 1 and {source.max_epochs} (the curves' length)")
    if opts.time_scale < 0:
        raise CurveError(f"time_scale must be >= 0, got {opts.time_scale}")


curve.Options = Options  # type: ignore[attr-defined]
curve.check_options = check_options  # type: ignore[attr-defined]
