"""Every use of a private name of Ray, MLflow, Optuna or CPython, in one place.

These libraries move their internals between minor releases. Each function here wraps one
private access and says what it is for; `tests/test_compat.py` probes each against the installed
versions and fails with a message naming what moved, so an upgrade breaks one test, not a
search. Code elsewhere in nasorch uses only the libraries' public APIs and this module.
"""

from __future__ import annotations

import os
from typing import Any

# ---- Ray ------------------------------------------------------------------------------------


def refresh_ray_config() -> None:
    """Make this process's Ray read its environment (RAY_AUTH_MODE) again: Ray caches its
    config when `ray._raylet` is first imported, which may be before nasorch chose the mode."""
    from ray._raylet import Config

    Config.initialize("")


def local_ray_init_kwargs() -> dict[str, Any]:
    """ray.init arguments for a private local Ray: advertise loopback, not the machine's own
    address (Ray has no public argument for it)."""
    return {"_node_ip_address": "127.0.0.1"}


def ray_temp_root() -> str:
    """Ray's temp folder on this machine (sessions, staging copies of results)."""
    try:
        from ray._common.utils import get_default_ray_temp_dir

        return get_default_ray_temp_dir()
    except ImportError:  # its usual place
        return os.path.join(os.environ.get("RAY_TMPDIR", "/tmp"), "ray")


# ---- Ray Tune schedulers ---------------------------------------------------------------------
# Stop reasons need what a scheduler decided from (ASHA's rungs and cutoffs, Hyperband's bracket,
# the median rule's running means); PBT's lineage needs its exploit step. Ray exposes none of it.


def asha_rung(scheduler: Any, trial_id: str, t: float | None) -> tuple[float, dict] | None:
    """(milestone, that rung's recorded results) of the ASHA rung a result at time `t` reaches,
    as Ray's `_Bracket.on_result` finds it; None when none. Call it before the result is
    recorded; `asha_cutoff` then gives the cutoff the result was measured against."""
    bracket = scheduler._trial_info.get(trial_id)
    if bracket is None or t is None:
        return None
    for milestone, recorded in bracket._rungs:
        if t < milestone or trial_id in recorded:
            continue
        return milestone, recorded
    return None


def asha_cutoff(
    scheduler: Any, trial_id: str, rung: tuple[float, dict]
) -> tuple[float, int] | None:
    """(cutoff in the metric's units, trials recorded before this one) of `rung` as it was
    before `trial_id`'s result was recorded in it (computed only when a trial is stopped)."""
    _, recorded = rung
    values = list(recorded.values())  # a C-level copy: a rung may hold 10,000 results
    # Rungs only grow and keep insertion order: this trial's result, if recorded, is the last.
    if recorded and next(reversed(recorded)) == trial_id:
        values.pop()
    cutoff = scheduler._trial_info[trial_id].cutoff(_Recorded(values))
    if cutoff is None:
        return None
    return float(cutoff) * scheduler._metric_op, len(values)


class _Recorded:
    """What Ray's `_Bracket.cutoff` reads of a rung (truth and `values()`), without a dict."""

    def __init__(self, values: list[float]):
        self._values = values

    def __bool__(self) -> bool:
        return bool(self._values)

    def values(self) -> list[float]:
        return self._values


def asha_state(scheduler: Any) -> dict[str, Any]:
    """ASHA's rungs (every bracket's recorded results per milestone) and stop count, as JSON."""
    return {
        "num_stopped": scheduler._num_stopped,
        "rungs": [[dict(recorded) for _, recorded in b._rungs] for b in scheduler._brackets],
    }


def asha_restore(scheduler: Any, state: dict[str, Any]) -> None:
    scheduler._num_stopped = state["num_stopped"]
    for bracket, rungs in zip(scheduler._brackets, state["rungs"]):
        for (_, recorded), saved in zip(bracket._rungs, rungs):
            recorded.clear()
            recorded.update(saved)


def hyperband_bracket_class() -> type:
    """Ray's Hyperband bracket, to subclass (Ray offers no hook into successive halving)."""
    from ray.tune.schedulers.hyperband import _Bracket

    return _Bracket


def hyperband_with_bracket_class(base: type, bracket_cls: type, setup: Any) -> type:
    """`base` (Ray's HyperBandScheduler) building its brackets as `bracket_cls` instances
    (through Ray's private `_create_bracket` hook); `setup(scheduler, bracket)` runs on each."""

    class WithBrackets(base):
        def _create_bracket(self, s: int) -> Any:
            bracket = hyperband_new_bracket(self, bracket_cls, s)
            setup(self, bracket)
            return bracket

    WithBrackets.__name__ = f"{base.__name__}WithBrackets"
    return WithBrackets


def hyperband_new_bracket(scheduler: Any, cls: type, s: int) -> Any:
    """What HyperBandScheduler._create_bracket builds, as an instance of `cls`."""
    return cls(
        time_attr=scheduler._time_attr,
        max_trials=scheduler._get_n0(s),
        init_t_attr=scheduler._get_r0(s),
        max_t_attr=scheduler._max_t_attr,
        eta=scheduler._eta,
        s=s,
        stop_last_trials=scheduler._stop_last_trials,
    )


def hyperband_bracket_view(bracket: Any) -> tuple[float, dict]:
    """(epoch the bracket has reached, live trial -> its last result)."""
    return bracket._cumul_r, bracket._live_trials


def median_rule_view(scheduler: Any, trial: Any, t: float) -> tuple[float, list[float]]:
    """(the trial's best result so far, the running means at `t` of the other trials)."""
    import math

    others = [o for o in scheduler._trials_beyond_time(t) if o is not trial]
    means = [scheduler._running_mean(o, t) for o in others]
    return scheduler._best_result(trial), [m for m in means if math.isfinite(m)]


def pbt_with_hooks(base: type) -> type:
    """`base` (Ray's PBT or PB2) with its exploit step opened up: `adjust_new_config(trial,
    new_config)` may change the config a receiving trial gets (nasorch keeps its identity), and
    `on_exploit(trial, donor, donor_result, old_config)` sees every exploit."""

    class WithHooks(base):
        def _get_new_config(self, trial: Any, trial_to_clone: Any) -> tuple[dict, dict]:
            new_config, operations = super()._get_new_config(trial, trial_to_clone)
            return self.adjust_new_config(trial, new_config), operations

        def _exploit(self, tune_controller: Any, trial: Any, trial_to_clone: Any) -> None:
            old = dict(trial.config)
            donor_result = self._trial_state[trial_to_clone].last_result or {}
            super()._exploit(tune_controller, trial, trial_to_clone)
            self.on_exploit(trial, trial_to_clone, donor_result, old)

    WithHooks.__name__ = f"{base.__name__}WithHooks"
    return WithHooks


def ray_validate_cluster_config(config: dict) -> dict:
    """`ray up`'s own check of a cluster YAML: the config merged with the provider's defaults
    (`prepare_config`), then validated against Ray's schema (`validate_config`); returns the
    merged config. Raises jsonschema's ValidationError (or ValueError) on a mistake."""
    import copy

    from ray.autoscaler._private.util import prepare_config, validate_config

    merged = prepare_config(copy.deepcopy(config))
    validate_config(merged)
    return merged


def ray_staging_dirs(experiment_name: str) -> list[str]:
    """Ray's driver-side staging folders of an experiment, in every Ray session on this machine
    (where Ray writes result.json first; a resumed search runs in a new session)."""
    import glob

    pattern = os.path.join(
        ray_temp_root(), "session_*", "artifacts", "*", experiment_name, "driver_artifacts"
    )
    return sorted(p for p in glob.glob(pattern) if "session_latest" not in p)


# Ray's file name of an experiment snapshot (TuneController.CKPT_FILE_TMPL), the file
# Tuner.restore reads back: its presence says Ray has snapshotted the search at least once.
RAY_SNAPSHOT_GLOB = "experiment_state-*.json"


class _SearcherHidden:
    """A TuneController seen without its searcher (every other attribute passes through)."""

    search_alg = None

    def __init__(self, controller: Any):
        self._controller = controller

    def __getattr__(self, name: str) -> Any:
        return getattr(self._controller, name)


def pbt_controller_without_searcher(controller: Any) -> Any:
    """`controller` for Ray's PBT `on_trial_add`, which refuses any searcher (its suggestions
    would override PBT's): nasorch's searcher proposes architectures only, PBT owns the
    hyperparameters, so the searcher is hidden from that one check (Ray offers no switch)."""
    return _SearcherHidden(controller)


# ---- CPython --------------------------------------------------------------------------------


def run_exit_handlers() -> None:
    """Run (and clear) every `atexit` handler now, as the interpreter does at exit: `nasorch`
    then leaves with os._exit, skipping the slow teardown of Ray's and torch's threads."""
    import atexit

    atexit._run_exitfuncs()


# ---- MLflow ---------------------------------------------------------------------------------
# The MLflow writer's SQL path (tracking/sinks.py) writes MLflow's own tables in one transaction
# per round. It uses MLflow's SQLAlchemy models, its store and its validator: all internal.

# The columns the SQL path writes, per table; `mlflow_sql_schema_problem` checks them against
# the database at start (a newer MLflow may have changed them: the client is used then).
SQL_WRITES = {
    "runs": {
        "run_uuid", "name", "source_type", "source_name", "entry_point_name", "user_id",
        "status", "start_time", "end_time", "deleted_time", "source_version",
        "lifecycle_stage", "artifact_uri", "experiment_id",
    },
    "tags": {"key", "value", "run_uuid"},
    "params": {"key", "value", "run_uuid"},
    "metrics": {"key", "value", "timestamp", "step", "is_nan", "run_uuid"},
    "latest_metrics": {"key", "value", "timestamp", "step", "is_nan", "run_uuid"},
}  # fmt: skip


def mlflow_sql_store(client: Any) -> Any | None:
    """The SqlAlchemyStore behind an MlflowClient; None for a server or another kind of store."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    store = client._tracking_client.store
    return store if isinstance(store, SqlAlchemyStore) else None


def mlflow_sql_models() -> Any:
    """MLflow's SQLAlchemy models of the tables in SQL_WRITES."""
    from types import SimpleNamespace

    from mlflow.store.tracking.dbmodels import models

    return SimpleNamespace(
        run=models.SqlRun, tag=models.SqlTag, param=models.SqlParam,
        metric=models.SqlMetric, latest_metric=models.SqlLatestMetric,
    )  # fmt: skip


def mlflow_sql_schema_problem(store: Any) -> str | None:
    """None when the database and the installed MLflow's models have every column the SQL path
    writes and no other required one; otherwise what differs, in one line."""
    from sqlalchemy import inspect

    models = mlflow_sql_models()
    tables = {m.__tablename__: m for m in vars(models).values()}
    inspector = inspect(store.engine)
    for table, written in SQL_WRITES.items():
        model = tables.get(table)
        if model is None:
            return f"MLflow has no model of table {table!r}"
        in_model = set(model.__table__.columns.keys())
        columns = {c["name"]: c for c in inspector.get_columns(table)}
        missing = (written - in_model) | (written - set(columns))
        if missing:
            return f"table {table!r} lacks {', '.join(sorted(missing))}"
        required = {
            name
            for name, c in columns.items()
            if not c.get("nullable", True) and c.get("default") is None
            and not c.get("autoincrement") and name not in written
        }  # fmt: skip
        if required:
            return f"table {table!r} requires {', '.join(sorted(required))}, not written"
    return None


def mlflow_artifact_uri(root: str, run_id: str) -> str:
    """The artifact URI MLflow's SQL store gives a new run under the experiment's `root`
    (`mlflow.utils.uri.append_to_uri_path`, an internal helper: URIs and local paths alike)."""
    from mlflow.utils.uri import append_to_uri_path

    return append_to_uri_path(root, run_id, "artifacts")


def mlflow_validate_batch(metrics: list, params: list, tags: list) -> tuple[list, list, list]:
    """MLflow's own validation of a log_batch (what the client's store would refuse raises
    MlflowException); returns the items as MLflow would store them (long values truncated)."""
    from mlflow.utils.validation import _validate_batch_log_data

    out = _validate_batch_log_data(metrics, params, tags)
    return (metrics, params, tags) if out is None else tuple(out)


# ---- Optuna ---------------------------------------------------------------------------------


def optuna_vectorised_truncnorm() -> None:
    """Replace Optuna's TPE log-CDF of the normal (one pure-Python call per kernel and candidate,
    `_truncnorm._log_ndtr`: 75% of a TPE ask over continuous parameters at 1,000 trials) by
    SciPy's vectorised `special.log_ndtr`, which computes the same function. Idempotent."""
    import numpy as np
    from optuna.samplers._tpe import _truncnorm
    from scipy.special import log_ndtr

    if getattr(_truncnorm._log_ndtr, "_nasorch", False):
        return

    def _log_ndtr(a: Any) -> Any:
        return log_ndtr(np.asarray(a, dtype=float))

    _log_ndtr._nasorch = True  # type: ignore[attr-defined]
    _truncnorm._log_ndtr = _log_ndtr


def optuna_tpe_proposals(
    sampler: Any, study: Any, search_space: dict[str, Any], n: int
) -> list[dict[str, Any]]:
    """`n` proposals of Optuna's TPE from one fit of its Parzen estimators, each the best of its
    own `n_ei_candidates` draws by TPE's acquisition: what `TPESampler._sample` returns, `n`
    times over one model (constant liar off; for n = 1 the very same draw). Optuna builds the
    estimators again on every ask, in Python over every trial; a batch amortises one build."""
    from optuna.samplers._tpe.sampler import (
        _split_trials,
        default_gamma,
        default_gamma_multiobjective,
    )
    from optuna.trial import TrialState

    trials = study._get_trials(
        deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED), use_cache=True
    )
    if sampler._gamma is None:  # as `_sample` sets it on first use
        many = len(study.directions) > 1
        sampler._gamma = default_gamma_multiobjective if many else default_gamma
    below, above = _split_trials(study, trials, sampler._gamma(len(trials)))
    mpe_below = sampler._build_parzen_estimator(study, search_space, below, handle_below=True)
    mpe_above = sampler._build_parzen_estimator(study, search_space, above, handle_below=False)
    k = sampler._n_ei_candidates
    samples = mpe_below.sample(sampler._rng.rng, k * n)
    acquisition = sampler._compute_acquisition_func(samples, mpe_below, mpe_above)
    proposals = []
    for g in range(n):
        group = {name: values[g * k : (g + 1) * k] for name, values in samples.items()}
        best = type(sampler)._compare(group, acquisition[g * k : (g + 1) * k])
        proposals.append({p: d.to_external_repr(best[p]) for p, d in search_space.items()})
    return proposals


def optuna_set_search_space(sampler: Any, calculator: Any) -> bool:
    """Give an Optuna sampler (TPE, CMA-ES, NSGA-II) `calculator` in place of its
    `IntersectionSearchSpace` (`sampler._search_space`), whose `calculate(study, use_cache)` it
    calls on every ask: Optuna's rescans every trial back to the oldest one still running, which
    under ASHA at 256 workers is most of the study (11 ms an ask at 2,000 trials for CMA-ES).
    False where the sampler has no such attribute (it then computes its own)."""
    from optuna.search_space import IntersectionSearchSpace

    current = getattr(sampler, "_search_space", None)
    if not isinstance(current, IntersectionSearchSpace) and type(current) is not type(calculator):
        return False
    sampler._search_space = calculator
    return True
