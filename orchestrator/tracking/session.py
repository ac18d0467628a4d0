"""The search's side of MLflow: experiment, parent run, final summary and best model."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from orchestrator.config import ExperimentConfig, default_tracking_uri
from orchestrator.core import tags as T
from orchestrator.core.errors import UserError, first_line
from orchestrator.core.phases import phase
from orchestrator.reporting.leaderboard import leaderboard, to_markdown
from trainables.storage import locked, without_secrets

# Without this tag MLflow 3 opens an experiment on its GenAI overview, not on the runs.
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
SECRET = re.compile(
    r"(token|password|passwd|secret|credential|api[_-]?key|access[_-]?key|^key$)", re.I
)


@dataclass
class Tracking:
    client: Any
    uri: str
    experiment_id: str
    parent_run_id: str


def mask_secrets(value: Any) -> Any:
    """Config values under secret-looking keys are never written to MLflow."""
    if isinstance(value, dict):
        return {k: "***" if SECRET.search(str(k)) else mask_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_secrets(v) for v in value]
    return value


def check_reachable(uri: str, timeout: float = 5.0, field: str = "tracking.uri") -> None:
    """A tracking store that cannot be used fails in seconds, before anything starts: a server
    that does not answer or refuses this process's credentials, a database whose driver is not
    installed. `field` names the user's input in the error."""
    if uri.startswith(("http://", "https://")):
        _check_server(uri, timeout, field)
    elif "://" in uri and not uri.startswith(("sqlite:", "file:")):
        _check_database_driver(uri, field)


def _check_server(uri: str, timeout: float, field: str) -> None:
    base = uri.rstrip("/")
    try:
        urllib.request.urlopen(base + "/health", timeout=timeout).read()
        # /health answers anyone; a read of the API says whether the credentials are accepted
        # (MLflow's basic-auth app, or a proxy in front of the server).
        request = urllib.request.Request(
            base + "/api/2.0/mlflow/experiments/search?max_results=1", headers=_auth_headers()
        )
        urllib.request.urlopen(request, timeout=timeout).read()
    except urllib.error.HTTPError as e:
        if e.code not in (401, 403):
            return  # not ours to judge (an older server's API): the client says what is wrong
        user = os.environ.get("MLFLOW_TRACKING_USERNAME")
        if e.code == 401 and not (user or os.environ.get("MLFLOW_TRACKING_TOKEN")):
            raise UserError(
                f"{field}: {base} asks for credentials (HTTP 401): set "
                "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
            ) from None
        who = f"MLFLOW_TRACKING_USERNAME={user}" if user else "MLFLOW_TRACKING_TOKEN"
        raise UserError(
            f"{field}: {base} refused the credentials of {who} (HTTP {e.code}): check "
            "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
        ) from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise UserError(f"{field}: MLflow server at {uri} is unreachable ({reason})") from None


def _auth_headers() -> dict[str, str]:
    """What MLflow's client sends: a bearer token, or basic auth, from its variables."""
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    if token:
        return {"Authorization": f"Bearer {token}"}
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    if not user:
        return {}
    pair = f"{user}:{os.environ.get('MLFLOW_TRACKING_PASSWORD', '')}".encode()
    return {"Authorization": "Basic " + base64.b64encode(pair).decode()}


# Database drivers a store URI may need, and where nasorch declares them.
DRIVER_EXTRAS = {
    "psycopg": "nasorch[postgres]",  # SQLAlchemy's default for postgresql://
    "psycopg2": "psycopg2-binary",  # postgresql+psycopg2://
    "MySQLdb": "mysqlclient",
}


def _check_database_driver(uri: str, field: str) -> None:
    """A database URI (postgresql://, mysql://) whose driver is missing: one line naming the
    package, instead of MLflow's "No module named 'psycopg'" at the first query."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        make_url(uri).get_dialect().import_dbapi()
    except (ArgumentError, NoSuchModuleError, ValueError):
        return  # not a database URI SQLAlchemy knows: the store says what is wrong with it
    except ImportError as e:
        module = (e.name or "").split(".")[0] or "the database driver"
        package = DRIVER_EXTRAS.get(module, module)
        scheme = uri.split("://", 1)[0]
        raise UserError(
            f'{field}: {scheme}:// needs the {module} driver: pip install "{package}"'
        ) from None


def _local_artifact_root(uri: str) -> str | None:
    """A sqlite store keeps its artifacts in a folder next to the database file."""
    if not uri.startswith("sqlite:///"):
        return None
    db = Path(uri.removeprefix("sqlite:///"))
    try:
        db.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"tracking.uri: cannot create {db.parent} ({e.strerror})") from None
    return (db.parent / "mlartifacts").resolve().as_uri()


def get_experiment(client: Any, name: str, uri: str) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is None:
        from mlflow.exceptions import MlflowException

        root = _local_artifact_root(uri)
        root = f"{root}/{name}" if root else None
        try:
            return client.create_experiment(name, artifact_location=root, tags=EXPERIMENT_KIND)
        except MlflowException:  # another search created it a moment ago (on a server)
            exp = client.get_experiment_by_name(name)
            if exp is None:
                raise
    if exp.lifecycle_stage == "deleted":
        client.restore_experiment(exp.experiment_id)
    for k, v in EXPERIMENT_KIND.items():
        if exp.tags.get(k) != v:
            client.set_experiment_tag(exp.experiment_id, k, v)
    return exp.experiment_id


def client_for(uri: str, field: str = "tracking.uri") -> Any:
    """An MlflowClient on a store that answers (a server is checked first, in seconds). A local
    SQLite store is created (or migrated) here, under a lock: two searches, or a search and
    `nasorch ui`, that create it at the same moment would break each other's migration."""
    from mlflow.tracking import MlflowClient

    for name in ("mlflow", "alembic"):  # mlflow sets its own levels when first imported
        logging.getLogger(name).setLevel(logging.WARNING)
    check_reachable(uri, field=field)
    if not uri.startswith("sqlite:///"):
        return MlflowClient(tracking_uri=uri)
    with store_lock(uri):  # the client may create the store as it is made, or at its first call
        client = MlflowClient(tracking_uri=uri)
        client.search_experiments(max_results=1)
    return client


def existing_client(uri: str, field: str) -> Any:
    """`client_for`, refusing a local store that does not exist: for commands that read past
    records (`nasorch compare`, `simulate --source mlflow:`), where MLflow would silently create
    an empty one and find nothing in it."""
    db = uri.removeprefix("sqlite:///").split("?", 1)[0]
    if uri.startswith("sqlite:///") and not Path(db).exists():
        raise UserError(f"{field}: no MLflow store at {db}")
    return client_for(uri, field=field)


@contextlib.contextmanager
def store_lock(uri: str) -> Iterator[None]:
    """An exclusive lock on a local SQLite store (a `.lock` file next to the database)."""
    db = Path(uri.removeprefix("sqlite:///").split("?", 1)[0])
    with locked(db.with_name(db.name + ".lock")):
        yield


def connect_store(cfg: ExperimentConfig) -> tuple[Any, str]:
    """(MlflowClient, experiment id). The slow part of starting a search's records (importing
    MLflow, creating or migrating the store), so the runner does it while Ray starts."""
    uri = cfg.tracking_uri()
    _local_artifact_root(uri)
    try:
        client = client_for(uri)
        # Two searches of one name starting together would both create its experiment.
        with store_lock(uri) if uri.startswith("sqlite:///") else contextlib.nullcontext():
            return client, get_experiment(client, cfg.experiment_name(), uri)
    except UserError:
        raise
    except Exception as e:  # a broken store URI: say which, not a traceback
        raise UserError(
            f"tracking.uri: cannot use MLflow store {uri}: {first_line(e, 200)}"
        ) from None


def open_search(
    cfg: ExperimentConfig,
    store: tuple[Any, str] | None = None,
    tags: dict[str, str] | None = None,
) -> Tracking:
    """The search's parent run, with its config and `tags` (its fingerprints); `store` from
    connect_store if already done."""
    client, experiment_id = store or connect_store(cfg)
    uri = cfg.tracking_uri()
    started = time.strftime("%Y-%m-%d %H:%M")
    run = client.create_run(
        experiment_id,
        run_name=f"{cfg.name} · {cfg.searcher.name}+{cfg.scheduler.name} · {started}",
        tags={
            T.ROLE: "search",
            T.EXPERIMENT: cfg.name,
            T.SEARCHER: cfg.searcher.name,
            T.SCHEDULER: cfg.scheduler.name,
            T.SEARCH_SPACE: cfg.search_space.name,
            T.TRAINABLE: cfg.trainable.name,
            **(tags or {}),
        },
    )
    run_id = run.info.run_id
    safe = mask_secrets(cfg.model_dump(mode="json"))
    client.log_text(run_id, _yaml(safe), "config.yaml")
    from mlflow.entities import Param

    params = [Param(k, str(v)[:6000]) for k, v in _flatten(safe).items()]
    client.log_batch(run_id, params=params)
    return Tracking(client, uri, experiment_id, run_id)


def reopen_search(cfg: ExperimentConfig, parent_run_id: str) -> Tracking:
    """The parent run of a search being resumed, marked running again."""
    uri = cfg.tracking_uri()
    client = client_for(uri)
    try:
        run = client.get_run(parent_run_id)
    except Exception as e:
        raise UserError(
            f"tracking.uri: parent run {parent_run_id} not found in {uri}: {first_line(e, 200)}"
        ) from None
    client.update_run(parent_run_id, status="RUNNING")
    client.set_tag(parent_run_id, T.RESUMED, time.strftime("%Y-%m-%d %H:%M:%S"))
    return Tracking(client, uri, run.info.experiment_id, parent_run_id)


def finish_search(
    tracking: Tracking,
    cfg: ExperimentConfig,
    trials: pd.DataFrame,
    best: dict | None,
    space: Any,
    extra_metrics: dict[str, float] | None = None,
    files: list[str] | None = None,
    out_dir: str | None = None,
    seen: dict | None = None,
    trainable: Any = None,
    curves: dict[str, list[tuple[int, float]]] | None = None,
) -> dict[str, float]:
    """The parent run's summary: counts, the best trial, the tables, the plots, the best
    model when the trainable can rebuild it from a checkpoint (`trainable.fn.best_model`), and
    `curves`, metric series of the search itself as (step, value) pairs."""
    from mlflow.entities import Metric, RunTag

    client, run_id = tracking.client, tracking.parent_run_id
    status = trials["status"] if len(trials) else pd.Series(dtype=str)
    now = int(time.time() * 1000)
    metrics = {
        "trials_completed": int((status == "completed").sum()),
        "trials_stopped_early": int((status == "stopped_early").sum()),
        "trials_errored": int((status == "errored").sum()),
        "total_epochs": int(trials["epochs"].sum()) if len(trials) else 0,
        **(extra_metrics or {}),
    }
    tags = []
    if best is not None:
        metrics[f"best_{cfg.metric}"] = float(best[cfg.metric])
        tags = [
            RunTag(T.BEST_TRIAL, best["trial"]),
            RunTag(T.BEST_RUN_ID, best["run_id"]),
        ]
    client.log_batch(run_id, metrics=[Metric(k, v, now, 0) for k, v in metrics.items()], tags=tags)
    points = [
        Metric(k, float(v), now, step) for k, pairs in (curves or {}).items() for step, v in pairs
    ]
    for i in range(0, len(points), 1000):  # MLflow takes at most 1,000 metrics per batch
        client.log_batch(run_id, metrics=points[i : i + 1000])
    board = leaderboard(trials, cfg.metric, cfg.mode, top=len(trials))
    tables = {
        "leaderboard.csv": board.to_csv(index=False),
        "leaderboard.md": to_markdown(board) + "\n",
        "trials.csv": recordable(trials).to_csv(index=False),
    }
    for name, text in tables.items():  # on the parent run, and next to Ray's results
        if out_dir:
            Path(out_dir, name).write_text(text)
            client.log_artifact(run_id, str(Path(out_dir, name)))
        else:
            client.log_text(run_id, text, name)
    for path in files or []:
        client.log_artifact(run_id, path)
    rebuild = getattr(getattr(trainable, "fn", None), "best_model", None)
    tested: dict[str, float] = {}
    # A reused best trial has no checkpoint here (it trained in an earlier search).
    checkpoint = best.get("checkpoint") if best is not None else None
    if isinstance(checkpoint, str) and checkpoint and rebuild is not None:
        from orchestrator.tracking.best_model import log_best_model

        with phase("log the best model"):
            test = getattr(trainable.fn, "test_metrics", None)
            tested = log_best_model(
                tracking, rebuild, space, best, trainable.options, test,
                register_as=cfg.tracking.register_model,
            )  # fmt: skip
    from orchestrator.reporting.plots import log_search_plots  # never raises: warns instead

    with phase("draw and log the plots"):
        log_search_plots(
            client, run_id, tracking.experiment_id, trials, cfg.metric, cfg.mode, out_dir, seen
        )
    return tested


def recordable(trials: pd.DataFrame) -> pd.DataFrame:
    """The trials table as it may be recorded: checkpoint URIs without credentials."""
    if "checkpoint" not in trials:
        return trials
    return trials.assign(checkpoint=trials["checkpoint"].fillna("").map(without_secrets))


def end(tracking: Tracking, status: str) -> None:
    tracking.client.set_terminated(tracking.parent_run_id, status=status)


@contextlib.contextmanager
def ended_on_error(tracking: Tracking) -> Iterator[None]:
    """Whatever stops a search between opening its parent run and running it closes that run:
    KILLED on Ctrl+C, FAILED otherwise (never left RUNNING)."""
    try:
        yield
    except BaseException as e:
        with contextlib.suppress(Exception):  # the original error is the one to report
            end(tracking, "KILLED" if isinstance(e, KeyboardInterrupt) else "FAILED")
        raise


def runs_page_url(base: str, experiment_id: str) -> str:
    """The experiment's training runs. MLflow 3.17 picks its GenAI or model-training layout
    from the workflowType parameter, not from the experiment's tag, so name it."""
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"


def ui_hint(uri: str, experiment_id: str) -> str:
    if uri.startswith(("http://", "https://")):
        return runs_page_url(uri, experiment_id)
    flag = "" if uri == default_tracking_uri() else f" --tracking-uri '{uri}'"
    page = runs_page_url("http://127.0.0.1:5000", experiment_id)
    return f"nasorch ui{flag}   # then open {page}"


def _flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v and k != "options":
            out.update(_flatten(v, key + "."))
        elif isinstance(v, (dict, list)):
            out[key] = json.dumps(v, sort_keys=True)
        else:
            out[key] = v
    return out


def _yaml(data: dict) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False)
