"""A space restricted to a finite list of candidates: the rows a benchmark table can answer.

A curve source that covers only part of a space (200 of NAS-Bench-201's 15,625 cells, the
configurations of a user's past search) defines what may be proposed. `CandidateSpace` wraps
the full space and keeps every proposal inside the list: sampling draws a row, mutating moves to
a nearest other row (in the full space's `encode`), so searchers written for the full space work
unchanged and never propose what the source cannot answer.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np

from search_spaces.base import Arch, SearchSpace, SearchSpaceError

CANDIDATE_ATTR = "nasorch.candidate"  # the row an Optuna trial's proposal was moved to


class CandidateSpace(SearchSpace):
    def __init__(self, base: SearchSpace, candidates: list[Arch]):
        if not candidates:
            raise SearchSpaceError("a candidate space needs at least one candidate")
        self.base = base
        self.name = f"{base.name}[{len(candidates)} candidates]"
        self.input_layout = getattr(base, "input_layout", None)
        by_key: dict[str, Arch] = {}
        for arch in candidates:
            by_key.setdefault(base.key(arch), arch)
        self.keys = list(by_key)
        self.archs = list(by_key.values())
        self.index = {k: i for i, k in enumerate(self.keys)}
        self.codes = np.array([base.encode(a) for a in self.archs], dtype=float)
        self._near: dict[int, list[int]] = {}  # candidate -> others by distance (lazily)

    def sample(self, rng: random.Random) -> Arch:
        return self.archs[rng.randrange(len(self.archs))]

    def size(self) -> float:
        return float(len(self.archs))

    def nearest(self, code: list[float], exclude: int | None = None, k: int = 1) -> list[int]:
        d = ((self.codes - np.asarray(code, dtype=float)) ** 2).sum(1)
        if exclude is not None:
            d[exclude] = np.inf
        return [int(i) for i in np.argsort(d, kind="stable")[:k] if np.isfinite(d[i])]

    def _neighbours_of(self, i: int) -> list[int]:
        if i not in self._near:
            self._near[i] = self.nearest(self.codes[i], exclude=i, k=len(self.archs))
        return self._near[i]

    def mutate(self, arch: Arch, rng: random.Random) -> Arch:
        """The full space's mutation, moved to the candidate nearest to it (never `arch`)."""
        if len(self.archs) == 1:
            return self.archs[0]
        i = self.index.get(self.base.key(arch))
        moved = self.base.mutate(arch, rng)
        j = self.index.get(self.base.key(moved))
        if j is None or j == i:
            j = self.nearest(self.base.encode(moved), exclude=i)[0]
        return self.archs[j]

    def neighbours(self, arch: Arch, rng: random.Random, limit: int = 64) -> list[Arch]:
        """The candidates nearest to `arch`: a one-step neighbourhood of a sparse table has few
        exact one-step neighbours, so the closest rows stand in for them."""
        i = self.index.get(self.base.key(arch))
        near = self._neighbours_of(i) if i is not None else self.nearest(self.base.encode(arch))
        return [self.archs[j] for j in near[: min(limit, 8)]]

    def suggest(self, trial: Any) -> Arch:
        """Optuna proposes in the full space; the proposal is moved to the nearest candidate
        that no earlier trial of the study was moved to (else a model-based sampler keeps
        landing on the rows it already has). Which rows are taken is read from the study, so
        a restored study snaps exactly as the original would."""
        arch = self.base.suggest(trial)
        i = self.index.get(self.base.key(arch))
        study = getattr(trial, "study", None)
        if study is None:  # a replay of a known architecture (searchers' `to_optuna`)
            return self.archs[i if i is not None else self.nearest(self.base.encode(arch))[0]]
        taken = {t.user_attrs.get(CANDIDATE_ATTR) for t in study.get_trials(deepcopy=False)}
        order = [i] if i is not None else []
        order += self.nearest(self.base.encode(arch), k=len(self.archs))
        pick = next((j for j in order if self.keys[j] not in taken), order[0])
        trial.set_user_attr(CANDIDATE_ATTR, self.keys[pick])
        return self.archs[pick]

    def validate(self, arch: Arch) -> Arch:
        arch = self.base.validate(arch)
        if self.base.key(arch) not in self.index:
            raise SearchSpaceError(f"{self.base.describe(arch)} is not one of the candidates")
        return arch

    # Everything else is the full space's.
    def encode(self, arch: Arch) -> list[float]:
        return self.base.encode(arch)

    def key(self, arch: Arch) -> str:
        return self.base.key(arch)

    def describe(self, arch: Arch) -> str:
        return self.base.describe(arch)

    def to_params(self, arch: Arch) -> dict[str, Any]:
        return self.base.to_params(arch)

    def objectives(self, arch: Arch) -> dict[str, float]:
        return self.base.objectives(arch)

    def build_model(self, arch: Arch, input_shape: tuple[int, ...], num_classes: int) -> Any:
        return self.base.build_model(arch, input_shape, num_classes)


PARAM_PREFIX = "param."  # a table's configuration columns: param.<name>


def table_space(path: str, space: str | None = None) -> CandidateSpace:
    """`search_space: {name: table, options: {path: curves.csv}}`: the configurations of a
    table (a curves CSV, docs/tutorials/choosing.md) and nothing else. `space` names the space
    whose keys its `arch` column holds (e.g. nb201); without it the `param.<name>` columns
    define the space."""
    import pandas as pd

    try:
        df = pd.read_csv(path)
    except Exception as e:
        raise SearchSpaceError(f"path: {path} cannot be read as CSV ({e})") from None
    return table_candidates(df, space)[0]


def table_candidates(df: Any, space: str | None = None) -> tuple[CandidateSpace, list[Arch]]:
    """The candidate space of a table's rows, and each row's architecture."""
    params = [c for c in df.columns if str(c).startswith(PARAM_PREFIX)]
    if params:
        base: SearchSpace = _space_of(df[params])
        archs = [_row_arch(base, row) for row in df[params].itertuples(index=False)]
    elif "arch" in df.columns:
        from search_spaces import SEARCH_SPACES

        if space not in SEARCH_SPACES:
            raise SearchSpaceError(
                f"an 'arch' column needs `space`, one of {', '.join(SEARCH_SPACES)}"
            )
        base = SEARCH_SPACES[space]()
        parse = getattr(base, "from_string", None)
        if parse is None:
            raise SearchSpaceError(f"space {space!r} cannot parse the 'arch' column's keys")
        column = df["arch"].astype(str).str.strip()
        parsed = {k: parse(k) for k in column.unique()}
        archs = [parsed[k] for k in column]
    else:
        raise SearchSpaceError("no 'arch' column and no 'param.<name>' columns")
    return CandidateSpace(base, archs), archs


def _space_of(columns: Any) -> SearchSpace:
    """The space of `param.<name>` columns: numbers become ranges, anything else choices."""
    import pandas as pd

    from search_spaces.language import Choice, Fixed, Float, Int, Space

    params: dict[str, Any] = {}
    for col in columns.columns:
        values = columns[col]
        numeric = pd.to_numeric(values, errors="coerce")
        key = col[len(PARAM_PREFIX) :]
        if numeric.notna().all() and numeric.nunique() > 1:
            low, high = float(numeric.min()), float(numeric.max())
            log = low > 0 and high / low >= 100  # spans orders of magnitude: a log scale
            if bool((numeric == numeric.round()).all()):
                params[key] = Int(int(low), int(high), log=log)
            else:
                params[key] = Float(low, high, log=log)
        elif values.nunique() == 1:
            params[key] = Fixed(
                values.iloc[0].item() if hasattr(values.iloc[0], "item") else values.iloc[0]
            )
        else:
            params[key] = Choice(sorted(values.astype(str).unique()))
    return Space(params)


def _row_arch(space: Any, row: tuple) -> Arch:
    from search_spaces.language import Fixed, Float, Int

    out: dict[str, Any] = {}
    for (name, param), value in zip(space.params.items(), row, strict=True):
        if isinstance(param, Int):
            out[name] = int(value)
        elif isinstance(param, Float):
            out[name] = float(value)
        elif isinstance(param, Fixed):
            out[name] = param.value
        else:
            out[name] = str(value)
    return out
