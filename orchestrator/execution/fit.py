"""Runs a built or restored Tuner and records the outcome; shared by new and resumed
searches. Whatever ends the fit, every run it opened is closed, and what MLflow did not take is
said in one line (RecordsUnsent) and kept for `nasorch resume`."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from typing import Any

import pandas as pd

from orchestrator.config import ExperimentConfig
from orchestrator.core import tags as T
from orchestrator.core.errors import RecordsUnsent, UserError, first_line
from orchestrator.core.phases import phase
from orchestrator.execution.components import Trainable
from orchestrator.execution.metric_check import MetricCheck
from orchestrator.execution.results import (
    SearchResult,
    best_trial,
    count_unfinished,
    result_trial_id,
    search_result,
    trials_frame,
)
from orchestrator.reporting.figures import draw_figures
from orchestrator.reporting.frontier import objective_names, write_front
from orchestrator.resumable import restored
from orchestrator.resumable.experiment import write_done
from orchestrator.tracking import session


def fit_and_record(
    cfg: ExperimentConfig,
    tuner: Any,
    tracking: Any,
    experiment_path: str,
    searcher: Any,
    tracker: Any,
    check: MetricCheck | None = None,
    trainable: Trainable | None = None,
) -> SearchResult:
    """Fit, then record the outcome; shared by new and resumed searches."""
    space, strategy, gate = searcher.strategy.space, searcher.strategy, searcher.gate
    status = "FAILED"
    summary: dict[str, float] = {}
    failing = recorded = False
    timings: dict[str, float] = {}
    stopped: UserError | None = None  # too many failures in a row: raised once all is recorded
    # Where a strategy keeps files (darts: its checkpoint): the same folder when resumed.
    strategy.folder = experiment_path
    try:
        # Strict metric checking is ours (MetricCheck): one line instead of Ray's traceback.
        with scoped_env(
            TUNE_DISABLE_AUTO_CALLBACK_LOGGERS="1", TUNE_DISABLE_STRICT_METRIC_CHECKING="1"
        ):
            began = time.perf_counter()
            with phase("fit (Ray Tune)"):
                grid = tuner.fit()
            timings["fit"] = time.perf_counter() - began
        if check is not None and check.problem:
            tracker.fail_trial(check.trial_id, check.problem)
            raise UserError(check.problem)
        tracker.close_lost_runs({result_trial_id(r) for r in grid})
        delivered = tracker.flush()
        trials = trials_frame(grid, tracker, space, cfg.metric, cfg.resolved_storage_path())
        best = best_trial(trials, cfg.metric, cfg.mode)
        unfinished = count_unfinished(grid, tracker)
        if unfinished > 0 or tracker.interrupted:  # Ctrl+C: keep everything resumable
            print(
                f"nasorch: interrupted with {unfinished} trials unfinished; continue with "
                f"`nasorch resume {experiment_path}`",
                file=sys.stderr,
            )
            raise KeyboardInterrupt
        if delivered.get("unsent"):  # MLflow takes nothing now: the summary waits for resume
            tracker.delivery_problem = "the search's summary was not recorded either"
            return search_result(cfg, tracking, experiment_path, trials, best, summary, timings)
        extra = {**strategy.summary(), **gate.summary(), **tracker.devices.hours()}
        budgets = {
            "time_budget": (restored.take("time_budget"), f"time budget ({cfg.time_budget})"),
            "accelerator_hours": (
                restored.take("accelerator_budget"),
                f"accelerator budget ({cfg.accelerator_hours:g} GPU-hours)"
                if cfg.accelerator_hours else "",
            ),
        }  # fmt: skip
        spent = [k for k, (stopper, _) in budgets.items() if stopper is not None and stopper.ended]
        for key in spent:
            print(
                f"nasorch: the {budgets[key][1]} ended the search after {len(trials)} trials",
                file=sys.stderr,
            )
        ended_by = (
            spent[0] if spent
            else "searcher_exhausted" if searcher.exhausted
            else "failures" if searcher.failed_out
            else "num_samples"
        )  # fmt: skip
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
        # A strategy's own records for the parent run (darts: alpha per epoch, and its plot).
        curves = strategy.curves()
        files += strategy.artifacts(experiment_path)
        files += draw_figures(strategy.figures(), experiment_path)
        if cfg.objectives:
            front_metrics, front_files = write_front(trials, *objective_names(cfg), experiment_path)
            extra.update(front_metrics)
            files += front_files
        began = time.perf_counter()
        try:  # the parent run's records, all in the try: a store failing now is resumable
            tracking.client.set_tag(tracking.parent_run_id, T.ENDED_BY, ended_by)
            extra.update(
                session.finish_search(
                    tracking,
                    cfg,
                    trials,
                    best,
                    space,
                    extra,
                    files,
                    experiment_path,
                    tracker.seen(),
                    trainable,
                    curves,
                )
            )  # fmt: skip  (the best model's test scores)
        except Exception as e:  # the store failed at the last moment: resume records it
            tracker.delivery_problem = f"the search's summary was not recorded ({first_line(e)})"
            return search_result(cfg, tracking, experiment_path, trials, best, summary, timings)
        timings["record"] = time.perf_counter() - began  # summary, tables, plots, best model
        summary = extra
        recorded = True
        if searcher.failed_out:
            stopped = UserError(
                f"the search stopped: {searcher.failures_in_a_row} trials in a row failed "
                f"(max_consecutive_failures); {first_error(tracker)}"
            )
        elif best is None:  # nothing to report: a failure, whatever ended the search
            why = why_no_result(trials, tracker)
            if spent:  # a budget ended it before any trial reported: say which
                why += f"; the {budgets[spent[0]][1]} ended the search first"
            stopped = UserError(f"no trial produced {cfg.metric}: {why}")
        else:
            status = "FINISHED"
    except BaseException as e:
        failing = True
        if isinstance(e, KeyboardInterrupt):
            status = "KILLED"
        raise
    finally:
        with phase("close runs, flush records"):
            _close(tracker, tracking, status, experiment_path, failing)
    if recorded:  # and every record delivered (else _close raised): nothing left to resume
        write_done(experiment_path, {"parent": tracking.parent_run_id, "trials": len(trials)})
    if stopped is not None:
        raise stopped
    return search_result(cfg, tracking, experiment_path, trials, best, summary, timings)


def first_error(tracker: Any) -> str:
    """The first failed trial's error and where its whole log is, in one line."""
    first = tracker.first_error  # a tracker pickled before it was has None (its upgrade)
    if first is None:
        return f"last error: {tracker.last_error or 'unknown'}"
    message, log = first
    return f"first error: {message}" + (f" (log: {log})" if log else "")


def why_no_result(trials: pd.DataFrame, tracker: Any) -> str:
    if not len(trials):
        return "no trial ran"
    failed = int((trials["status"] == "errored").sum())
    if failed:
        return f"{failed} of {len(trials)} trials failed; {first_error(tracker)}"
    return f"none of {len(trials)} trials reported it"


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


@contextlib.contextmanager
def scoped_env(**values: str):
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
