"""Optuna samplers (TPE, CMA-ES, NSGA-II, ...) as a Strategy, through ask/tell.

Ray's stock OptunaSearch has been reported to run trials one at a time; here every `ask` opens a
new Optuna trial at once, so as many trials run concurrently as the runner allows.
The only conversion between our architectures and Optuna's parameters is `to_optuna`, a pure
function that replays an architecture through the space's own define-by-run `suggest`.

TPE's ask costs time linear in the trials it has seen (Optuna rebuilds every trial's parameters
in Python on each ask), so a long search bounds what the sampler sees: past `max_history` (500)
finished trials (and again each time half as many more have finished), the study is rebuilt
from the best trials TPE's own split would put in its "good" group and a uniform, seeded
sample of the rest. The good group is then exactly the full history's, and the rest is an
unbiased sample of the "bad" density, so proposals change little while the cost stops growing.
"""

from __future__ import annotations

import base64
import pickle
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    distribution_to_json,
    json_to_distribution,
)
from optuna.trial import TrialState, create_trial

from orchestrator.compat import optuna_set_search_space, optuna_vectorised_truncnorm
from orchestrator.searchers.base import Strategy, Value
from orchestrator.searchers.batched_tpe import BatchedTPESampler
from search_spaces.base import Arch, SearchSpace

# TPE's "good" group is at most 25 trials (Optuna's default gamma): a bounded history keeps them.
KEEP_BEST = 25

SAMPLERS = {
    "tpe": BatchedTPESampler,  # Optuna's TPE; one fit serves several asks past 250 trials
    "cmaes": optuna.samplers.CmaEsSampler,
    "nsga2": optuna.samplers.NSGAIISampler,
    "random": optuna.samplers.RandomSampler,
    "qmc": optuna.samplers.QMCSampler,
}


class FoldedIntersection:
    """The intersection of the finished trials' distributions (what Optuna's samplers model),
    folded in as each trial finishes (`fold`) instead of recomputed over the study on every ask
    (Optuna rescans back to its oldest running trial: with 256 workers under ASHA, nearly all)."""

    def __init__(self) -> None:
        self.space: dict[str, BaseDistribution] | None = None

    def fold(self, distributions: dict[str, BaseDistribution]) -> None:
        if self.space is None:
            self.space = dict(distributions)
        else:
            self.space = {k: d for k, d in self.space.items() if distributions.get(k) == d}

    def calculate(self, study: Any = None, use_cache: bool = False) -> dict[str, BaseDistribution]:
        return dict(sorted((self.space or {}).items()))


class ReplayTrial:
    """Answers `suggest_*` calls from a flat parameter dict and records the distributions."""

    def __init__(self, params: dict[str, Any]):
        self.params = params
        self.distributions: dict[str, BaseDistribution] = {}

    def _take(self, name: str, dist: BaseDistribution) -> Any:
        if name not in self.params:
            raise KeyError(f"parameter {name!r} missing from the architecture")
        self.distributions[name] = dist
        return self.params[name]

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        return self._take(name, CategoricalDistribution(list(choices)))

    def suggest_int(self, name: str, low: int, high: int, step: int = 1, log: bool = False) -> int:
        return self._take(name, IntDistribution(low, high, log=log, step=step))

    def suggest_float(self, name: str, low: float, high: float, *, step=None, log=False) -> float:
        return self._take(name, FloatDistribution(low, high, log=log, step=step))


def to_optuna(space: SearchSpace, arch: Arch) -> tuple[dict[str, Any], dict[str, BaseDistribution]]:
    """An architecture as Optuna params and distributions (only the decisions it really has)."""
    replay = ReplayTrial(space.to_params(arch))
    rebuilt = space.suggest(replay)
    if space.key(rebuilt) != space.key(arch):
        raise ValueError("the space's suggest() does not reproduce the architecture")
    return {k: replay.params[k] for k in replay.distributions}, replay.distributions


class OptunaStrategy(Strategy):
    """Any Optuna sampler, driven by ask/tell; several objectives when `directions` has several."""

    takes_directions = True

    def __init__(
        self,
        space: SearchSpace,
        *,
        mode: str = "max",
        seed: int | None = None,
        sampler: str = "tpe",
        sampler_options: dict[str, Any] | None = None,
        directions: list[str] | None = None,
        max_history: int | None = 500,
    ):
        super().__init__(space, mode=mode, seed=seed)
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler {sampler!r} is not one of {', '.join(SAMPLERS)}")
        self.sampler_name = sampler
        self.sampler_options = dict(sampler_options or {})
        self.directions = directions or ["maximize" if mode == "max" else "minimize"]
        if max_history is not None and max_history < 2 * KEEP_BEST:
            raise ValueError(f"max_history must be >= {2 * KEEP_BEST} or null, got {max_history}")
        # TPE with one objective (its "good" group is the best 25), CMA-ES and NSGA-II (their
        # state is in their latest generations' trials); not QMC or random, which read none.
        bounded = sampler in ("cmaes", "nsga2") or (sampler == "tpe" and len(self.directions) == 1)
        self.max_history = max_history if bounded else None
        self._told = 0  # trials told in the whole search (the study may hold fewer)
        self._new_study()

    def _new_study(self, sampler: Any = None) -> None:
        if sampler is None:
            sampler = SAMPLERS[self.sampler_name](seed=self.seed, **self.sampler_options)
            self._space = FoldedIntersection()
            optuna_set_search_space(sampler, self._space)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        optuna_vectorised_truncnorm()
        self.study = optuna.create_study(directions=self.directions, sampler=sampler)
        self._pending: dict[str, list[optuna.trial.Trial]] = defaultdict(list)
        self._finished = 0  # trials finished in this study (rebuilt past max_history)

    def _bound_history(self) -> None:
        """Past 1.5 x `max_history` finished trials, a new study with the best `KEEP_BEST` and a
        seeded uniform sample of the rest: `max_history` in all (amortised O(1) per tell)."""
        if self.max_history is None or self._finished <= self.max_history * 3 // 2:
            return
        done = self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        ranked = [] if self.multi_objective else sorted(
            done, key=lambda t: t.value, reverse=self.directions[0] == "maximize"
        )  # fmt: skip
        best = ranked[:KEEP_BEST]
        if self.sampler_name == "tpe":  # an unbiased sample of TPE's "bad" density
            rest = ranked[KEEP_BEST:]
            keep = best + self.rng.sample(rest, min(len(rest), self.max_history - len(best)))
        else:  # generational (CMA-ES, NSGA-II): their last generations, whose attrs hold
            # the optimizer and generation numbers they go on from, and the best so far
            latest = done[-(self.max_history - len(best)) :]
            keep = list({t.number: t for t in best + latest}.values())
        keep.sort(key=lambda t: t.number)  # in the order they were told
        pending = self._pending  # trials still running stay in the old study until told
        self._new_study(self.study.sampler)
        self._pending = pending
        self.study.add_trials(keep)
        self._finished = len(keep)

    @property
    def multi_objective(self) -> bool:
        return len(self.directions) > 1

    def ask(self) -> Arch:
        if isinstance(self.study.sampler, BatchedTPESampler):
            self.study.sampler.finished = self._told
        trial = self.study.ask()
        arch = self.space.suggest(trial)
        self._pending[self.space.key(arch)].append(trial)
        return arch

    def update(self, arch: Arch, value: Value) -> None:
        waiting = self._pending.get(self.space.key(arch))
        values = None if value is None else _as_list(value)
        self._finished += 1
        self._told += 1
        if waiting and waiting[0].study is self.study:
            trial = waiting.pop(0)
            if values is None:
                self.study.tell(trial, state=TrialState.FAIL)
            else:
                self._space.fold(trial.distributions)
                self.study.tell(trial, values)
            self._bound_history()
            return
        attrs: dict[str, Any] = {}
        if waiting:  # asked before the study was rebuilt: recorded in the new one, with the
            # attributes its sampler gave it when asked (CMA-ES's and NSGA-II's generation)
            trial = waiting.pop(0)
            params, dists = trial.params, trial.distributions
            asked = trial.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            attrs = next((t.system_attrs for t in asked if t.number == trial.number), {})
        else:  # an architecture this study did not ask for (restored or warm-started)
            params, dists = to_optuna(self.space, arch)
        if values is None:
            self.study.add_trial(
                create_trial(params=params, distributions=dists, state=TrialState.FAIL)
            )
        else:
            self._space.fold(dists)
            self.study.add_trial(
                create_trial(params=params, distributions=dists, values=values, system_attrs=attrs)
            )
        self._bound_history()

    def state(self) -> dict[str, Any]:
        trials = []
        for t in self.study.get_trials(deepcopy=False):
            if t.state in (TrialState.COMPLETE, TrialState.FAIL):
                trials.append(
                    {
                        "params": t.params,
                        "distributions": {
                            k: distribution_to_json(d) for k, d in t.distributions.items()
                        },
                        "values": t.values,
                        "state": t.state.name,
                        # CMA-ES keeps its optimizer here (Optuna's own serialised form).
                        "system_attrs": t.system_attrs,
                        "user_attrs": t.user_attrs,  # e.g. a candidate space's row
                    }
                )
        # The sampler itself (its random states: TPE's, CMA-ES's, NSGA-II's and their fallback
        # samplers'), pickled as Optuna documents for resuming a study with its sampler, so a
        # restored study draws exactly what the original would have. The trials stay JSON.
        sampler = base64.b64encode(pickle.dumps(self.study.sampler)).decode("ascii")
        return {**super().state(), "trials": trials, "sampler": sampler, "told": self._told}

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        saved = state.get("sampler")  # written by this nasorch's own state(): trusted input
        self._new_study(pickle.loads(base64.b64decode(saved)) if saved else None)
        self._space = FoldedIntersection()  # folded again from the trials below
        optuna_set_search_space(self.study.sampler, self._space)
        for t in state["trials"]:
            dists = {k: json_to_distribution(d) for k, d in t["distributions"].items()}
            st = TrialState[t["state"]]
            values = t["values"] if st == TrialState.COMPLETE else None
            if st == TrialState.COMPLETE:
                self._space.fold(dists)
            self.study.add_trial(
                create_trial(
                    params=t["params"],
                    distributions=dists,
                    values=values,
                    state=st,
                    system_attrs=t.get("system_attrs") or {},
                    user_attrs=t.get("user_attrs") or {},
                )
            )
        self._finished = len(state["trials"])
        self._told = state.get("told", self._finished)


def _as_list(value: Value) -> list[float]:
    if isinstance(value, (int, float)):
        return [float(value)]
    return [float(v) for v in value]
