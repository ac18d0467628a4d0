"""A finished search as data: its trials as a table, the best one, and the summary printed
at the end. Ray's results are read by folder name (`t007_<trial id>`), never by the trial id in
their metrics (after a PBT exploit those can be another trial's)."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from orchestrator.config import ExperimentConfig
from orchestrator.core import tags as T
from orchestrator.reporting.frontier import FRONT_CSV
from orchestrator.reporting.leaderboard import leaderboard, to_markdown
from orchestrator.resumable.recovery import trial_id_from_dirname
from orchestrator.tracking import session
from orchestrator.tracking.events import status_of
from trainables.storage import locate


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
    timings: dict[str, float] = field(default_factory=dict)  # seconds: fit, record

    def best_model(self) -> Any:
        """The best trial's network, as the search logged it on its MLflow parent run (a
        trainable that rebuilds networks, such as `torch`), saved in eval mode for inference."""
        import mlflow
        import mlflow.pytorch

        mlflow.set_tracking_uri(self.tracking_uri)
        return mlflow.pytorch.load_model(f"runs:/{self.parent_run_id}/best_model")


def search_result(
    cfg, tracking, experiment_path, trials, best, summary, timings=None
) -> SearchResult:
    return SearchResult(
        trials=trials,
        best=best,
        experiment_path=experiment_path,
        tracking_uri=tracking.uri,
        experiment_id=tracking.experiment_id,
        parent_run_id=tracking.parent_run_id,
        config=cfg,
        summary=summary,
        timings=timings or {},
    )


def flat_params(space: Any, config: dict) -> dict[str, Any]:
    params = {f"arch.{k}": v for k, v in space.to_params(config["arch"]).items()}
    options = session.mask_secrets(config.get("trainable_options", {}))
    params.update({f"trainable.{k}": v for k, v in options.items()})
    params["seed"] = config.get("seed")
    return params


def trials_frame(
    grid: Any, tracker: Any, space: Any, metric: str, storage: str = ""
) -> pd.DataFrame:
    """One row per trial; `storage` (the configured storage path or URI) locates checkpoints."""
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
                "trial": T.trial_name(T.trial_number(config)),
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
                "checkpoint": checkpoint_location(result.checkpoint, storage),
                **{f"arch.{k}": v for k, v in (space.to_params(arch) if arch else {}).items()},
            }
        )
    for reused in tracker.reused:  # answered from an earlier search's record
        arch = reused["arch"]
        rows.append(
            {
                "trial": T.trial_name(reused["number"]),
                "trial_id": reused["trial_id"],
                "status": "reused",
                metric: reused["metrics"].get(metric),
                "epochs": reused["epochs"],
                "num_params": reused["metrics"].get("num_params"),
                "arch": space.describe(arch),
                "arch_hash": reused["arch_key"],
                "arch_json": json.dumps(arch, sort_keys=True),
                "run_id": tracker.run_ids.get(reused["trial_id"], ""),
                "reused_from": reused["source"],
                "checkpoint": reused.get("checkpoint", ""),  # the earlier trial's, if recorded
                **{f"arch.{k}": v for k, v in space.to_params(arch).items()},
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
    return f"{T.trial_name(T.trial_number(trial.config))}_{trial.trial_id}"


def checkpoint_location(checkpoint: Any, storage: str) -> str:
    """Where a checkpoint is, as `trainables.storage.filesystem` reopens it: under a storage
    URI, the whole URI with its query (the endpoint of an S3-compatible server); "" for none."""
    if checkpoint is None:
        return ""
    return locate(checkpoint.path, storage)


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
    tested = {k: v for k, v in result.summary.items() if k.startswith("best_test_")}
    if tested:  # the number to report: the validation score is the one the search optimised
        scores = "  ".join(f"{k}={v:.4f}" for k, v in sorted(tested.items()))
        stream.write(f"Held-out test split, best model: {scores}\n")
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
