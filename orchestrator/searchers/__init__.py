"""Searchers ("what to try"): one small module each, behind one registry.

`STRATEGIES` maps a config name to a Strategy class or factory; adding a searcher is one module
plus one line here.
"""

from functools import partial

from orchestrator.searchers.base import Strategy
from orchestrator.searchers.darts import DartsSearch
from orchestrator.searchers.evolution import RegularizedEvolution
from orchestrator.searchers.fidelity import FidelitySearch
from orchestrator.searchers.guided import GuidedSearch
from orchestrator.searchers.local import LocalSearch
from orchestrator.searchers.optuna import OptunaStrategy, to_optuna
from orchestrator.searchers.random import RandomSearch
from orchestrator.searchers.reinforce import Reinforce
from orchestrator.searchers.rungs import RungGuidedSearch
from orchestrator.searchers.supernet import SupernetSearch

STRATEGIES = {
    "random": RandomSearch,
    "rea": RegularizedEvolution,
    "local": LocalSearch,
    "reinforce": Reinforce,
    "guided": GuidedSearch,
    "rungs": RungGuidedSearch,
    "fidelity": FidelitySearch,
    "supernet": SupernetSearch,
    "darts": DartsSearch,
    "darts_pt": partial(DartsSearch, select="perturbation", arch_lr=0.0),
    "cmaes": partial(OptunaStrategy, sampler="cmaes"),
    "nsga2": partial(OptunaStrategy, sampler="nsga2"),
    "tpe": partial(OptunaStrategy, sampler="tpe"),
    "optuna": OptunaStrategy,
}

__all__ = [
    "STRATEGIES",
    "OptunaStrategy",
    "RandomSearch",
    "Strategy",
    "to_optuna",
]
