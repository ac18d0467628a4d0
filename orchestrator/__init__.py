"""nasorch: neural-architecture and hyperparameter search on Ray Tune, recorded in MLflow.

Public API:
    run(config) -> SearchResult      # config: ExperimentConfig, dict or YAML path
    resume(experiment) -> SearchResult  # continue a search that stopped (`nasorch resume`)
    search(data, budget="30m")       # hand over data, get the best model (auto_config: its config)
    load_config(source, overrides)   # validated ExperimentConfig (every component builds)
    parse_config(source, overrides)  # the schema only
    STRATEGIES, SCHEDULERS           # registries: name -> class / factory
    trial.restore / trial.report     # your own training loop, checkpointed as nasorch's
                                     # (`from orchestrator import trial`)

Names are imported on first use, so that `import orchestrator` stays light.
"""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "run": "orchestrator.execution.runner",
    "SearchResult": "orchestrator.execution.results",
    "resume": "orchestrator.execution.runner:resume_search",
    "search": "orchestrator.commands.auto",
    "auto_config": "orchestrator.commands.auto",
    "ExperimentConfig": "orchestrator.config",
    "load_config": "orchestrator.execution.components",
    "parse_config": "orchestrator.config",
    "UserError": "orchestrator.core.errors",
    "SCHEDULERS": "orchestrator.schedulers",
    "STRATEGIES": "orchestrator.searchers",
    "Strategy": "orchestrator.searchers",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:  # "module" or "module:attribute" where the public name differs
        module, _, attribute = _EXPORTS[name].partition(":")
        return getattr(import_module(module), attribute or name)
    raise AttributeError(f"module 'orchestrator' has no attribute {name!r}")
