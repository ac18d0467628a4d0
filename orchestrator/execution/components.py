"""Builds the pieces of a search from a parsed config, each exactly once: space, strategy,
trainable, scheduler and gate (`build`). `config.py` only checks the schema; building is where a
bad name or option is found, and every failure here is the user's and becomes a one-line
UserError. `load_config` (public) is both: a config known to build.
"""

from __future__ import annotations

import functools
import importlib
import os
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from orchestrator.config import (
    ExperimentConfig,
    check_options,
    format_validation_error,
    lookup,
    parse_config,
)
from orchestrator.core.errors import UserError
from orchestrator.core.gate import Gate
from orchestrator.schedulers import SCHEDULERS
from orchestrator.searchers import STRATEGIES, Strategy
from search_spaces import SEARCH_SPACES, SearchSpace, SearchSpaceError
from trainables import TRAINABLES
from trainables.errors import InputError

DEFAULT_MAX_EPOCHS = 100  # for user trainables that do not say how long they train


@dataclass
class Trainable:
    fn: Callable
    options: dict[str, Any]  # validated
    max_epochs: int  # a full trial's budget (DEFAULT_MAX_EPOCHS when the options do not say)
    epochs_known: bool  # the options set `epochs`: a trial with fewer was stopped early
    builder: Callable | None = None  # the user's network builder (trainable.options.model)


@dataclass
class Components:
    """Everything a search is made of, built once from its config."""

    space: SearchSpace
    strategy: Strategy
    trainable: Trainable
    scheduler: Any
    gate: Gate


def build(cfg: ExperimentConfig) -> Components:
    space = build_space(cfg)
    trainable = resolve_trainable(cfg)
    strategy, scheduler = build_strategy(cfg, space), build_scheduler(cfg, trainable)
    if hasattr(scheduler, "consult"):  # the `fidelity` scheduler decides with the model
        scheduler.consult(strategy)  # the same objects in Ray's snapshot: a resume keeps this
    return Components(
        space=space,
        strategy=strategy,
        trainable=trainable,
        scheduler=scheduler,
        gate=build_gate(cfg, space, trainable),
    )


def load_config(
    source: ExperimentConfig | dict | str | os.PathLike,
    overrides: list[str] | None = None,
    *,
    source_dir: str | None = None,
) -> ExperimentConfig:
    """A config that is valid and builds (every name and option checked), with `--set`
    overrides; raises UserError with one line."""
    cfg = parse_config(source, overrides, source_dir=source_dir)
    build(cfg)
    return cfg


def _construct(field: str, name: str, factory: Any, options: dict, *args, **kwargs) -> Any:
    check_options(field, name, factory, options, reserved=("space", "mode", "seed", "max_t"))
    try:
        return factory(*args, **kwargs, **options)
    except (ValueError, TypeError, SearchSpaceError) as e:
        msg = str(e)  # a space-language error already names its full path
        raise UserError(
            msg if msg.startswith(field) else f"{field}.options: {name}: {msg}"
        ) from None


def build_space(cfg: ExperimentConfig) -> SearchSpace:
    factory = lookup("search_space", SEARCH_SPACES, cfg.search_space.name)
    return _construct("search_space", cfg.search_space.name, factory, cfg.search_space.options)


def build_strategy(cfg: ExperimentConfig, space: SearchSpace) -> Strategy:
    modes = [cfg.mode, *(o.mode for o in cfg.objectives)]
    if len(modes) > 1 and not strategy_class(cfg.searcher.name).takes_directions:
        # Several objectives: only searchers that take Optuna-style directions (or ignore
        # values altogether) can rank them.
        if cfg.searcher.name != "random":
            multi = sorted(n for n in STRATEGIES if strategy_class(n).takes_directions)
            raise UserError(
                f"searcher.name: {cfg.searcher.name!r} optimises one objective; with "
                f"`objectives` use one of {', '.join(['random', *multi])}"
            )
    # A searcher that trains on data itself (darts) trains on the search's own: the torch
    # trainable's dataset and split, unless the searcher's options name a dataset.
    data = cfg.trainable.options if cfg.trainable.name == "torch" else None
    return make_strategy(
        cfg.searcher.name, space, mode=cfg.mode, seed=cfg.seed, options=cfg.searcher.options,
        modes=modes, data=data,
    )  # fmt: skip


def make_strategy(
    name: str,
    space: SearchSpace,
    *,
    mode: str,
    seed: int | None,
    options: dict[str, Any] | None = None,
    modes: list[str] | None = None,
    data: dict[str, Any] | None = None,
) -> Strategy:
    """The one constructor of strategies, for a real search, `nasorch bench` and the simulator.
    `modes`: every objective's mode (a searcher that `takes_directions` ranks them all; the
    others are told the first); `data`: the options naming the search's data (`dataset`,
    `val_fraction`), passed to a searcher that `takes_dataset` unless its options name one."""
    factory = lookup("searcher", STRATEGIES, name)
    cls = strategy_class(name)
    options = dict(options or {})
    extra: dict[str, Any] = {}
    if modes and len(modes) > 1 and cls.takes_directions:
        extra["directions"] = ["maximize" if m == "max" else "minimize" for m in modes]
    if cls.takes_dataset and data and "dataset" not in options:
        extra.update({k: data[k] for k in ("dataset", "val_fraction") if k in data})
    return _construct("searcher", name, factory, options, space, mode=mode, seed=seed, **extra)


def strategy_class(name: str) -> type[Strategy]:
    """The Strategy class behind a registry name (an entry may be a partial of one)."""
    factory = STRATEGIES[name]
    while isinstance(factory, functools.partial):
        factory = factory.func
    return factory


def build_gate(cfg: ExperimentConfig, space: SearchSpace, trainable: Trainable) -> Gate:
    """Costing, hard constraints and duplicate reuse, checked before a trial is started."""
    input_shape = num_classes = None
    spec = getattr(trainable.fn, "input_spec", None)  # a trainable that builds torch networks
    if spec is not None:
        input_shape, num_classes = spec(trainable.options, space)
    gate = Gate(
        space,
        limits=cfg.constraints.model_dump(),
        dedupe=cfg.dedupe,
        input_shape=input_shape,
        num_classes=num_classes,
        build=trainable.builder,
    )
    # Every limit must be something this space can be costed on (known without measuring).
    for limit in gate.limits:
        if gate.cost_metric(limit) not in gate.cost_names(space.sample(random.Random(cfg.seed))):
            raise UserError(
                f"constraints.{limit}: this search space cannot tell {gate.cost_metric(limit)}"
            )
    return gate


def build_scheduler(cfg: ExperimentConfig, trainable: Trainable) -> Any:
    factory = lookup("scheduler", SCHEDULERS, cfg.scheduler.name)
    return _construct(
        "scheduler",
        cfg.scheduler.name,
        factory,
        cfg.scheduler.options,
        max_t=trainable.max_epochs,
    )


def resolve_trainable(cfg: ExperimentConfig) -> Trainable:
    """The trainable function, its validated options and its epoch budget."""
    name = cfg.trainable.name
    if ":" in name:
        fn = import_function(name, cfg.module_dirs())
    else:
        fn = lookup("trainable", TRAINABLES, name)
    options = dict(cfg.trainable.options)
    model = getattr(fn, "Options", None)
    if model is not None:
        try:
            options = model(**options).model_dump()
        except ValidationError as e:
            raise UserError(format_validation_error(e, model, "trainable.options.")) from None
    check = getattr(fn, "check_options", None)  # e.g. the tabular trainable opens its table
    if check is not None:
        try:
            check(options)
        except (UserError, InputError) as e:
            msg = str(e)
            raise UserError(
                msg if msg.startswith("trainable") else f"trainable.options: {msg}"
            ) from None
    max_epochs = int(options.get("epochs", DEFAULT_MAX_EPOCHS))
    builder = None
    if options.get("model"):  # `module:function` building the network of an architecture
        builder = import_function(options["model"], cfg.module_dirs(), "trainable.options.model")
    return Trainable(fn, options, max_epochs, "epochs" in options, builder)


def import_function(
    path: str, search_dirs: list[str] = (), field: str = "trainable.name"
) -> Callable:
    """`module:function`, from the Python path or, failing that, from `search_dirs` (the
    config's folder and the working folder: no PYTHONPATH needed for a file next to them)."""
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name != module_name.split(".")[0] or not search_dirs:
            raise UserError(f"{field}: cannot import module {module_name!r} ({e})") from None
        sys.path.extend(d for d in search_dirs if d not in sys.path)
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as again:
            where = " and ".join(search_dirs)
            raise UserError(
                f"{field}: cannot import module {module_name!r} ({again}); looked on the "
                f"Python path and in {where}"
            ) from None
    except ImportError as e:
        raise UserError(f"{field}: cannot import module {module_name!r} ({e})") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise UserError(f"{field}: module {module_name!r} has no function {attr!r}")
    return fn
