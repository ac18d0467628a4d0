"""Builds the pieces of a search from a validated config: space, strategy, trainable, scheduler.

Every failure here is the user's (a bad name or option) and becomes a one-line UserError.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from orchestrator.config import ExperimentConfig, check_options, format_validation_error, lookup
from orchestrator.errors import UserError
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
    return _construct(
        "searcher",
        cfg.searcher.name,
        factory,
        cfg.searcher.options,
        space,
        mode=cfg.mode,
        seed=cfg.seed,
    )


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
        fn = _import_function(name)
    else:
        fn = lookup("trainable", TRAINABLES, name)
    options = dict(cfg.trainable.options)
    model = getattr(fn, "Options", None)
    if model is not None:
        try:
            options = model(**options).model_dump()
        except ValidationError as e:
            raise UserError(format_validation_error(e, model, "trainable.options.")) from None
    max_epochs = options.get("epochs", DEFAULT_MAX_EPOCHS)
    return fn, options, int(max_epochs)


def _import_function(path: str) -> Callable:
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise UserError(f"trainable.name: cannot import module {module_name!r} ({e})") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise UserError(f"trainable.name: module {module_name!r} has no function {attr!r}")
    return fn
