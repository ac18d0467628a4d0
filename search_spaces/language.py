"""A small search-space language: choices, int/float ranges, fixed values and repeated blocks.

The same definition serves every searcher: `sample`/`mutate`/`encode`/`key` for our own
strategies and `suggest` for Optuna's define-by-run API. It is written in Python

    Space({"layers": Repeat(1, 4, {"width": Choice([64, 128])}), "lr": Float(1e-4, 0.1, log=True)})

or in YAML (see `parse_params`), where `[a, b]` is shorthand for a choice and a bare scalar is
a fixed value. A repeated block's parameters exist only for the blocks the depth switches on,
so they are conditional on the depth, as in Optuna's define-by-run spaces.
"""

from __future__ import annotations

import math
import random
from abc import ABC, abstractmethod
from typing import Any

from search_spaces.base import Arch, SearchSpace, SearchSpaceError

Scalar = str | int | float | bool | None


class Param(ABC):
    """One decision of a space."""

    width: int = 0  # length of encode()'s output
    tunable: bool = True

    @abstractmethod
    def sample(self, rng: random.Random) -> Any: ...

    @abstractmethod
    def mutate(self, value: Any, rng: random.Random) -> Any: ...

    @abstractmethod
    def encode(self, value: Any) -> list[float]: ...

    @abstractmethod
    def suggest(self, trial: Any, name: str) -> Any: ...

    @abstractmethod
    def check(self, value: Any, path: str) -> None: ...

    def flat(self, name: str, value: Any) -> dict[str, Any]:
        return {name: value}

    def size(self) -> float:
        """Distinct values (math.inf for a continuous range)."""
        return math.inf


class Fixed(Param):
    tunable = False

    def __init__(self, value: Any):
        self.value = value

    def sample(self, rng: random.Random) -> Any:
        return self.value

    def size(self) -> float:
        return 1

    def mutate(self, value: Any, rng: random.Random) -> Any:
        return self.value

    def encode(self, value: Any) -> list[float]:
        return []

    def suggest(self, trial: Any, name: str) -> Any:
        return self.value

    def check(self, value: Any, path: str) -> None:
        if value != self.value:
            raise SearchSpaceError(f"{path}: must be the fixed value {self.value!r}, got {value!r}")


class Choice(Param):
    def __init__(self, values: list[Scalar]):
        if not isinstance(values, (list, tuple)) or not values:
            raise SearchSpaceError("choice needs a non-empty list of values")
        if len(set(map(repr, values))) != len(values):
            raise SearchSpaceError(f"choice values must be distinct, got {list(values)}")
        self.values = list(values)
        self.width = len(values)
        self.tunable = len(values) > 1

    def sample(self, rng: random.Random) -> Any:
        return rng.choice(self.values)

    def size(self) -> float:
        return len(self.values)

    def mutate(self, value: Any, rng: random.Random) -> Any:
        others = [v for v in self.values if v != value]
        return rng.choice(others) if others else value

    def encode(self, value: Any) -> list[float]:
        return [1.0 if v == value else 0.0 for v in self.values]

    def suggest(self, trial: Any, name: str) -> Any:
        return trial.suggest_categorical(name, self.values)

    def check(self, value: Any, path: str) -> None:
        if value not in self.values:
            raise SearchSpaceError(f"{path}: {value!r} is not one of {self.values}")


class _Range(Param):
    """Shared scaling for Int and Float: values map to [0, 1], on a log scale if asked."""

    width = 1
    kind = "range"

    def __init__(self, low: float, high: float, log: bool = False):
        if low > high:
            raise SearchSpaceError(f"{self.kind} range has low > high ({low} > {high})")
        if log and low <= 0:
            raise SearchSpaceError(f"{self.kind} range with log: true needs low > 0, got {low}")
        self.low, self.high, self.log = low, high, bool(log)
        self.tunable = low < high

    def _to_unit(self, value: float) -> float:
        if self.high == self.low:
            return 0.0
        if self.log:
            return (math.log(value) - math.log(self.low)) / (
                math.log(self.high) - math.log(self.low)
            )
        return (value - self.low) / (self.high - self.low)

    def _from_unit(self, u: float) -> float:
        u = min(1.0, max(0.0, u))
        if self.log:
            value = math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        else:
            value = self.low + u * (self.high - self.low)
        # exp(log(high)) can round past high, and check() would then refuse the sample.
        return min(self.high, max(self.low, value))

    def encode(self, value: Any) -> list[float]:
        return [self._to_unit(value)]

    def check(self, value: Any, path: str) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SearchSpaceError(f"{path}: expected a number, got {value!r}")
        if not self.low <= value <= self.high:
            raise SearchSpaceError(f"{path}: {value} is outside [{self.low}, {self.high}]")


class Int(_Range):
    kind = "int"

    def __init__(self, low: int, high: int, log: bool = False):
        super().__init__(int(low), int(high), log)

    def size(self) -> float:
        return self.high - self.low + 1

    def sample(self, rng: random.Random) -> int:
        if not self.log:
            return rng.randint(self.low, self.high)
        # Uniform in log space over the closed integer range.
        return min(self.high, max(self.low, round(self._from_unit(rng.random()))))

    def mutate(self, value: int, rng: random.Random) -> int:
        if not self.tunable:
            return value
        for _ in range(16):
            cand = round(self._from_unit(self._to_unit(value) + rng.gauss(0.0, 0.2)))
            cand = min(self.high, max(self.low, cand))
            if cand != value:
                return cand
        return value + 1 if value < self.high else value - 1

    def suggest(self, trial: Any, name: str) -> int:
        return trial.suggest_int(name, self.low, self.high, log=self.log)

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, int) or isinstance(value, bool):
            raise SearchSpaceError(f"{path}: expected an integer, got {value!r}")
        super().check(value, path)


class Float(_Range):
    kind = "float"

    def __init__(self, low: float, high: float, log: bool = False):
        super().__init__(float(low), float(high), log)

    def sample(self, rng: random.Random) -> float:
        return self._from_unit(rng.random())

    def mutate(self, value: float, rng: random.Random) -> float:
        if not self.tunable:
            return value
        return self._from_unit(self._to_unit(value) + rng.gauss(0.0, 0.2))

    def suggest(self, trial: Any, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, log=self.log)


class Repeat(Param):
    """A variable number of blocks; each block's parameters exist only if the block does."""

    def __init__(self, min: int, max: int, block: dict[str, Param]):
        if min < 0 or min > max:
            raise SearchSpaceError(f"repeat needs 0 <= min <= max, got min={min}, max={max}")
        if not block:
            raise SearchSpaceError("repeat needs a non-empty block")
        self.min, self.max, self.block = int(min), int(max), dict(block)
        self._depth = Int(self.min, self.max)
        # A fixed depth of fixed blocks has nothing to mutate; Space.mutate must skip it.
        self.tunable = self.min < self.max or any(p.tunable for p in self.block.values())
        self.block_width = sum(p.width for p in self.block.values())
        # Depth, then one presence bit and the block's encoding per slot (zeros when absent).
        self.width = 1 + self.max * (1 + self.block_width)

    def size(self) -> float:
        per_block = math.prod(p.size() for p in self.block.values())
        return sum(per_block**n for n in range(self.min, self.max + 1))

    def _block(self, rng: random.Random) -> dict[str, Any]:
        return {k: p.sample(rng) for k, p in self.block.items()}

    def sample(self, rng: random.Random) -> list[dict[str, Any]]:
        return [self._block(rng) for _ in range(self._depth.sample(rng))]

    def mutate(self, value: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
        value = [dict(b) for b in value]
        tunable = [k for k, p in self.block.items() if p.tunable]
        moves = []
        if len(value) < self.max:
            moves.append("grow")
        if len(value) > self.min:
            moves.append("shrink")
        if value and tunable:
            moves += ["edit"] * 2  # editing a block is the finer move; prefer it
        move = rng.choice(moves) if moves else "none"
        if move == "grow":
            value.insert(rng.randint(0, len(value)), self._block(rng))
        elif move == "shrink":
            value.pop(rng.randrange(len(value)))
        elif move == "edit":
            i, k = rng.randrange(len(value)), rng.choice(tunable)
            value[i][k] = self.block[k].mutate(value[i][k], rng)
        return value

    def encode(self, value: list[dict[str, Any]]) -> list[float]:
        out = self._depth.encode(len(value))
        for i in range(self.max):
            if i < len(value):
                out.append(1.0)
                for k, p in self.block.items():
                    out += p.encode(value[i][k])
            else:
                out += [0.0] * (1 + self.block_width)
        return out

    def suggest(self, trial: Any, name: str) -> list[dict[str, Any]]:
        n = trial.suggest_int(name, self.min, self.max)
        return [
            {k: p.suggest(trial, f"{name}.{i}.{k}") for k, p in self.block.items()}
            for i in range(n)
        ]

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, list):
            raise SearchSpaceError(f"{path}: expected a list of blocks, got {value!r}")
        if not self.min <= len(value) <= self.max:
            raise SearchSpaceError(f"{path}: {len(value)} blocks, allowed {self.min} to {self.max}")
        for i, b in enumerate(value):
            _check_dict(self.block, b, f"{path}[{i}]")

    def flat(self, name: str, value: list[dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {name: len(value)}
        for i, b in enumerate(value):
            for k, p in self.block.items():
                out.update(p.flat(f"{name}.{i}.{k}", b[k]))
        return out


def _check_dict(params: dict[str, Param], value: Any, path: str) -> None:
    if not isinstance(value, dict):
        raise SearchSpaceError(f"{path}: expected a mapping, got {value!r}")
    missing, extra = set(params) - set(value), set(value) - set(params)
    if missing or extra:
        raise SearchSpaceError(
            f"{path}: keys {sorted(value)} do not match the space's {sorted(params)}"
        )
    for k, p in params.items():
        p.check(value[k], f"{path}.{k}" if path else k)


class Space(SearchSpace):
    """A search space defined by a dict of named parameters."""

    name = "custom"

    def __init__(self, params: dict[str, Param]):
        if not params:
            raise SearchSpaceError("a search space needs at least one parameter")
        self.params = dict(params)
        self._tunable = [k for k, p in self.params.items() if p.tunable]

    def sample(self, rng: random.Random) -> Arch:
        return {k: p.sample(rng) for k, p in self.params.items()}

    def size(self) -> float:
        return math.prod(p.size() for p in self.params.values())

    def mutate(self, arch: Arch, rng: random.Random) -> Arch:
        if not self._tunable:
            return dict(arch)
        out = dict(arch)
        for _ in range(32):
            k = rng.choice(self._tunable)
            out[k] = self.params[k].mutate(arch[k], rng)
            if out[k] != arch[k]:
                return out
        return out

    def encode(self, arch: Arch) -> list[float]:
        vec: list[float] = []
        for k, p in self.params.items():
            vec += p.encode(arch[k])
        return vec

    def suggest(self, trial: Any) -> Arch:
        return {k: p.suggest(trial, k) for k, p in self.params.items()}

    def to_params(self, arch: Arch) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, p in self.params.items():
            out.update(p.flat(k, arch[k]))
        return out

    def validate(self, arch: Arch) -> Arch:
        _check_dict(self.params, arch, "")
        return arch

    def describe(self, arch: Arch) -> str:
        """`lr=0.022,layers=2,layers.0.w=16`: floats to 3 significant digits (`1.23e-05` when
        small or large), so run names stay short; the exact values are in the params."""
        return ",".join(f"{k}={_short(v)}" for k, v in self.to_params(arch).items())


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


# ---- YAML / dict form -------------------------------------------------------------------------

_TYPES = ("choice", "int", "float", "fixed", "repeat")


def _number(spec: dict, field: str, path: str) -> float:
    if field not in spec:
        raise SearchSpaceError(f"{path}.{field}: required")
    value = spec[field]
    if isinstance(value, str):  # YAML 1.1 reads 1e-4 as a string
        try:
            value = float(value)
        except ValueError:
            raise SearchSpaceError(f"{path}.{field}: expected a number, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SearchSpaceError(f"{path}.{field}: expected a finite number, got {value!r}")
    return value


def parse_param(spec: Any, path: str) -> Param:
    """One parameter from its YAML form; errors name `path`."""
    if isinstance(spec, Param):
        return spec
    if isinstance(spec, list):
        spec = {"type": "choice", "values": spec}
    elif not isinstance(spec, dict):
        return Fixed(spec)
    kind = spec.get("type")
    allowed = {
        "choice": {"type", "values"},
        "int": {"type", "low", "high", "log"},
        "float": {"type", "low", "high", "log"},
        "fixed": {"type", "value"},
        "repeat": {"type", "min", "max", "block"},
    }
    if not isinstance(kind, str) or kind not in allowed:
        raise SearchSpaceError(f"{path}.type: {kind!r} is not one of {', '.join(_TYPES)}")
    unknown = set(spec) - allowed[kind]
    if unknown:
        raise SearchSpaceError(
            f"{path}.{sorted(map(str, unknown))[0]}: unknown key for type {kind} "
            f"(allowed: {', '.join(sorted(allowed[kind] - {'type'}))})"
        )
    # Each error names the offending field, so a message points at one line of the YAML.
    if kind == "choice":
        values = spec.get("values")
        if not isinstance(values, list) or not values:
            raise SearchSpaceError(f"{path}.values: needs a non-empty list")
        if any(not isinstance(v, Scalar) for v in values):
            # Optuna's categorical distributions and MLflow params hold scalars only.
            raise SearchSpaceError(f"{path}.values: must be scalars, got {values!r}")
        try:
            return Choice(values)
        except SearchSpaceError as e:
            raise SearchSpaceError(f"{path}.values: {e}") from None
    if kind == "fixed":
        if "value" not in spec:
            raise SearchSpaceError(f"{path}.value: required")
        return Fixed(spec["value"])
    if kind in ("int", "float"):
        low, high = _number(spec, "low", path), _number(spec, "high", path)
        log = spec.get("log", False)
        if not isinstance(log, bool):
            raise SearchSpaceError(f"{path}.log: must be true or false, got {log!r}")
        for field, value in (("low", low), ("high", high)):
            if kind == "int" and value != int(value):
                raise SearchSpaceError(f"{path}.{field}: int range needs an integer, got {value}")
        if low > high:
            raise SearchSpaceError(f"{path}.low: {low} is greater than high ({high})")
        if log and low <= 0:
            raise SearchSpaceError(f"{path}.low: must be > 0 with log: true, got {low}")
        return (Int if kind == "int" else Float)(low, high, log)
    lo, hi = _number(spec, "min", path), _number(spec, "max", path)
    for field, value in (("min", lo), ("max", hi)):
        if value != int(value) or value < 0:
            raise SearchSpaceError(f"{path}.{field}: needs an integer >= 0, got {value}")
    if lo > hi:
        raise SearchSpaceError(f"{path}.min: {lo} is greater than max ({hi})")
    block = spec.get("block")
    if not isinstance(block, dict) or not block:
        raise SearchSpaceError(f"{path}.block: needs a non-empty mapping of parameters")
    return Repeat(int(lo), int(hi), parse_params(block, f"{path}.block"))


def parse_params(spec: Any, path: str = "params") -> dict[str, Param]:
    if not isinstance(spec, dict) or not spec:
        raise SearchSpaceError(f"{path}: expected a non-empty mapping of parameter names")
    return {str(k): parse_param(v, f"{path}.{k}") for k, v in spec.items()}
