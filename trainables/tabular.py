"""A tabular trainable: look an architecture's metric up in a CSV table and report it at once.

A table has one row per architecture: a column with the space's canonical key (for NB201 the
string form `|op~0|+|...|`) and a metric column. Any CSV with those two columns works, so other
datasets of the same space need no code. `Table` is the pure, cached loader shared by the Ray
trainable and by `nasorch bench`.
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from trainables.curves import TableCurves, data_path
from trainables.errors import InputError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TABLE = "nb201_cifar10.csv"  # in the shared data folder (curves.data_path)


class TableError(InputError):
    """A table that cannot be used: missing file or column, malformed row, unknown architecture."""


def default_table_path() -> str:
    """nb201_cifar10.csv in the shared data folder: $NASORCH_DATA, else ../shared/data."""
    return str(data_path(DEFAULT_TABLE).resolve())


def resolve_table_path(path: str | os.PathLike | None) -> Path:
    """A relative path is tried from the working directory, then from the project root, because
    Ray runs trials in their own folders."""
    p = Path(os.path.expanduser(os.fspath(path or default_table_path())))
    if not p.is_absolute() and not p.exists() and (PROJECT_ROOT / p).exists():
        p = PROJECT_ROOT / p
    return p.resolve()


class Table:
    """Metric by architecture key, loaded once per (file, modification time, columns)."""

    def __init__(self, path: Path, values: dict[str, float], arch_column: str, metric_column: str):
        self.path, self.values = path, values
        self.arch_column, self.metric_column = arch_column, metric_column

    @classmethod
    def load(
        cls,
        path: str | os.PathLike | None = None,
        arch_column: str = "arch",
        metric_column: str = "test_accuracy",
    ) -> Table:
        p = resolve_table_path(path)
        if not p.is_file():
            raise TableError(f"table {os.fspath(path or p)!r} not found (resolved to {p})")
        return _load(str(p), p.stat().st_mtime_ns, arch_column, metric_column)

    def lookup(self, key: str) -> float:
        try:
            return self.values[key.strip()]
        except KeyError:
            raise TableError(
                f"architecture {key!r} is not in table {self.path.name} "
                f"(column {self.arch_column!r}, {len(self.values)} rows)"
            ) from None

    def curves(self, space: Any, mode: str, costs: tuple[str, ...] = ()) -> TableCurves:
        """The table as a curve source of one epoch (`costs`: the space's objectives reported
        beside the metric)."""
        return TableCurves.one_epoch(self.path.stem, space, self.values, self.metric_column,
                                     mode, costs)  # fmt: skip

    def best(self, mode: str = "max") -> float:
        return max(self.values.values()) if mode == "max" else min(self.values.values())

    def __len__(self) -> int:
        return len(self.values)


@functools.lru_cache(maxsize=8)
def _load(path: str, mtime_ns: int, arch_column: str, metric_column: str) -> Table:
    import pandas as pd  # only when a table is really needed

    name = Path(path).name
    try:
        df = pd.read_csv(path)
    except Exception as e:  # pandas' parser errors name neither the file nor the fix
        raise TableError(f"table {path}: cannot be read as CSV ({e})") from None
    for col in (arch_column, metric_column):
        if col not in df.columns:
            raise TableError(
                f"table {name} has no column {col!r} (columns: {', '.join(map(str, df.columns))})"
            )
    if df.empty:
        raise TableError(f"table {name} has no rows")
    values: dict[str, float] = {}
    metric = pd.to_numeric(df[metric_column], errors="coerce")
    for row, (arch, value) in enumerate(zip(df[arch_column], metric, strict=True), start=2):
        if not isinstance(arch, str) or not arch.strip():
            raise TableError(f"table {name}, line {row}: empty or non-text {arch_column!r}")
        if value is None or not math.isfinite(value):
            raw = df[metric_column].iloc[row - 2]
            raise TableError(
                f"table {name}, line {row}: {metric_column!r} is not a number ({raw!r})"
            )
        key = arch.strip()
        if key in values:
            raise TableError(f"table {name}, line {row}: architecture {key!r} appears twice")
        values[key] = float(value)
    return Table(Path(path), values, arch_column, metric_column)


class Options(BaseModel):
    """`trainable.options` of the tabular trainable."""

    model_config = ConfigDict(extra="forbid")

    table: str | None = None  # default: default_table_path()
    arch_column: str = "arch"
    metric_column: str = "test_accuracy"
    metric: str | None = None  # the name it is reported under; default: metric_column


def tabular(config: dict[str, Any]) -> None:
    """Ray Tune function trainable: report the table's metric for `config["arch"]`, plus the
    space's cheap objectives (e.g. num_params, flops) for multi-objective searches."""
    from ray import tune

    from search_spaces import SEARCH_SPACES

    opts = Options(**(config.get("trainable_options") or {}))
    space_cfg = config.get("search_space") or {"name": "nb201"}
    space = SEARCH_SPACES[space_cfg["name"]](**(space_cfg.get("options") or {}))
    arch = space.validate(config["arch"])
    table = Table.load(opts.table, opts.arch_column, opts.metric_column)
    value = table.lookup(space.key(arch))
    tune.report({**space.objectives(arch), opts.metric or opts.metric_column: value})


def check_options(options: dict[str, Any]) -> None:
    """Open the table when the config is loaded, so a bad path or column fails before Ray starts."""
    opts = Options(**options)
    Table.load(opts.table, opts.arch_column, opts.metric_column)


tabular.Options = Options  # type: ignore[attr-defined]
tabular.check_options = check_options  # type: ignore[attr-defined]
