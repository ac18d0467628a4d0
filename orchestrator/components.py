"""Builds the pieces of a search from a validated config: space, strategy, trainable, scheduler.

Every failure here is the user's (a bad name or option) and becomes a one-line UserError.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from orchestrator.config import ExperimentConfig, check_options, format_validation_error, lookup
from orchestrator.errors import UserError
from orchestrator.gate import Gate
from orchestrator.schedulers import SCHEDULERS
from orchestrator.searchers import STRATEGIES, Strategy
from search_spaces import SEARCH_SPACES, SearchSpace, SearchSpaceError
from trainables import TRAINABLES

DEFAULT_MAX_EPOCHS = 100  # for user trainables that do not say how long they train


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
    factory = lookup("searcher", STRATEGIES, cfg.searcher.name)
    extra: dict[str, Any] = {}
    if cfg.objectives:
        # Several objectives: only searchers that take Optuna-style directions (or ignore
        # values altogether) can rank them.
        if "directions" in inspect.signature(factory).parameters:
            modes = [cfg.mode, *(o.mode for o in cfg.objectives)]
            extra["directions"] = ["maximize" if m == "max" else "minimize" for m in modes]
        elif cfg.searcher.name != "random":
            multi = sorted(n for n, f in STRATEGIES.items() if _takes_directions(f))
            raise UserError(
                f"searcher.name: {cfg.searcher.name!r} optimises one objective; with "
                f"`objectives` use one of {', '.join(['random', *multi])}"
            )
    return _construct(
        "searcher",
        cfg.searcher.name,
        factory,
        cfg.searcher.options,
        space,
        mode=cfg.mode,
        seed=cfg.seed,
        **extra,
    )


def _takes_directions(factory: Any) -> bool:
    try:
        return "directions" in inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False


def build_gate(cfg: ExperimentConfig, space: SearchSpace) -> Gate:
    """Costing, hard constraints and duplicate reuse, checked before a trial is started."""
    input_shape = num_classes = None
    if cfg.trainable.name == "torch":
        from trainables import datasets

        _, options, _ = resolve_trainable(cfg)
        layout = getattr(space, "input_layout", "flat")
        data = datasets.load(options["dataset"], layout, options["val_fraction"])
        input_shape, num_classes = data.input_shape, data.num_classes
    gate = Gate(
        space,
        limits=cfg.constraints.model_dump(),
        dedupe=cfg.dedupe,
        input_shape=input_shape,
        num_classes=num_classes,
    )
    if gate.limits:  # every limit must be something this space can be costed on
        import random

        try:
            gate.violations(gate.cost(space.sample(random.Random(cfg.seed))))
        except ValueError as e:
            raise UserError(str(e)) from None
    return gate


def build_scheduler(cfg: ExperimentConfig) -> Any:
    factory = lookup("scheduler", SCHEDULERS, cfg.scheduler.name)
    _, _, max_epochs = resolve_trainable(cfg)
    return _construct(
        "scheduler", cfg.scheduler.name, factory, cfg.scheduler.options, max_t=max_epochs
    )


def resolve_trainable(cfg: ExperimentConfig) -> tuple[Callable, dict, int]:
    """(function, validated options, epochs a full trial trains)."""
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
        except UserError as e:
            msg = str(e)
            raise UserError(
                msg if msg.startswith("trainable") else f"trainable.options: {msg}"
            ) from None
    max_epochs = options.get("epochs", DEFAULT_MAX_EPOCHS)
    return fn, options, int(max_epochs)


def import_function(path: str, search_dirs: list[str] = ()) -> Callable:
    """`module:function`, from the Python path or, failing that, from `search_dirs` (the
    config's folder and the working folder: no PYTHONPATH needed for a file next to them)."""
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name != module_name.split(".")[0] or not search_dirs:
            raise UserError(f"trainable.name: cannot import module {module_name!r} ({e})") from None
        sys.path.extend(d for d in search_dirs if d not in sys.path)
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as again:
            where = " and ".join(search_dirs)
            raise UserError(
                f"trainable.name: cannot import module {module_name!r} ({again}); looked on the "
                f"Python path and in {where}"
            ) from None
    except ImportError as e:
        raise UserError(f"trainable.name: cannot import module {module_name!r} ({e})") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise UserError(f"trainable.name: module {module_name!r} has no function {attr!r}")
    return fn
