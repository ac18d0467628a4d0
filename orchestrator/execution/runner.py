"""Runs one search: config -> components -> Ray Tune trials -> MLflow records -> results.

`run` builds a new search and `resume_search` restores one that stopped; both hand the Tuner to
`fit.fit_and_record`. Ray is joined in `ray_session`; the results are read in `results`.
"""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from orchestrator.config import ExperimentConfig, parse_config
from orchestrator.core import tags as T
from orchestrator.core.errors import SearchFinished, UserError
from orchestrator.core.phases import phase
from orchestrator.execution.budget import AcceleratorBudget, TimeBudget
from orchestrator.execution.components import Components, build, resolve_trainable
from orchestrator.execution.fit import fit_and_record
from orchestrator.execution.metric_check import MetricCheck
from orchestrator.execution.preflight import check_paths
from orchestrator.execution.ray_session import connect, ship_user_module, tune_trainable
from orchestrator.execution.results import SearchResult, flat_params, trial_dirname
from orchestrator.resumable import inflight, restored
from orchestrator.resumable.checkpoints import CheckpointPruner
from orchestrator.resumable.experiment import (
    CONFIG_FILE,
    find_experiment,
    latest_experiment,
    ray_snapshot_saved,
    read_done,
)
from orchestrator.resumable.scheduler_state import SchedulerState
from orchestrator.resumable.state_file import SearchState
from orchestrator.tracking import session
from orchestrator.tracking import writer as writers
from orchestrator.warm_start.setup import (
    apply_warm_start,
    fingerprint_tags,
    read_past,
    search_fingerprint,
)
from trainables.storage import join as join_location

KEEP_CHECKPOINTS = 2


def run(
    config: ExperimentConfig | dict | str | os.PathLike,
    *,
    overrides: list[str] | None = None,
    address: str | None = None,
    progress: bool = True,
    resume: bool = False,
    callbacks: list[Any] | None = None,
) -> SearchResult:
    """Run a search described by `config` (object, dict or YAML path) and return its trials.

    With `resume=True`, the newest unfinished search of this config's name is continued instead
    (see `resume_search`); a new one starts if there is none. `callbacks` are further Ray Tune
    callbacks (yours), called after nasorch's own.
    """
    cfg = parse_config(config, overrides)
    if resume:
        previous = latest_experiment(cfg.driver_folder(), cfg.name)
        if previous is not None:
            return resume_search(previous, address=address, progress=progress)
    with phase("build components"):
        parts = build(cfg)  # every component, once; a bad name or option fails here
    check_paths(cfg)  # these checks fail fast, before anything is recorded
    session.check_reachable(cfg.tracking_uri())
    writers.prestart()  # the MLflow writer imports MLflow while Ray starts
    with ThreadPoolExecutor(1) as pool:  # MLflow's import and store set-up overlap Ray's start
        store = pool.submit(_warm_up, cfg, parts)
        with phase("start Ray"):
            connect(cfg, address)
        with phase("MLflow store, parent run"):
            fp = search_fingerprint(cfg, parts.trainable.options)
            past = read_past(cfg, parts, store.result()[0])  # a wrong name stops it here
            tracking = session.open_search(cfg, store.result(), fingerprint_tags(fp))
    return _start(cfg, tracking, parts, past, fp, progress, callbacks or [])


def _start(
    cfg: ExperimentConfig,
    tracking: Any,
    parts: Components,
    past: list,
    fp: Any,
    progress: bool,
    callbacks: list[Any],
    run_name: str | None = None,
) -> SearchResult:
    """A new Tuner for the search whose parent run is `tracking`, warm-started from `past`
    (`fp`: the search's fingerprint), run to the end. `run_name`: the folder of a search that
    starts over (see resume_search)."""
    with session.ended_on_error(tracking):  # from here on, no parent run is left RUNNING
        tuner, experiment_path, searcher, tracker, check = _new_tuner(
            cfg, tracking, parts, progress, callbacks, run_name
        )
        if cfg.warm_start is not None:
            with phase("warm start from the MLflow record"):
                apply_warm_start(cfg, parts, searcher, past, fp)
        searcher.on_reuse = tracker.record_reuse
    return fit_and_record(
        cfg, tuner, tracking, experiment_path, searcher, tracker, check, parts.trainable
    )


def _new_tuner(
    cfg: ExperimentConfig,
    tracking: Any,
    parts: Components,
    progress: bool,
    extra: list[Any],
    run_name: str | None = None,
) -> tuple[Any, str, Any, Any, MetricCheck]:
    from ray import tune
    from ray.tune.logger import JsonLoggerCallback
    from ray.tune.stopper import CombinedStopper

    from orchestrator.execution.progress import Progress
    from orchestrator.searchers.tune_adapter import StrategySearcher
    from orchestrator.tracking.mlflow_tracker import MlflowTracker

    ship_user_module(cfg.trainable.name)
    run_name = run_name or f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    storage = cfg.resolved_storage_path()
    # nasorch's own files sit next to Ray's experiment folder (on the driver's disk when that
    # is in cloud storage: they remember where Ray's folder is).
    experiment_path = os.path.join(cfg.driver_folder(), run_name)
    os.makedirs(experiment_path, exist_ok=True)
    Path(experiment_path, CONFIG_FILE).write_text(cfg.to_yaml())
    SearchState(experiment_path).update(
        parent=tracking.parent_run_id,
        ray_path=join_location(storage, run_name),  # s3://...?endpoint_override=... stays whole
        config_dir=cfg.module_dirs()[0],
    )

    base_config = {
        "search_space": cfg.search_space.model_dump(),
        "trainable_options": parts.trainable.options,
    }
    space, scheduler = parts.space, parts.scheduler
    known_epochs = parts.trainable.max_epochs if parts.trainable.epochs_known else None
    searcher = StrategySearcher(
        parts.strategy,
        metric=cfg.metric,
        mode=cfg.mode,
        base_config=base_config,
        gate=parts.gate,
        seed=cfg.seed,
        objectives=[o.metric for o in cfg.objectives],
        max_consecutive_failures=cfg.max_consecutive_failures,
    )
    tracker = MlflowTracker(
        tracking.uri,
        tracking.experiment_id,
        tracking.parent_run_id,
        run_tags={T.SEARCHER: cfg.searcher.name, T.SCHEDULER: cfg.scheduler.name},
        describe=space.describe,
        flatten=lambda c: flat_params(space, c),
        state_path=str(SearchState(experiment_path).path),
        max_epochs=known_epochs,
        scheduler=scheduler,  # stop reasons and PBT lineage, tagged on the trials' runs
        metric=cfg.metric,
        gpu_per_trial=cfg.resources.gpu,
        storage=storage,
    )
    # Ray's JSON log (result.json) stays: resume recovers from it. Its CSV and TensorBoard
    # loggers are left out (MLflow has it all); they cost a thread and a file per trial.
    # The scheduler's records first: on resume the tracker tags with the restored stop reasons.
    callbacks: list[Any] = [SchedulerState(scheduler), tracker, JsonLoggerCallback()]
    keep = getattr(scheduler, "keep_checkpoints", KEEP_CHECKPOINTS)
    if keep is not None:  # pruned in step with Ray's snapshots (resumable/checkpoints.py)
        callbacks.append(CheckpointPruner(keep))
    if progress:
        callbacks.append(Progress(cfg.metric, cfg.mode, cfg.num_samples, known_epochs, scheduler))
    callbacks += extra

    check = MetricCheck(cfg.metric)
    restored.clear()  # nothing from an earlier search of this process
    stoppers: list[Any] = [check]
    if cfg.time_budget is not None:
        stoppers.append(TimeBudget(cfg.time_budget_s()))
    if cfg.accelerator_hours is not None:
        stoppers.append(AcceleratorBudget(cfg.accelerator_hours, cfg.resources.gpu))
    stop = CombinedStopper(*stoppers) if len(stoppers) > 1 else check
    tuner = tune.Tuner(
        tune_trainable(cfg, parts.trainable),
        param_space={},
        tune_config=tune.TuneConfig(
            metric=cfg.metric,
            mode=cfg.mode,
            search_alg=searcher,
            scheduler=scheduler,
            num_samples=cfg.num_samples,
            max_concurrent_trials=cfg.max_concurrent_trials,
            reuse_actors=True,
            trial_dirname_creator=trial_dirname,
        ),
        run_config=tune.RunConfig(
            name=run_name,
            storage_path=cfg.resolved_storage_path(),
            callbacks=callbacks,
            verbose=0,
            # Ray keeps every checkpoint: PBT's exploits may restore a donor's older one, and
            # for the others CheckpointPruner deletes old ones only once no experiment snapshot
            # on disk names them (Ray's own num_to_keep can delete the one a snapshot names).
            checkpoint_config=tune.CheckpointConfig(num_to_keep=None),
            failure_config=tune.FailureConfig(max_failures=cfg.max_failures),
            stop=stop,
        ),
    )
    return tuner, experiment_path, searcher, tracker, check


def resume_search(
    experiment: str | os.PathLike, *, address: str | None = None, progress: bool = True
) -> SearchResult:
    """Continue a search whose driver died: finished trials are kept, unfinished ones continue
    from their last checkpoint, the searcher and the scheduler from their saved state, and the
    MLflow parent and child runs from where they were. `experiment` is Ray's experiment folder
    (printed by `nasorch run`) or a search name, whose newest folder is taken."""
    from ray import tune

    path = find_experiment(experiment)
    done = read_done(path)
    if done is not None:
        raise SearchFinished(f"{path} already finished ({done.get('trials', '?')} trials)")
    state = SearchState(path).read()
    cfg = parse_config(Path(path, CONFIG_FILE), source_dir=state.get("config_dir"))
    trainable = resolve_trainable(cfg)
    parent_run_id = state.get("parent")
    if not parent_run_id:
        raise UserError(f"{path}: no MLflow parent run recorded; it cannot be resumed")
    check_paths(cfg)
    session.check_reachable(cfg.tracking_uri())
    writers.prestart()
    connect(cfg, address)
    tracking = session.reopen_search(cfg, parent_run_id)
    with session.ended_on_error(tracking):
        inflight.settle(SearchState(path), tracking.client, parent_run_id)  # before it is read
        ship_user_module(cfg.trainable.name)
        ray_path = state.get("ray_path", path)
        fresh = not ray_snapshot_saved(ray_path)
        if fresh:
            parts, past = _before_first_trial(cfg, path, ray_path, tracking)
        else:
            restored.clear()  # what Ray unpickles below registers itself there
            tuner = tune.Tuner.restore(
                ray_path,
                trainable=tune_trainable(cfg, trainable),
                resume_unfinished=True,
                resume_errored=False,
                restart_errored=False,
            )
            searcher, tracker = restored.take("searcher"), restored.take("tracker")
            if searcher is None or tracker is None:
                raise UserError(f"{path}: not written by `nasorch run`; it cannot be resumed")
            searcher.on_reuse = tracker.record_reuse
            shown = restored.take("progress")
            if shown is not None and not progress:
                shown.enabled = False
            check = restored.take("metric_check")
    if fresh:
        fp = search_fingerprint(cfg, parts.trainable.options)
        name = os.path.basename(path)
        return _start(cfg, tracking, parts, past, fp, progress, [], run_name=name)
    return fit_and_record(cfg, tuner, tracking, path, searcher, tracker, check, trainable)


def _before_first_trial(
    cfg: ExperimentConfig, path: str, ray_path: str, tracking: Any
) -> tuple[Components, list]:
    """A search stopped before Ray's first snapshot, which follows the first suggestion (a
    `darts` or `supernet` searcher trains its supernet on that first ask), ran no trial: it
    starts over in the same folder and parent run, and such a searcher continues its training
    from its own checkpoint. Returns its components and its warm start's record."""
    recorded = SearchState(path).read().get("runs")
    if recorded:
        raise UserError(
            f"{ray_path}: Ray saved no experiment state there, yet {len(recorded)} trials were "
            "recorded; start the search again"
        )
    print(
        f"nasorch: {path} stopped before its first trial (Ray saved nothing yet); starting it "
        "over in the same folder and MLflow run",
        file=sys.stderr,
    )
    with phase("build components"):
        parts = build(cfg)
    return parts, read_past(cfg, parts, tracking.client, skip_parent=tracking.parent_run_id)


def _warm_up(cfg: ExperimentConfig, parts: Components | None = None) -> tuple[Any, str]:
    """What the driver needs, done while Ray starts: matplotlib (for the final plots), the MLflow
    store, the first candidate's cost (torch's FLOP counter takes seconds the first time) and
    the machinery that saves the best model at the end."""
    import orchestrator.reporting.plots  # noqa: F401

    if parts is not None and parts.gate.input_shape is not None:
        import random

        parts.gate.warm_up(parts.space.sample(random.Random(cfg.seed)))
    store = session.connect_store(cfg)
    if parts is not None and getattr(parts.trainable.fn, "best_model", None) is not None:
        from orchestrator.tracking.best_model import warm_up

        warm_up()  # MLflow saves the best model through torch.export: seconds the first time
    return store
