"""Runs one search: config -> Ray Tune trials -> MLflow records -> a results table.

This is the one place where Ray, the searchers, the trainables and MLflow meet.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from orchestrator import compat
from orchestrator.components import Components, build, resolve_trainable
from orchestrator.config import RESULTS_DIR, ExperimentConfig, parse_config
from orchestrator.errors import RecordsUnsent, SearchFinished, UserError, first_line
from orchestrator.frontier import FRONT_CSV, objective_names, write_front
from orchestrator.metric_check import MetricCheck
from orchestrator.preflight import check_paths
from orchestrator.ray_session import check_resources, init_ray
from orchestrator.report import leaderboard, to_markdown
from orchestrator.resume import (
    CONFIG_FILE,
    SchedulerState,
    find_experiment,
    latest_experiment,
    read_done,
    restored_components,
    write_done,
)
from orchestrator.state_file import SearchState, join_uri
from orchestrator.tracking import session
from orchestrator.tracking import writer as writers
from orchestrator.tracking.mlflow_tracker import status_of
from orchestrator.tracking.recovery import trial_id_from_dirname


@dataclass
class SearchResult:
    """What `run` returns: every trial as a row, the best one, and where the records are."""

    trials: pd.DataFrame
    best: dict[str, Any] | None
    experiment_path: str
    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    config: ExperimentConfig
    summary: dict[str, float]  # search-level metrics: rejections, reuses, hypervolume, ...


def run(
    config: ExperimentConfig | dict | str | os.PathLike,
    *,
    overrides: list[str] | None = None,
    address: str | None = None,
    progress: bool = True,
    resume: bool = False,
) -> SearchResult:
    """Run a search described by `config` (object, dict or YAML path) and return its trials.

    With `resume=True`, the newest unfinished search of this config's name is continued instead
    (see `resume_search`); a new one starts if there is none.
    """
    cfg = parse_config(config, overrides)
    if resume:
        previous = latest_experiment(cfg.resolved_storage_path(), cfg.name)
        if previous is not None:
            return resume_search(previous, address=address, progress=progress)
    parts = build(cfg)  # every component, once; a bad name or option fails here
    check_paths(cfg)  # these checks fail fast, before anything is recorded
    session.check_reachable(cfg.tracking_uri())
    writers.prestart()  # the MLflow writer imports MLflow while Ray starts
    with ThreadPoolExecutor(1) as pool:  # MLflow's import and store set-up overlap Ray's start
        store = pool.submit(_warm_up, cfg)
        _connect(cfg, address)
        tracking = session.open_search(cfg, store.result())
    with session.ended_on_error(tracking):  # from here on, no parent run is left RUNNING
        tuner, experiment_path, searcher, tracker = _new_tuner(cfg, tracking, parts, progress)
    return _execute(cfg, tuner, tracking, experiment_path, searcher, tracker)


def _new_tuner(
    cfg: ExperimentConfig, tracking: Any, parts: Components, progress: bool
) -> tuple[Any, str, Any, Any]:
    from ray import tune
    from ray.tune.logger import JsonLoggerCallback

    from orchestrator.progress import Progress
    from orchestrator.searchers.tune_adapter import StrategySearcher
    from orchestrator.tracking.mlflow_tracker import MlflowTracker

    _pickle_user_module_by_value(cfg.trainable.name)
    run_name = f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    storage = cfg.resolved_storage_path()
    # nasorch's own files sit next to Ray's experiment folder; when that is in cloud storage
    # (s3://...), they stay on the driver's disk and remember where Ray's folder is.
    local_root = storage if "://" not in storage else str(Path(RESULTS_DIR, "ray").resolve())
    experiment_path = os.path.join(local_root, run_name)
    os.makedirs(experiment_path, exist_ok=True)
    Path(experiment_path, CONFIG_FILE).write_text(cfg.to_yaml())
    SearchState(experiment_path).update(
        parent=tracking.parent_run_id,
        ray_path=join_uri(storage, run_name),  # an s3://...?endpoint_override=... URI stays whole
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
        run_tags={"nasorch.searcher": cfg.searcher.name, "nasorch.scheduler": cfg.scheduler.name},
        describe=space.describe,
        flatten=lambda c: flat_params(space, c),
        state_path=str(SearchState(experiment_path).path),
        max_epochs=known_epochs,
        scheduler=scheduler,  # stop reasons and PBT lineage, tagged on the trials' runs
        metric=cfg.metric,
    )
    # Ray's JSON log (result.json) stays: resume recovers from it. Its CSV and TensorBoard
    # loggers are left out (MLflow has it all); they cost a thread and a file per trial.
    # The scheduler's records first: on resume the tracker tags with the restored stop reasons.
    callbacks: list[Any] = [SchedulerState(scheduler), tracker, JsonLoggerCallback()]
    if progress:
        callbacks.append(Progress(cfg.metric, cfg.mode, cfg.num_samples, known_epochs, scheduler))

    tuner = tune.Tuner(
        tune.with_resources(parts.trainable.fn, _resources(cfg)),
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
            # PBT keeps every checkpoint: an exploit may restore a donor's older one.
            checkpoint_config=tune.CheckpointConfig(
                num_to_keep=getattr(scheduler, "keep_checkpoints", 1)
            ),
            failure_config=tune.FailureConfig(max_failures=cfg.max_failures),
            stop=MetricCheck(cfg.metric),
        ),
    )
    return tuner, experiment_path, searcher, tracker


def resume_search(
    experiment: str | os.PathLike, *, address: str | None = None, progress: bool = True
) -> SearchResult:
    """Continue a search whose driver died: finished trials are kept, unfinished ones continue
    from their last checkpoint, the searcher and the scheduler from their saved state, and the
    MLflow parent and child runs from where they were. `experiment` is Ray's experiment folder
    (printed by `nasorch run`) or a search name, whose newest folder is taken."""
    from ray import tune

    from orchestrator.tracking.mlflow_tracker import MlflowTracker

    path = find_experiment(experiment)
    done = read_done(path)
    if done is not None:
        raise SearchFinished(f"{path} already finished ({done.get('trials', '?')} trials)")
    state = SearchState(path).read()
    cfg = parse_config(Path(path, CONFIG_FILE), source_dir=state.get("config_dir"))
    trainable = resolve_trainable(cfg).fn
    parent_run_id = state.get("parent")
    if not parent_run_id:
        raise UserError(f"{path}: no MLflow parent run recorded; it cannot be resumed")
    check_paths(cfg)
    session.check_reachable(cfg.tracking_uri())
    writers.prestart()
    _connect(cfg, address)
    tracking = session.reopen_search(cfg, parent_run_id)
    with session.ended_on_error(tracking):
        _pickle_user_module_by_value(cfg.trainable.name)
        ray_path = state.get("ray_path", path)
        if not tune.Tuner.can_restore(ray_path):
            raise UserError(f"{ray_path}: Ray saved no experiment state there yet; start it again")
        tuner = tune.Tuner.restore(
            ray_path,
            trainable=tune.with_resources(trainable, _resources(cfg)),
            resume_unfinished=True,
            resume_errored=False,
            restart_errored=False,
        )
        searcher, callbacks = restored_components(tuner)
        tracker = next(c for c in callbacks if isinstance(c, MlflowTracker))
        if not progress:
            callbacks[:] = [c for c in callbacks if type(c).__name__ != "Progress"]
    return _execute(cfg, tuner, tracking, path, searcher, tracker)


def metric_check(tuner: Any) -> MetricCheck | None:
    """The search's MetricCheck (a restored search's comes back from Ray's snapshot)."""
    stop = compat.tuner_run_config(tuner).stop
    return stop if isinstance(stop, MetricCheck) else None


# Ray's messages that nasorch says better itself: for each resumed trial Ray looks for its
# result.json next to the experiment, where a crash may have left none (recovery.py reads the
# staging copy); after Ctrl+C it tells to resume with `Tuner.restore(...)`, nasorch with
# `nasorch resume`.
SILENCED = {
    "ray.tune.logger.logger": "Remote file not found",
    "ray.tune.tune": "Experiment has been interrupted",
}


def _silence_ray_hints() -> None:
    for name, prefix in SILENCED.items():
        logger = logging.getLogger(name)
        if not any(getattr(f, "prefix", None) == prefix for f in logger.filters):
            logger.addFilter(_DropPrefix(prefix))


class _DropPrefix(logging.Filter):
    def __init__(self, prefix: str):
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.prefix)


@contextlib.contextmanager
def _env(**values: str):
    """Environment variables set for the duration of the block only."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _warm_up(cfg: ExperimentConfig) -> tuple[Any, str]:
    import orchestrator.tracking.plots  # noqa: F401  (matplotlib: needed at the end anyway)

    return session.connect_store(cfg)


def _resources(cfg: ExperimentConfig) -> dict[str, float]:
    return {"cpu": cfg.resources.cpu, "gpu": cfg.resources.gpu}


def _connect(cfg: ExperimentConfig, address: str | None) -> None:
    # Ray warns when per-epoch checkpoints trigger many state snapshots; they are cheap here.
    # Their period is left to Ray (after trial checkpoints, else adaptive): a fixed 2 s period
    # halved throughput with 200 trials (benchmarks/overhead.py), and what a crash loses between
    # snapshots is redone on resume.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # Our own progress line replaces Tune's console output (its new engine ignores verbose=0).
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # MLflow prints "View run ... at: URL" for every run it ends on a server; we print our own.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    address = address or os.environ.get("RAY_ADDRESS")  # set by `ray job submit` for its job
    init_ray(address)
    _silence_ray_hints()
    _check_cluster_resources(cfg, address)
    uri = cfg.tracking_uri()
    if address and not uri.startswith(("http://", "https://")):
        # Safe (only this driver writes the store) but a cluster's records belong on its server.
        print(
            f"nasorch: warning: recording a cluster run into {uri}; set tracking.uri "
            "to the head's MLflow server (http://127.0.0.1:5000 on a `ray up` cluster)",
            file=sys.stderr,
        )


def _check_cluster_resources(cfg: ExperimentConfig, address: str | None) -> None:
    """A trial that no node can ever hold would wait forever: say so now."""
    import ray

    problem = check_resources(cfg.resources.cpu, cfg.resources.gpu, ray.nodes(), bool(address))
    if problem and not address:
        raise UserError(problem)
    if problem:
        print(f"nasorch: note: {problem}", file=sys.stderr)


def _execute(
    cfg: ExperimentConfig,
    tuner: Any,
    tracking: Any,
    experiment_path: str,
    searcher: Any,
    tracker: Any,
) -> SearchResult:
    """Fit, then record the outcome; shared by new and resumed searches."""
    space, strategy, gate = searcher.strategy.space, searcher.strategy, searcher.gate
    status = "FAILED"
    summary: dict[str, float] = {}
    check = metric_check(tuner)
    failing = recorded = False
    stopped: UserError | None = None  # too many failures in a row: raised once all is recorded
    try:
        # Strict metric checking is ours (MetricCheck): one line instead of Ray's traceback.
        with _env(TUNE_DISABLE_AUTO_CALLBACK_LOGGERS="1", TUNE_DISABLE_STRICT_METRIC_CHECKING="1"):
            grid = tuner.fit()
        if check is not None and check.problem:
            tracker.fail_trial(check.trial_id, check.problem)
            raise UserError(check.problem)
        tracker.close_lost_runs({result_trial_id(r) for r in grid})
        delivered = tracker.flush()
        trials = trials_frame(grid, tracker, space, cfg.metric)
        best = best_trial(trials, cfg.metric, cfg.mode)
        unfinished = count_unfinished(grid, tracker)
        if unfinished > 0:  # Ray stopped early (Ctrl+C): keep everything resumable
            print(
                f"nasorch: interrupted with {unfinished} trials unfinished; continue with "
                f"`nasorch resume {experiment_path}`",
                file=sys.stderr,
            )
            raise KeyboardInterrupt
        if delivered.get("unsent"):  # MLflow takes nothing now: the summary waits for resume
            tracker.delivery_problem = "the search's summary was not recorded either"
            return _result(cfg, tracking, experiment_path, trials, best, summary)
        extra = {**strategy.summary(), **gate.summary()}
        if searcher.exhausted:
            print(
                f"nasorch: the searcher found no new admissible architecture in "
                f"{searcher.max_skips} tries; the search ended after {len(trials)} trials",
                file=sys.stderr,
            )
        files = []
        if gate.rejections:
            files.append(os.path.join(experiment_path, "rejected.csv"))
            pd.DataFrame(gate.rejections).to_csv(files[-1], index=False)
        if cfg.objectives:
            front_metrics, front_files = write_front(trials, *objective_names(cfg), experiment_path)
            extra.update(front_metrics)
            files += front_files
        try:
            session.finish_search(
                tracking, cfg, trials, best, space, extra, files, experiment_path, tracker.seen()
            )
        except Exception as e:  # the store failed at the last moment: resume records it
            tracker.delivery_problem = f"the search's summary was not recorded ({first_line(e)})"
            return _result(cfg, tracking, experiment_path, trials, best, summary)
        summary = extra
        recorded = True
        if searcher.failed_out:
            stopped = UserError(
                f"the search stopped: {searcher.failures_in_a_row} trials in a row failed "
                f"(max_consecutive_failures); last error: {tracker.last_error or 'unknown'}"
            )
        else:
            status = "FINISHED"
    except BaseException as e:
        failing = True
        if isinstance(e, KeyboardInterrupt):
            status = "KILLED"
        raise
    finally:
        _close(tracker, tracking, status, experiment_path, failing)
    if recorded:  # and every record delivered (else _close raised): nothing left to resume
        write_done(experiment_path, {"parent": tracking.parent_run_id, "trials": len(trials)})
    if stopped is not None:
        raise stopped
    return _result(cfg, tracking, experiment_path, trials, best, summary)


def _result(cfg, tracking, experiment_path, trials, best, summary) -> SearchResult:
    return SearchResult(
        trials=trials,
        best=best,
        experiment_path=experiment_path,
        tracking_uri=tracking.uri,
        experiment_id=tracking.experiment_id,
        parent_run_id=tracking.parent_run_id,
        config=cfg,
        summary=summary,
    )


def _close(tracker: Any, tracking: Any, status: str, experiment_path: str, failing: bool) -> None:
    """Closes every run the search opened and says what MLflow did not take: records it could
    not write now are kept for `nasorch resume` (RecordsUnsent: exit status 3), values it will
    never take were skipped (a warning naming each)."""
    tracker.close_open_runs()
    delivery = tracker.close()
    problem = undelivered(delivery, tracker.delivery_problem, experiment_path)
    if problem is None:
        session.end(tracking, status)
    else:
        with contextlib.suppress(Exception):  # the store may well be what failed
            session.end(tracking, status if status != "FINISHED" else "FAILED")
    rejected = delivery.get("rejected") or []
    if rejected:
        shown = "; ".join(rejected[:3]) + (
            f"; and {len(rejected) - 3} more" if len(rejected) > 3 else ""
        )
        print(
            f"nasorch: warning: MLflow refused {len(rejected)} values, skipped: {shown}",
            file=sys.stderr,
        )
    if problem and failing:
        print(f"nasorch: error: {problem}", file=sys.stderr)
    elif problem:
        raise RecordsUnsent(problem)


def undelivered(delivery: dict, summary_problem: str | None, experiment_path: str) -> str | None:
    """One line on what did not reach MLflow, or None when everything did."""
    unsent = delivery.get("unsent") or 0
    resume = f"`nasorch resume {experiment_path}` writes them"
    if unsent < 0:  # the writer died or did not answer: Ray's own files still hold the results
        return f"{delivery.get('reason')}; records may be missing in MLflow: {resume}"
    if unsent > 0:
        return (
            f"{unsent} records could not be written to MLflow ({delivery.get('reason')}); they "
            f"are kept in {delivery.get('spool')}: {resume}"
        )
    if summary_problem:
        return f"{summary_problem}: `nasorch resume {experiment_path}` records it"
    return None


def _pickle_user_module_by_value(trainable_name: str) -> None:
    """A user's `module:function` trainable travels to the workers by value, so it works on a
    cluster whose nodes do not have the user's module installed."""
    if ":" not in trainable_name:
        return
    import ray.cloudpickle as cloudpickle

    module = importlib.import_module(trainable_name.partition(":")[0])
    if module.__name__.split(".")[0] not in ("orchestrator", "search_spaces", "trainables"):
        cloudpickle.register_pickle_by_value(module)


def flat_params(space: Any, config: dict) -> dict[str, Any]:
    params = {f"arch.{k}": v for k, v in space.to_params(config["arch"]).items()}
    options = session.mask_secrets(config.get("trainable_options", {}))
    params.update({f"trainable.{k}": v for k, v in options.items()})
    params["seed"] = config.get("seed")
    return params


def trials_frame(grid: Any, tracker: Any, space: Any, metric: str) -> pd.DataFrame:
    rows = []
    for result in grid:
        m = result.metrics or {}
        config = result.config or m.get("config", {})
        trial_id = result_trial_id(result)
        arch = config.get("arch", {})
        cost = config.get("cost") or {}
        # Through Ray Client the tracker runs on the cluster: derive what it would have said.
        status = tracker.statuses.get(trial_id) or status_of(
            bool(result.error), m, tracker.max_epochs
        )
        rows.append(
            {
                "trial": f"t{config.get('trial_number', 0):03d}",
                "trial_id": trial_id,
                "status": status,
                metric: m.get(metric),
                "epochs": m.get("training_iteration", 0),
                "num_params": m.get("num_params", cost.get("num_params")),
                **{k: v for k, v in cost.items() if k != "num_params"},
                "arch": space.describe(arch) if arch else "",
                "arch_hash": config.get("arch_key", ""),
                "arch_json": json.dumps(arch, sort_keys=True),
                "node": m.get("hostname", ""),
                "run_id": tracker.run_ids.get(trial_id, ""),
                "checkpoint": checkpoint_uri(result.checkpoint),
                **{f"arch.{k}": v for k, v in (space.to_params(arch) if arch else {}).items()},
            }
        )
    frame = pd.DataFrame(rows)
    return frame.sort_values("trial").reset_index(drop=True) if len(frame) else frame


def count_unfinished(grid: Any, tracker: Any) -> int:
    """Trials Ray left running or pending (an interrupted fit returns normally)."""
    import ray

    if ray.util.client.ray.is_connected():
        # Through Ray Client the tracker ran on the cluster; Ray's `done` flag marks every
        # trial that ended there, stopped or not, and errors carry their own flag.
        return sum(1 for r in grid if not r.error and not (r.metrics or {}).get("done"))
    return sum(1 for r in grid if result_trial_id(r) not in tracker.statuses)


def result_trial_id(result: Any) -> str:
    """A Ray result's trial id, from its folder name (`trial_dirname`). Not from its last
    metrics: after a PBT exploit those can carry another trial's id, and a trial that never
    reported has none."""
    name = os.path.basename((result.path or "").rstrip("/"))
    own = trial_id_from_dirname(name)
    return own or (result.metrics or {}).get("trial_id") or name.rsplit("_", 1)[-1]


def trial_dirname(trial: Any) -> str:
    """t007_1a2b3c4d rather than Ray's folder named after the whole config."""
    return f"t{trial.config.get('trial_number', 0):03d}_{trial.trial_id}"


def checkpoint_uri(checkpoint: Any) -> str:
    """A checkpoint's location that Ray's Checkpoint() reopens, in cloud storage too."""
    if checkpoint is None:
        return ""
    kind = getattr(checkpoint.filesystem, "type_name", "local")
    return checkpoint.path if kind == "local" else f"{kind}://{checkpoint.path}"


def best_trial(trials: pd.DataFrame, metric: str, mode: str) -> dict[str, Any] | None:
    if not len(trials) or metric not in trials:
        return None
    scored = trials[trials["status"] != "errored"].dropna(subset=[metric])
    if not len(scored):
        return None
    idx = scored[metric].idxmax() if mode == "max" else scored[metric].idxmin()
    return scored.loc[idx].to_dict()


def print_summary(result: SearchResult, stream: Any = None, top: int = 10) -> None:
    stream = stream or sys.stdout
    cfg = result.config
    board = leaderboard(result.trials, cfg.metric, cfg.mode, top)
    stream.write(f"\nTop {len(board)} of {len(result.trials)} trials by {cfg.metric}:\n")
    stream.write(to_markdown(board) + "\n")
    if result.best is not None:
        best = result.best
        stream.write(f"\nBest: {best['trial']} {best['arch']}  ")
        stream.write(f"{cfg.metric}={best[cfg.metric]:.4f}\n")
    notes = {
        "candidates_rejected": "candidates rejected by constraints (never trained)",
        "duplicates_reused": "duplicate architectures answered from earlier results",
        "pareto_points": f"architectures on the Pareto front ({FRONT_CSV})",
        "hypervolume": "hypervolume of the front (reference: the worst values seen)",
        "kendall_tau": "Kendall tau between supernet scores and trained results",
        "kendall_tau_n": "architectures in that Kendall tau",
    }
    for key, text in notes.items():
        value = result.summary.get(key)
        if value:
            stream.write(f"{text}: {value:g}\n")
    stream.write(f"\nRay results: {result.experiment_path}\n")
    stream.write(f"MLflow runs: {session.ui_hint(result.tracking_uri, result.experiment_id)}\n")
