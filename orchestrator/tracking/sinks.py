"""Where the writer's rounds go: MLflow's client API, or one SQL transaction per round.

A round is what the writer gathered in its batching window: new runs, metrics, params and tags
per run, and runs to close. Through `MlflowClient` it costs a few store transactions per run
(create, log_batch, terminate: on sqlite ~10 ms CPU per trial); a search of 200 short trials
then spent more CPU recording than Ray spent scheduling (benchmarks/overhead.py). `SqlSink`
writes the same rows through MLflow's own SQLAlchemy models in one transaction per round, and
replays a round that fails there (a duplicate point after a crash, a value MLflow rejects)
through the client, which knows how to handle it. tests/test_sinks.py checks that both produce
the same runs as read back by `MlflowClient`.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from orchestrator import compat

MAX_BATCH = 1000  # MLflow's limit on metrics per log_batch
# MLflow's answers to a value it will never take (a bad name, a changed param): the item is
# skipped and reported; any other failure (no connection, a server error) fails the round.
BAD_VALUE = {"INVALID_PARAMETER_VALUE", "BAD_REQUEST"}


def is_bad_value(error: Exception) -> bool:
    return getattr(error, "error_code", None) in BAD_VALUE


class ClientSink:
    """Every round through the public client API (any store: sqlite, server, databricks)."""

    def __init__(self, client: Any):
        self.client = client
        self.pending: dict[str, dict[str, list]] = {}  # run id -> metrics / params / tags
        self.ends: list[tuple[str, str]] = []
        self.created: set[str] = set()  # runs that exist in the store, whatever came after
        self.rejected: list[tuple[str, str, str, str]] = []  # (run id, kind, key, why)

    def create(self, experiment_id: str, name: str, tags: dict[str, str]) -> str:
        run_id = self.client.create_run(experiment_id, run_name=name, tags=tags).info.run_id
        self.created.add(run_id)
        return run_id

    def discard(self) -> None:
        """Forget a failed round's pending writes (the writer retries its events)."""
        self.pending, self.ends = {}, []

    def log(self, run_id: str, metrics=(), params=(), tags=()) -> None:
        b = self.pending.setdefault(run_id, {"metrics": [], "params": [], "tags": []})
        b["metrics"] += metrics
        b["params"] += params
        b["tags"] += tags

    def end(self, run_id: str, status: str) -> None:
        self.ends.append((run_id, status))

    def reopen(self, run_id: str) -> None:
        """A resumed trial's run: RUNNING again, with no end time."""
        self.ends.append((run_id, "RUNNING"))

    def commit(self) -> None:
        """Writes the round. Raises on a failure that a retry may cure (the writer then retries
        the round's events: MLflow ignores repeated points and equal params)."""
        pending, ends = self.pending, self.ends
        self.pending, self.ends = {}, []
        for run_id, b in pending.items():
            try:
                self._log_batches(run_id, b["metrics"], b["params"], b["tags"])
            except Exception as e:
                if not is_bad_value(e):
                    raise
                self._log_one_by_one(run_id, b)
        # A run is closed after its round's single log_batch: its last points and its end cost
        # one store transaction less each.
        for run_id, status in ends:
            if status == "RUNNING":
                self.client.update_run(run_id, status=status)
            else:
                self.client.set_terminated(run_id, status=status)

    def _log_batches(self, run_id: str, metrics: list, params: list, tags: list) -> None:
        for i in range(0, max(1, len(metrics)), MAX_BATCH):
            self.client.log_batch(
                run_id,
                metrics=metrics[i : i + MAX_BATCH],
                params=params if i == 0 else [],
                tags=tags if i == 0 else [],
            )

    def _log_one_by_one(self, run_id: str, b: dict[str, list]) -> None:
        """MLflow refused the batch for one bad value: write every item on its own, skip and
        report the ones it refuses, so they never take the others with them."""
        for kind in ("params", "tags", "metrics"):
            for item in dict.fromkeys(b[kind]) if kind == "metrics" else b[kind]:
                try:
                    self._log_batches(run_id, **{k: [item] if k == kind else [] for k in b})
                except Exception as e:
                    if not is_bad_value(e):
                        raise
                    why = str(getattr(e, "message", e)).splitlines()[0][:200]
                    self.rejected.append((run_id, kind[:-1], item.key, why))


class SqlSink(ClientSink):
    """One transaction per round into a SQL tracking store (sqlite, postgres, mysql)."""

    def __init__(self, client: Any, store: Any):
        super().__init__(client)
        self.store = store
        self.new_runs: list[Any] = []
        self.artifact_roots: dict[str, str] = {}
        self.replayed = 0  # rounds that went through the client instead

    def create(self, experiment_id: str, name: str, tags: dict[str, str]) -> str:
        # What SqlAlchemyStore.create_run writes, with the id chosen here.
        from mlflow.entities import LifecycleStage, RunStatus, SourceType

        models = compat.mlflow_sql_models()

        if experiment_id not in self.artifact_roots:
            experiment = self.store.get_experiment(experiment_id)
            self.artifact_roots[experiment_id] = experiment.artifact_location
        run_id = uuid.uuid4().hex
        root = self.artifact_roots[experiment_id]
        run = models.run(
            name=name,
            artifact_uri=compat.mlflow_artifact_uri(root, run_id),
            run_uuid=run_id,
            experiment_id=int(experiment_id),
            source_type=SourceType.to_string(SourceType.UNKNOWN),
            source_name="",
            entry_point_name="",
            user_id=tags.get("mlflow.user", "unknown"),
            status=RunStatus.to_string(RunStatus.RUNNING),
            start_time=int(time.time() * 1000),
            end_time=None,
            deleted_time=None,
            source_version="",
            lifecycle_stage=LifecycleStage.ACTIVE,
        )
        tags = {**tags, "mlflow.runName": name}
        run.tags = [models.tag(key=k, value=v) for k, v in tags.items()]
        self.new_runs.append(run)
        return run_id

    def discard(self) -> None:
        super().discard()
        self.new_runs = []

    def commit(self) -> None:
        if not self.new_runs and not self.pending and not self.ends:
            return
        new_ids = {run.run_uuid for run in self.new_runs}
        try:
            with self.store.ManagedSessionMaker(read_only=False) as session:
                session.add_all(self.new_runs)
                self._write(session)
        except Exception:
            # Rolled back: create the runs on their own, then replay the rest through the
            # client, which handles duplicates and skips invalid values one at a time. If the
            # store itself fails here, the round fails and the writer retries it.
            if self.new_runs:
                with self.store.ManagedSessionMaker(read_only=False) as session:
                    session.add_all(self.new_runs)
                self.created |= new_ids
            self.new_runs = []
            self.replayed += 1
            super().commit()
            return
        self.created |= new_ids
        self.new_runs, self.pending, self.ends = [], {}, []

    def _write(self, session: Any) -> None:
        from mlflow.entities import RunStatus

        models = compat.mlflow_sql_models()
        latest: dict[tuple[str, str], Any] = {}
        tags: dict[tuple[str, str], str] = {}
        for run_id, b in self.pending.items():
            # As MLflow would store them: its validator refuses bad names, truncates long values.
            metrics, params, tags_in = compat.mlflow_validate_batch(
                b["metrics"], b["params"], b["tags"]
            )
            session.add_all(models.param(run_uuid=run_id, key=p.key, value=p.value) for p in params)
            for m in dict.fromkeys(metrics):  # MLflow drops exact repeats within a batch
                is_nan, value = self.store.sanitize_metric_value(m.value)
                row = models.metric(
                    run_uuid=run_id, key=m.key, value=value, timestamp=m.timestamp,
                    step=m.step, is_nan=is_nan,
                )  # fmt: skip
                session.add(row)
                newest = latest.get((run_id, m.key))
                if newest is None or _order(row) > _order(newest):
                    latest[(run_id, m.key)] = row
            tags.update({(run_id, t.key): t.value for t in tags_in})
        if latest:
            for row in _rows(session, models.latest_metric, {r for r, _ in latest}):
                new = latest.pop((row.run_uuid, row.key), None)
                if new is not None and _order(new) > _order(row):
                    row.value, row.step = new.value, new.step
                    row.timestamp, row.is_nan = new.timestamp, new.is_nan
            session.add_all(
                models.latest_metric(
                    run_uuid=m.run_uuid,
                    key=m.key,
                    value=m.value,
                    timestamp=m.timestamp,
                    step=m.step,
                    is_nan=m.is_nan,
                )  # fmt: skip
                for m in latest.values()
            )
        if tags:
            for row in _rows(session, models.tag, {r for r, _ in tags}):
                value = tags.pop((row.run_uuid, row.key), None)
                if value is not None:
                    row.value = value
            session.add_all(models.tag(run_uuid=r, key=k, value=v) for (r, k), v in tags.items())
        if self.ends:
            status = dict(self.ends)
            now = int(time.time() * 1000)
            for run in _rows(session, models.run, set(status)):
                run.status = RunStatus.to_string(RunStatus.from_string(status[run.run_uuid]))
                run.end_time = None if run.status == "RUNNING" else now


def _rows(session: Any, model: Any, run_ids: set[str], chunk: int = 500) -> list[Any]:
    """The model's rows of these runs, asked for in chunks (old SQLite takes 999 variables)."""
    ids = sorted(run_ids)
    return [
        row
        for i in range(0, len(ids), chunk)
        for row in session.query(model).filter(model.run_uuid.in_(ids[i : i + chunk]))
    ]


def _order(metric: Any) -> tuple:
    """MLflow's rule for a run's latest value of a metric: highest step, then time, then value."""
    return (metric.step, metric.timestamp, metric.value)


def make_sink(client: Any) -> ClientSink:
    """The SQL path where the client's store is MLflow's SQLAlchemy store and its schema is the
    one this path writes; the client otherwise (a server, or an MLflow whose tables moved)."""
    try:
        store = compat.mlflow_sql_store(client)
        if store is None or compat.mlflow_sql_schema_problem(store) is not None:
            return ClientSink(client)
    except (ImportError, AttributeError):  # MLflow moved its internals: the public path
        return ClientSink(client)
    return SqlSink(client, store)
