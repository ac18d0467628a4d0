"""Learning-curve sources: what a trial would have reported at each epoch, and when.

A source answers `curve(arch) -> Curve` (the metric at epochs 1..max_epochs and the cumulative
training seconds at each) for the architectures of its `space`. `nasorch simulate` replays them
in simulated time; the `curve` trainable replays them under real Ray Tune. Two kinds:

- `TableCurves`: a CSV of curves, one row per (configuration, epoch). Its format
  (docs/tutorials/choosing.md, "Your own curves"): `epoch` (1, 2, ...), the metric column,
  `time` (cumulative seconds) or
  `epoch_seconds` (that epoch's seconds), and either an `arch` column holding a space's key
  (`space: nb201` parses NAS-Bench-201's cell strings) or configuration columns named
  `param.<name>`. The rows define the candidates: searchers propose only those.
- `LCBenchCurves` (trainables/lcbench.py): the LCBench surrogate, a continuous space.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from search_spaces.base import Arch, SearchSpace, SearchSpaceError
from trainables.errors import InputError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_ENV = "NASORCH_DATA"  # the folder of ../shared/data, when it is not beside the project


class CurveError(InputError):
    """A curve file that cannot be used; the message names the file, line and column."""


def data_path(name: str) -> Path:
    """A file of the shared benchmark data: $NASORCH_DATA/name, else ../shared/data/name."""
    root = os.environ.get(DATA_ENV) or PROJECT_ROOT.parent / "shared" / "data"
    return Path(root) / name


@dataclass(frozen=True)
class Curve:
    values: np.ndarray  # the metric after epochs 1..n
    times: np.ndarray  # cumulative training seconds after epochs 1..n (non-decreasing)


class CurveSource:
    """The interface every source implements (see the module docstring)."""

    name: str
    metric: str
    mode: str  # "max" or "min"
    max_epochs: int
    space: SearchSpace
    best: float  # the best value any candidate reaches at any epoch (regret's reference)
    worst: float  # a poor value (normalised regret = (best - found) / (best - worst))

    def curve(self, arch: Arch) -> Curve:
        raise NotImplementedError

    def reported(self, arch: Arch) -> dict[str, float]:
        """What a trial reports beside the metric each epoch (a table's costs, for
        multi-objective searches, as the tabular trainable reports them)."""
        return {}

    def full_time(self) -> float:
        """The median seconds of a full trial (all epochs): the unit of simulated budgets."""
        import random

        rng = random.Random(0)
        archs = [self.space.sample(rng) for _ in range(256)]
        return float(np.median([self.curve(a).times[-1] for a in archs]))

    def regret(self, found: float) -> float:
        """Normalised regret of `found` (0: the source's best; 1: its worst)."""
        gap = self.best - found if self.mode == "max" else found - self.best
        return max(gap, 0.0) / max(abs(self.best - self.worst), 1e-12)


class TableCurves(CurveSource):
    def __init__(self, name: str, space: SearchSpace, curves: dict[str, Curve], metric: str,
                 mode: str, costs: tuple[str, ...] = ()):  # fmt: skip
        self.name, self.space, self.metric, self.mode = name, space, metric, mode
        self.curves = curves
        self.costs = costs  # the space's objectives reported beside the metric
        self.max_epochs = len(next(iter(curves.values())).values)
        finals = [c.values for c in curves.values()]
        best_of = np.max if mode == "max" else np.min
        worst_of = np.min if mode == "max" else np.max
        self.best = float(best_of([best_of(v) for v in finals]))
        self.worst = float(worst_of([v[-1] for v in finals]))

    def full_time(self) -> float:
        return float(np.median([c.times[-1] for c in self.curves.values()]))

    def reported(self, arch: Arch) -> dict[str, float]:
        if not self.costs:
            return {}
        objectives = self.space.objectives(arch)
        return {k: float(objectives[k]) for k in self.costs}

    @classmethod
    def one_epoch(cls, name: str, space: SearchSpace, values: dict[str, float], metric: str,
                  mode: str, costs: tuple[str, ...] = ()) -> TableCurves:  # fmt: skip
        """A table (one value per architecture key) as curves of one epoch, each a second
        long: `nasorch bench` evaluates through the simulator with it."""
        one = np.ones(1)
        curves = {k: Curve(np.array([float(v)]), one) for k, v in values.items()}
        return cls(name, space, curves, metric, mode, costs)

    def curve(self, arch: Arch) -> Curve:
        key = self.space.key(arch)
        try:
            return self.curves[key]
        except KeyError:
            raise CurveError(f"{self.name}: no curve for {key!r}") from None

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        metric: str = "val_accuracy",
        mode: str = "max",
        space: str | None = None,
    ) -> TableCurves:
        p = Path(os.path.expanduser(os.fspath(path)))
        if not p.is_file():
            raise CurveError(f"curves file {os.fspath(path)!r} not found")
        return _load(str(p.resolve()), p.stat().st_mtime_ns, metric, mode, space)


@functools.lru_cache(maxsize=4)
def _load(path: str, mtime: int, metric: str, mode: str, space_name: str | None) -> TableCurves:
    import pandas as pd

    from search_spaces.candidates import table_candidates

    name = Path(path).name
    try:
        df = pd.read_csv(path)
    except Exception as e:
        raise CurveError(f"curves file {path}: cannot be read as CSV ({e})") from None
    time_col = "time" if "time" in df.columns else "epoch_seconds"
    for col in ("epoch", metric, time_col):
        if col not in df.columns:
            raise CurveError(
                f"curves file {name}: no column {col!r} (needs epoch, {metric}, time or "
                f"epoch_seconds, and arch or param.<name> columns; has {', '.join(df.columns)})"
            )
    for col in ("epoch", metric, time_col):
        bad = pd.to_numeric(df[col], errors="coerce").isna()
        if bad.any():
            line = int(bad.to_numpy().argmax()) + 2
            raise CurveError(f"curves file {name}, line {line}: {col!r} is not a number")
    try:
        space, archs = table_candidates(df, space_name)
    except SearchSpaceError as e:
        raise CurveError(f"curves file {name}: {e}") from None
    base = space.base
    keys = [base.key(a) for a in archs]
    df = df.assign(_key=keys)
    curves: dict[str, Curve] = {}
    lengths = set()
    for key, rows in df.groupby("_key", sort=False):
        rows = rows.sort_values("epoch")
        epochs = rows["epoch"].astype(int).to_numpy()
        if list(epochs) != list(range(1, len(epochs) + 1)):
            raise CurveError(f"curves file {name}: {key!r} has epochs {_span(epochs)}, not 1..n")
        secs = rows[time_col].astype(float).to_numpy()
        times = np.maximum.accumulate(secs if time_col == "time" else np.cumsum(secs))
        curves[key] = Curve(rows[metric].astype(float).to_numpy(), times)
        lengths.add(len(epochs))
    if len(lengths) > 1:
        raise CurveError(f"curves file {name}: curves of different lengths {sorted(lengths)}")
    return TableCurves(Path(path).stem, space, curves, metric, mode)


def _span(epochs: np.ndarray) -> str:
    return f"{epochs.min()}..{epochs.max()} ({len(epochs)} rows)" if len(epochs) else "none"
