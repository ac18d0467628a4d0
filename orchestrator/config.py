"""The experiment config: one YAML file, validated once, here, with one-line errors.

Everything downstream (runner, trainables, searchers) may trust what it receives.
"""

from __future__ import annotations

import copy
import inspect
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from orchestrator.core.errors import UserError
from trainables.storage import is_uri

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
RESULTS_DIR = "nasorch_results"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Component(_Strict):
    """A registered thing by name, with its own options (each algorithm its own namespace)."""

    name: str = Field(description="a registered name (docs: Reference, Registries)")
    options: dict[str, Any] = Field(
        default_factory=dict, description="that component's own options, checked when built"
    )


class Resources(_Strict):
    cpu: float = Field(1.0, gt=0, description="CPUs per trial")
    gpu: float = Field(0.0, ge=0, description="fractions share a GPU, e.g. 0.5 = two trials")


class Constraints(_Strict):
    """Hard limits, checked on the driver before a candidate takes a trial slot."""

    max_params: float | None = Field(None, gt=0, description="most parameters a network may have")
    max_flops: float | None = Field(None, gt=0, description="most FLOPs of one forward pass")
    max_latency_ms: float | None = Field(None, gt=0, description="CPU, batch 1, median")
    max_size_mb: float | None = Field(None, gt=0, description="largest size of the weights, MB")


class Objective(_Strict):
    """A further objective next to `metric`: a reported metric or a cost (num_params, flops,
    latency_ms, size_mb)."""

    metric: str = Field(description="a reported metric, or num_params, flops, latency_ms, size_mb")
    mode: Literal["max", "min"] = Field("min", description="maximise or minimise it")


class Tracking(_Strict):
    uri: str | None = Field(None, description="MLflow tracking URI; default MLFLOW_TRACKING_URI")
    experiment: str | None = Field(None, description="MLflow experiment; default: the name")
    register_model: str | None = Field(
        None,
        pattern=NAME_PATTERN,
        description="register the best model in MLflow's model registry under this name",
    )


class WarmStart(_Strict):
    """Earlier searches as this one's memory (docs/how-to/warm-start.md)."""

    experiments: list[str] = Field(
        default_factory=list, description="MLflow experiments to learn from; default: this one"
    )
    reuse: bool = Field(True, description="answer a trial seen before from the record")
    transfer: Literal["auto", "all", "off"] = Field(
        "auto",
        description="a prior from related trials: auto (same recipe, other data), all, off",
    )
    top_k: int = Field(
        25, ge=0, description="a related task's best tried first (at most num_samples / 4)"
    )


class ExperimentConfig(_Strict):
    name: str = Field(
        pattern=NAME_PATTERN, description="names the MLflow experiment and Ray's folder"
    )
    metric: str = Field("val_accuracy", description="the reported metric to optimise")
    mode: Literal["max", "min"] = Field("max", description="maximise or minimise the metric")
    num_samples: int = Field(10, ge=1, description="number of trials")
    max_concurrent_trials: int = Field(2, ge=1, description="trials running at once")
    seed: int = Field(0, description="seeds the searcher and every trial")
    search_space: Component = Field(description="what to search: a registered space")
    trainable: Component = Field(
        Component(name="torch"), description="what a trial runs, or module:function"
    )
    searcher: Component = Field(Component(name="random"), description="what to try next")
    scheduler: Component = Field(Component(name="fifo"), description="when to stop a trial")
    resources: Resources = Field(Resources(), description="what each trial holds")
    max_failures: int = Field(0, ge=0, description="retries of a failing trial, from checkpoint")
    max_consecutive_failures: int = Field(
        5, ge=1, description="stop the search when this many trials in a row end in error"
    )
    constraints: Constraints = Field(
        Constraints(), description="a candidate over a limit is never trained"
    )
    objectives: list[Objective] = Field(
        default_factory=list, description="further objectives: a multi-objective search"
    )
    dedupe: bool = Field(True, description="reuse the result of an architecture seen before")
    time_budget: str | float | None = Field(
        None, description="wall-clock budget (90s, 30m, 2h): the search ends when it is spent"
    )
    accelerator_hours: float | None = Field(
        None, gt=0, description="GPU-hours the trials may hold (time x resources.gpu)"
    )
    # A cluster sets NASORCH_STORAGE_PATH to storage all its nodes share (cluster.yaml does).
    storage_path: str = Field(
        default_factory=lambda: os.environ.get("NASORCH_STORAGE_PATH") or f"{RESULTS_DIR}/ray",
        description="Ray's results and checkpoints: a folder or a URI (s3://...)",
    )
    tracking: Tracking = Field(Tracking(), description="where the MLflow records go")
    warm_start: WarmStart | None = Field(None, description="learn from earlier searches")
    # The config file's folder: a user's `module:function` is imported from there too.
    _source_dir: str | None = PrivateAttr(default=None)

    @field_validator("time_budget")
    @classmethod
    def _a_duration(cls, value: str | float | None) -> str | float | None:
        if value is not None:
            parse_duration(value)
        return value

    @model_validator(mode="after")
    def _gpus_to_count(self) -> ExperimentConfig:
        if self.accelerator_hours is not None and self.resources.gpu == 0:
            raise ValueError(
                "accelerator_hours: the trials use no GPU (resources.gpu: 0); "
                "use time_budget for a wall-clock budget"
            )
        return self

    # ---- derived -------------------------------------------------------------------------
    def time_budget_s(self) -> float | None:
        return None if self.time_budget is None else parse_duration(self.time_budget)

    def resolved_storage_path(self) -> str:
        if is_uri(self.storage_path):  # a cloud URI that Ray supports (s3://, gs://, ...)
            return self.storage_path
        return str(Path(self.storage_path).expanduser().resolve())

    def driver_folder(self) -> str:
        """Where nasorch's own files of its searches go: the storage folder, or with cloud
        storage (s3://...) nasorch_results/ray on the driver's disk (they remember where Ray's
        folder is)."""
        storage = self.resolved_storage_path()
        return str(Path(RESULTS_DIR, "ray").resolve()) if is_uri(storage) else storage

    def tracking_uri(self) -> str:
        uri = self.tracking.uri or os.environ.get("MLFLOW_TRACKING_URI")
        return uri or default_tracking_uri()

    def module_dirs(self) -> list[str]:
        """Where a user's modules are looked for beyond the Python path: the config's folder,
        then the working folder."""
        return list(dict.fromkeys(d for d in (self._source_dir, os.getcwd()) if d))

    def experiment_name(self) -> str:
        return self.tracking.experiment or self.name

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*")


def parse_duration(value: str | float) -> float:
    """Seconds in "90", 90, "90s", "30m", "2h", "1.5h", "1d"; ValueError otherwise."""
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = _DURATION.fullmatch(value)
        if not match:
            raise ValueError(f"{value!r} is not a duration such as 90s, 30m, 2h or 1d")
        seconds = float(match.group(1)) * UNITS[match.group(2) or "s"]
    if seconds <= 0:
        raise ValueError(f"{value!r}: a duration must be positive")
    return seconds


def default_tracking_uri() -> str:
    return f"sqlite:///{Path(RESULTS_DIR, 'mlflow.db').resolve()}"


# ---- loading ------------------------------------------------------------------------------


def parse_config(
    source: ExperimentConfig | dict | str | os.PathLike,
    overrides: list[str] | None = None,
    *,
    source_dir: str | None = None,
) -> ExperimentConfig:
    """A config whose schema is valid, from an object, a dict or a YAML path, with `--set`
    overrides. Names and options of components are checked when they are built
    (`components.build`; `components.load_config` does both). `source_dir` (default: the YAML
    file's folder) is where user modules are also looked for."""
    if isinstance(source, ExperimentConfig):
        data = source.model_dump()
        source_dir = source_dir or source._source_dir
    elif isinstance(source, dict):
        data = copy.deepcopy(source)
    else:
        data = _read_yaml(Path(source))
        source_dir = source_dir or str(Path(source).resolve().parent)
        absolute_paths(data, source_dir)  # a file's paths are relative to the file's folder
    for item in overrides or []:
        _apply_override(data, item)
    absolute_paths(data, os.getcwd())  # the command line's and the API's: to the working folder
    try:
        cfg = ExperimentConfig.model_validate(data)
    except ValidationError as e:
        raise UserError(format_validation_error(e, ExperimentConfig)) from None
    cfg._source_dir = source_dir
    return cfg


# Options that name files, by component: made absolute when the config is read, so that a trial
# finds them whatever its working folder (Ray runs each trial in a folder of its own). A dataset
# mapping's are, in any component's options.
PATH_OPTIONS = {
    ("trainable", "tabular"): ("table",),
    ("trainable", "curve"): ("path",),
    ("search_space", "table"): ("path",),
}
DATASET_PATH_KEYS = ("path", "test", "data_dir")


def absolute_paths(data: dict, base: str) -> None:
    """Relative file paths of the raw config `data` made absolute from `base`, in place. URIs
    (s3://...) and paths under ~ (each node's own home) are left as written."""
    for section in ("search_space", "trainable", "searcher"):
        component = data.get(section)
        options = component.get("options") if isinstance(component, dict) else None
        if not isinstance(options, dict):
            continue
        keys = [(options, k) for k in PATH_OPTIONS.get((section, component.get("name")), ())]
        dataset = options.get("dataset")
        if isinstance(dataset, dict):
            keys += [(dataset, k) for k in DATASET_PATH_KEYS]
        for holder, key in keys:
            if key in holder:
                holder[key] = _absolute(holder[key], base)


def _absolute(value: Any, base: str) -> Any:
    if not isinstance(value, str) or not value or is_uri(value) or value.startswith("~"):
        return value
    return os.path.normpath(os.path.join(base, value))


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise UserError(f"{path}: invalid YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of config keys at the top level")
    return data


def _apply_override(data: dict, item: str) -> None:
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise UserError(f"--set: expected dotted.key=value, got {item!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    parts = key.strip().split(".")
    field = ExperimentConfig.model_fields.get(parts[0])
    if parts[0] not in data and field is not None and isinstance(field.default, BaseModel):
        data[parts[0]] = (
            field.default.model_dump()
        )  # --set trainable.options.x keeps the default name
    node = data
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise UserError(f"--set {key}: {'.'.join(parts[: i + 1])} is not a mapping")
        node = child
    node[parts[-1]] = value


def format_validation_error(e: ValidationError, model: type[BaseModel], prefix: str = "") -> str:
    """The first pydantic error as one line: `field.path: problem (allowed ...)`."""
    err = e.errors()[0]
    loc = [str(p) for p in err["loc"]]
    where = prefix + ".".join(loc) if loc else prefix.rstrip(".") or "config"
    if err["type"] == "extra_forbidden":
        allowed = _fields_at(model, loc[:-1])
        return f"{where}: unknown key (allowed: {', '.join(allowed)})"
    if err["type"] == "missing":
        return f"{where}: required"
    msg = err["msg"].removeprefix("Value error, ")
    return f"{where}: {msg}, got {err.get('input')!r}"


def _fields_at(model: type[BaseModel], loc: list[str]) -> list[str]:
    cls: Any = model
    for part in loc:
        field = getattr(cls, "model_fields", {}).get(part)
        if field is None:
            return []
        cls = field.annotation
    return list(getattr(cls, "model_fields", {}))


# ---- registries ---------------------------------------------------------------------------


def check_options(field: str, name: str, factory: Any, options: dict, reserved=()) -> None:
    """Unknown options fail here, naming the allowed ones, before anything is built."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    allowed = [
        n
        for n, p in params.items()
        if n not in reserved and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    for key in options:
        if key not in allowed:
            listed = ", ".join(allowed) or "none"
            raise UserError(
                f"{field}.options: unknown option {key!r} for {name} (allowed: {listed})"
            )


def lookup(field: str, registry: dict, name: str) -> Any:
    if name not in registry:
        raise UserError(f"{field}.name: {name!r} is not one of {', '.join(sorted(registry))}")
    return registry[name]
