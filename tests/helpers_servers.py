"""The servers of a production deployment, started for real on loopback by the integration tests:
a private PostgreSQL cluster, an S3-compatible server (moto's server mode), and `mlflow server`
as a shared installation runs it (runs in PostgreSQL, artifacts proxied to S3, MLflow's
basic-auth app). Each is a context manager that stops what it started, by process group."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import require, require_program
from tests.helpers_procs import (
    BIN,
    ProcessGroups,
    clean_env,
    free_ports,
    http_ok,
    port_open,
    wait_for,
)

BUCKET = "nasorch"
S3_KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
S3_ENV = {**S3_KEYS, "AWS_DEFAULT_REGION": "us-east-1"}


def pg_program(name: str) -> str:
    """A PostgreSQL server program: Debian keeps them off PATH, in /usr/lib/postgresql/N/bin."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else require_program(name)


@dataclass
class Postgres:
    """A running private cluster: `uri(db)` is a SQLAlchemy URI with its password."""

    port: int
    user: str
    password: str
    log: Path
    pid: int = 0  # the server's process (group leader)

    def uri(self, database: str) -> str:
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        psycopg = require("psycopg")
        with psycopg.connect(self.uri("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.uri(name)


@contextlib.contextmanager
def postgres() -> Iterator[Postgres]:
    """A PostgreSQL cluster of its own (initdb in a temp folder), listening on 127.0.0.1 and a
    free port only, password-authenticated; stopped and removed at the end. PostgreSQL refuses
    to run as root (as CI runs): then it runs as the `postgres` user Debian's package creates."""
    initdb, server = pg_program("initdb"), pg_program("postgres")
    psycopg = require("psycopg")
    root = Path(tempfile.mkdtemp(prefix="nasorch-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    (port,) = free_ports(1)
    db = Postgres(port, "nasorch", secrets.token_urlsafe(12), root / "postgres.log")
    pwfile = root / "pw"
    pwfile.write_text(db.password)
    if as_user:
        shutil.chown(pwfile, "postgres")
    try:
        subprocess.run(
            [*as_user, initdb, "-D", str(root / "data"), "-U", db.user, "--pwfile", str(pwfile),
             "--auth=scram-sha-256", "-E", "UTF8", "--no-sync", "--no-instructions"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        with ProcessGroups() as groups:
            # Durability off: a test's database need not survive a power cut, and fsyncs are slow.
            proc = groups.start(
                [*as_user, server, "-D", str(root / "data"), "-p", str(port), "-k", str(root),
                 "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
                 "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
                db.log,
            )  # fmt: skip

            def accepts() -> bool:
                try:
                    psycopg.connect(db.uri("postgres"), connect_timeout=2).close()
                except psycopg.OperationalError:
                    return False
                return True

            wait_for(accepts, "PostgreSQL", 60, [db.log])
            db.pid = proc.pid
            try:
                yield db
            finally:
                # Fast shutdown (SIGINT): clients disconnected, shared memory released; the
                # group's SIGTERM/SIGKILL after it is for whatever did not stop.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGINT)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=20)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class S3:
    """A running S3-compatible server with the bucket BUCKET."""

    endpoint: str  # host:port, as pyarrow's endpoint_override takes it
    pid: int = 0

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"

    def uri(self, key: str) -> str:
        """`s3://BUCKET/key` with the query that sends pyarrow to this server."""
        return f"s3://{BUCKET}/{key}?endpoint_override={self.endpoint}&scheme=http"

    def client(self):
        boto3 = require("boto3")
        return boto3.client("s3", endpoint_url=self.url, region_name="us-east-1", **_boto(S3_KEYS))

    def keys(self, prefix: str) -> list[str]:
        pages = (
            self.client().get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        )
        return [o["Key"] for page in pages for o in page.get("Contents", [])]


def _boto(keys: dict[str, str]) -> dict[str, str]:
    return {"aws_access_key_id": keys["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": keys["AWS_SECRET_ACCESS_KEY"]}  # fmt: skip


@contextlib.contextmanager
def s3_server(logs: Path) -> Iterator[S3]:
    """moto's S3 server on loopback with the bucket BUCKET; its credentials are S3_ENV."""
    (port,) = free_ports(1)
    log = logs / "moto.log"
    with ProcessGroups() as groups:
        cmd = [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]
        proc = groups.start(cmd, log, env=clean_env())
        wait_for(lambda: port_open(port), "the S3 server", 60, [log])
        s3 = S3(f"127.0.0.1:{port}", proc.pid)
        s3.client().create_bucket(Bucket=BUCKET)
        yield s3


@dataclass
class ProductionMlflow:
    """`mlflow server` on PostgreSQL, artifacts on S3 through it, behind basic auth."""

    uri: str
    user: str
    password: str
    log: Path
    artifacts: str  # the S3 prefix of its artifacts
    pid: int = 0

    def client_env(self, password: str | None = None) -> dict[str, str]:
        """A driver's environment: MLflow credentials, and no S3 credentials at all (the server
        proxies the artifacts)."""
        env = {k: v for k, v in clean_env().items() if not k.startswith(("AWS_", "MLFLOW_S3"))}
        env.update(
            MLFLOW_TRACKING_URI=self.uri,
            MLFLOW_TRACKING_USERNAME=self.user,
            MLFLOW_TRACKING_PASSWORD=self.password if password is None else password,
        )
        return env


@contextlib.contextmanager
def production_mlflow(root: Path, db: Postgres, s3: S3) -> Iterator[ProductionMlflow]:
    """The README's shared tracking server: `--backend-store-uri postgresql://...`,
    `--artifacts-destination s3://...` (only the server holds the S3 credentials) and
    `--app-name basic-auth`, whose users live in their own database and whose admin is created
    from `admin_password` in the file MLFLOW_AUTH_CONFIG_PATH names."""
    (port,) = free_ports(1)
    password = secrets.token_urlsafe(18)
    auth_ini = root / "basic_auth.ini"
    auth_ini.write_text(
        "[mlflow]\ndefault_permission = READ\n"
        f"database_uri = {db.create_database('mlflow_auth')}\n"
        f"admin_username = admin\nadmin_password = {password}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    env = clean_env()
    env.update(
        S3_ENV,
        MLFLOW_S3_ENDPOINT_URL=s3.url,
        MLFLOW_AUTH_CONFIG_PATH=str(auth_ini),
        MLFLOW_FLASK_SERVER_SECRET_KEY=secrets.token_hex(16),
    )
    artifacts = f"s3://{BUCKET}/mlartifacts"
    log = root / "mlflow.log"
    cmd = [
        str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
        "--backend-store-uri", db.create_database("mlflow"), "--serve-artifacts",
        "--artifacts-destination", artifacts, "--app-name", "basic-auth", "--workers", "1",
    ]  # fmt: skip
    with ProcessGroups() as groups:
        proc = groups.start(cmd, log, env=env, cwd=root)
        uri = f"http://127.0.0.1:{port}"
        wait_for(lambda: http_ok(f"{uri}/health"), "the MLflow server", 120, [log])
        yield ProductionMlflow(uri, "admin", password, log, artifacts, proc.pid)


def load_and_predict(model_uri: str, env: dict[str, str], timeout: float = 120) -> list[int]:
    """Loads `model_uri` with mlflow.pyfunc in a fresh Python process (nothing of this one's
    imports or caches) and predicts on the input example logged with it (a few rows of the
    data); returns the predictions' shape."""
    code = (
        "import json, sys, mlflow.pyfunc, numpy as np\n"
        f"model = mlflow.pyfunc.load_model({model_uri!r})\n"
        "out = np.asarray(model.predict(np.asarray(model.input_example, dtype=np.float32)))\n"
        "assert np.isfinite(out).all(), out\n"
        "print(json.dumps(list(out.shape)))\n"
    )
    started = time.monotonic()
    done = subprocess.run(
        [str(BIN / "python"), "-c", code], env=env, capture_output=True, text=True, timeout=timeout
    )
    took = time.monotonic() - started
    assert done.returncode == 0, f"loading {model_uri} failed ({took:.0f}s):\n{done.stderr[-3000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def classification_csv(path: Path, rows: int = 240, seed: int = 0) -> Path:
    """A small table a network learns in two epochs: 6 features, 3 classes (a column `label`)
    whose means differ."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    label = rng.integers(0, 3, rows)
    x = rng.normal(size=(rows, 6)) + label[:, None] * 1.5
    table = pd.DataFrame(x, columns=[f"f{i}" for i in range(6)]).assign(label=label)
    table.to_csv(path, index=False)
    return path
