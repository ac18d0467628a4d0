"""The generated reference pages, and the MkDocs hook that adds them to the site at build time.

Each page is built from the code that defines it, so a field, option, command or tag added there
shows up without anyone editing the docs: the config schema from the pydantic models
(`orchestrator.config`), the CLI from the argparse parser behind the `nasorch` entry point, the
registries' options from their factories' signatures and trainables' `Options` models, and the
MLflow tags from `orchestrator/core/tags.py`. Importing these modules starts neither Ray nor MLflow.
`tests/test_docs.py` compares the config page with the schema.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import sys
import types
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `mkdocs build` from the repository root, nasorch not installed
    sys.path.insert(0, str(ROOT))

# Generated page -> its generator; the site's nav names these paths.
PAGES: dict[str, Callable[[], str]] = {}


def page(path: str) -> Callable[[Callable[[], str]], Callable[[], str]]:
    def register(fn: Callable[[], str]) -> Callable[[], str]:
        PAGES[path] = fn
        return fn

    return register


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


# ---- config schema --------------------------------------------------------------------------


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:  # the values themselves are in the "allowed" column
        return " or ".join(sorted({type(a).__name__ for a in args}))
    if origin in (typing.Union, types.UnionType):
        return " or ".join("none" if a is type(None) else _type_name(a) for a in args)
    if origin in (list, dict):
        return f"{origin.__name__}[{', '.join(_type_name(a) for a in args)}]"
    if annotation is Any:
        return "any"
    return getattr(annotation, "__name__", str(annotation))


def _nested_model(annotation: Any) -> tuple[type | None, bool]:
    """The pydantic model a field holds (directly, optionally, or as list items), and whether
    it is a list of them."""
    from pydantic import BaseModel

    args = typing.get_args(annotation) or (annotation,)
    is_list = typing.get_origin(annotation) is list
    for arg in args:
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg, is_list
    return None, False


def _allowed(field: Any) -> str:
    """Bounds, pattern and choices pydantic checks for a field, in words."""
    out = []
    for meta in field.metadata:
        for attr, sign in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
            value = getattr(meta, attr, None)
            if value is not None:
                out.append(f"{sign} {value}")
        pattern = getattr(meta, "pattern", None)
        if pattern:
            out.append(f"matches `{pattern}`")
    if typing.get_origin(field.annotation) is typing.Literal:
        out.append(", ".join(f"`{a}`" for a in typing.get_args(field.annotation)))
    return "; ".join(out)


def _default(field: Any) -> str:
    from pydantic import BaseModel

    if field.is_required():
        return "(required)"
    if field.default_factory is not None:
        value = field.default_factory()
        if value in ({}, []):
            return f"`{value!r}`"
        return f"`{value}` (or `$NASORCH_STORAGE_PATH`)" if isinstance(value, str) else "`…`"
    if isinstance(field.default, BaseModel):
        return "see below"
    return "none" if field.default is None else f"`{field.default!r}`"


def config_fields(model: Any = None, prefix: str = "") -> Iterator[tuple[str, Any, Any]]:
    """Every key the schema accepts, dotted (`resources.gpu`; list items as `objectives[].x`),
    with its pydantic field and the model that holds it."""
    if model is None:
        from orchestrator.config import ExperimentConfig

        model = ExperimentConfig
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        yield key, field, model
        nested, is_list = _nested_model(field.annotation)
        if nested is not None:
            yield from config_fields(nested, f"{key}[]." if is_list else f"{key}.")


def _registry_names() -> dict[str, list[str]]:
    from orchestrator.schedulers import SCHEDULERS
    from orchestrator.searchers import STRATEGIES
    from search_spaces import SEARCH_SPACES
    from trainables import TRAINABLES

    return {
        "search_space.name": sorted(SEARCH_SPACES),
        "searcher.name": sorted(STRATEGIES),
        "scheduler.name": sorted(SCHEDULERS),
        "trainable.name": [*sorted(TRAINABLES), "module:function"],
    }


@page("reference/config.md")
def config_page() -> str:
    names = _registry_names()
    rows = []
    for key, field, _ in config_fields():
        allowed = ", ".join(f"`{n}`" for n in names[key]) if key in names else _allowed(field)
        meaning = field.description or ""
        rows.append([f"`{key}`", _type_name(field.annotation), _default(field), allowed, meaning])
    return (
        "# Config reference\n\n"
        "*Generated from the pydantic schema in `orchestrator/config.py` when the site is "
        "built.*\n\n"
        "One YAML file per search. Every key is checked before anything starts: an unknown key "
        "or a wrong value stops with one line naming the field and what is allowed (exit "
        "status 2). `--set KEY=VALUE` overrides any key from the command line; "
        "`nasorch check CONFIG` validates and builds a config in seconds. What each "
        "component's `options` accept is in [Registries](registries.md); the ideas behind "
        "the keys are in [Config in depth](config-guide.md).\n\n"
        + _table(["key", "type", "default", "allowed", "meaning"], rows)
    )


# ---- registries -----------------------------------------------------------------------------

# Filled in by the builder from the config, not by the user (components._construct).
RESERVED = {"space", "mode", "seed", "max_t", "directions", "self", "folder"}


def _first_line(obj: Any) -> str:
    """The first paragraph of the object's own docstring (not one it inherits), else of its
    module's."""
    doc = obj.__dict__.get("__doc__") if isinstance(obj, type) else obj.__doc__
    if not doc and isinstance(obj, type):  # a class's module is its own (a registry's is not)
        doc = getattr(sys.modules.get(obj.__module__), "__doc__", None)
    doc = doc or ""
    return inspect.cleandoc(doc).split("\n\n")[0].replace("\n", " ").strip()


def _options(factory: Any) -> list[list[str]]:
    fixed = getattr(factory, "keywords", {}) or {}
    target = getattr(factory, "func", factory)
    try:
        params = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return []
    rows = []
    for p in params:
        if p.name in RESERVED or p.kind not in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD):
            continue
        if p.name in fixed:
            default = f"`{fixed[p.name]!r}` (set by this name)"
        elif p.default is p.empty:
            default = "(required)"
        else:
            default = f"`{p.default!r}`"
        kind = "" if p.annotation is p.empty else str(p.annotation).replace("typing.", "")
        rows.append([f"`{p.name}`", kind, default])
    return rows


def _describe(
    title: str, registry: dict, options: Callable[[Any], list[list[str]]], prose: str
) -> str:
    """A section per registered name: what it is (its docstring, else a link to the page that
    explains it) and its options."""
    out = [f"## {title}\n"]
    for name in sorted(registry):
        factory = registry[name]
        target = getattr(factory, "func", factory)
        out.append(f"### `{name}`\n\n{_first_line(target) or f'See {prose}.'}\n")
        rows = options(factory)
        header = ["option", "type", "default"] + (["meaning"] if rows and len(rows[0]) > 3 else [])
        out.append(_table(header, rows) if rows else "No options.\n")
    return "\n".join(out)


def _model_options(factory: Any) -> list[list[str]]:
    model = getattr(factory, "Options", None)
    if model is None:
        return []
    return [
        [f"`{k}`", _type_name(f.annotation), _default(f), f.description or ""]
        for k, f in model.model_fields.items()
    ]


@page("reference/registries.md")
def registries_page() -> str:
    from orchestrator.schedulers import SCHEDULERS
    from orchestrator.searchers import STRATEGIES
    from search_spaces import SEARCH_SPACES
    from trainables import TRAINABLES

    return "\n".join(
        [
            "# Registries: searchers, schedulers, spaces, trainables\n",
            "*Generated from the registries (`STRATEGIES`, `SCHEDULERS`, `SEARCH_SPACES`, "
            "`TRAINABLES`) when the site is built: the options are the factories' keyword "
            "arguments (or a trainable's `Options` model), as the config check reads them.*\n",
            "A config names each component and gives its options: "
            "`searcher: {name: rea, options: {population_size: 20}}`. What the algorithms do "
            "and when to use which: [Searchers](searchers.md), [Schedulers](schedulers.md), "
            "[Search spaces](search-spaces.md), [Trainables](trainables.md).\n",
            _describe(
                "Searchers (`searcher.name`)", STRATEGIES, _options, "[Searchers](searchers.md)"
            ),
            _describe(
                "Schedulers (`scheduler.name`)", SCHEDULERS, _options, "[Schedulers](schedulers.md)"
            ),
            _describe(
                "Search spaces (`search_space.name`)",
                SEARCH_SPACES,
                _options,
                "[Search spaces](search-spaces.md)",
            ),
            _describe(
                "Trainables (`trainable.name`)",
                TRAINABLES,
                _model_options,
                "[Trainables](trainables.md)",
            ),
        ]
    )


# ---- CLI ------------------------------------------------------------------------------------


def _parser() -> Any:
    """The `nasorch` parser with every sub-command's arguments, found through the console
    script's entry point (a stable name wherever the CLI module lives)."""
    from importlib.metadata import entry_points

    (entry,) = [e for e in entry_points(group="console_scripts") if e.name == "nasorch"]
    module = importlib.import_module(entry.value.split(":")[0])
    names = list(getattr(module, "EXTERNAL", {}))
    return module.build_parser(["run", "resume", "ui", *names])


@page("reference/cli.md")
def cli_page() -> str:
    import argparse

    os.environ["COLUMNS"] = "100"  # argparse wraps help to the terminal: fixed for the page
    parser = _parser()
    out = [
        "# Command line\n",
        "*Generated from the `nasorch` argparse parsers when the site is built.*\n",
        "Every user error is one line on stderr naming the field and exit status 2; records "
        "MLflow did not take end with exit status 3; Ctrl+C with 130.\n",
        "```text\n" + parser.format_help() + "```\n",
    ]
    for action in parser._actions:  # argparse (stdlib) keeps sub-parsers only here
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out.append(f"## `nasorch {name}`\n\n```text\n{sub.format_help()}```\n")
    return "\n".join(out)


# ---- MLflow tags ----------------------------------------------------------------------------


def tag_rows() -> list[list[str]]:
    """(tag, constant, where, note) for every tag constant in orchestrator/core/tags.py, with the
    section comment above it and the comment beside or above it."""
    path = Path(importlib.import_module("orchestrator.core.tags").__file__)
    lines = path.read_text().splitlines()
    rows, where = [], "every run"
    for node in ast.parse(path.read_text()).body:
        line = lines[node.lineno - 1]
        above = lines[node.lineno - 2].strip() if node.lineno > 1 else ""
        if above.startswith("# On "):
            where = above.lstrip("# ").strip()
        if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)):
            continue
        value = node.value.value
        if not (isinstance(value, str) and value.startswith("nasorch.")):
            continue
        note = line.split("#", 1)[1].strip() if "#" in line else ""
        if not note and above.startswith("#") and not above.startswith("# On "):
            note = "values: " + above.lstrip("# ")
        rows.append([f"`{value}`", f"`{node.targets[0].id}`", where, note])
    return rows


@page("reference/mlflow-tags.md")
def tags_page() -> str:
    return (
        "# MLflow tags\n\n"
        "*Generated from `orchestrator/core/tags.py` when the site is built.*\n\n"
        "Query them in MLflow as `tags.\"nasorch.role\" = 'search'`. The metrics nasorch "
        "logs are listed in [MLflow records](mlflow.md).\n\n"
        + _table(["tag", "constant", "on", "note"], tag_rows())
    )


# ---- the MkDocs hook ------------------------------------------------------------------------


def on_files(files: Any, config: Any) -> Any:
    """Add the generated pages to the site (MkDocs >= 1.6: File.generated)."""
    from mkdocs.structure.files import File

    for path in PAGES:
        files.append(File.generated(config, path, content=PAGES[path]()))
    return files
