"""The README's cluster chapter, executed on this machine: one story, start to finish.

What a user does to run nasorch on a cluster, step by step, each step named by its README line:
the shared services (an S3-compatible store for Ray's storage, the data and MLflow's artifacts;
MLflow's server on PostgreSQL behind basic auth), Ray's token, a head and a worker started with
`ray start`, `nasorch run --address` of the torch trainable with ASHA, a held-out test split and a
registered model, and then what goes wrong on a real cluster: a worker node is lost mid-search,
then the driver itself is killed, and `nasorch resume` finishes the search.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psutil
import pytest
import yaml

from tests.helpers_procs import (
    BIN,
    ProcessGroups,
    clean_env,
    free_ports,
    join_node,
    kill_tree,
    port_open,
    process_tree,
    ray_start,
    tails,
    wait_for,
)
from tests.helpers_servers import (
    S3_ENV,
    classification_csv,
    load_and_predict,
    postgres,
    production_mlflow,
    s3_server,
)

pytestmark = pytest.mark.integration

NAME, TRIALS, EPOCHS = "rehearsal", 8, 6


def test_the_cluster_chapter(request, monkeypatch):
    # A short root: Ray's unix sockets live under it and their paths are limited to 107 bytes.
    tmp = Path(tempfile.mkdtemp(prefix="nasorch-rh-"))
    request.addfinalizer(lambda: shutil.rmtree(tmp, ignore_errors=True))
    homes = {who: tmp / who for who in ("laptop", "head", "worker")}  # each machine's ~
    for home in homes.values():
        home.mkdir()
    ours: list[psutil.Process] = []  # every process the story started, checked gone at the end

    # "Before the first launch", the services a cluster shares: an S3-compatible store (the
    # README's NASORCH_SHARED) and the MLflow server on PostgreSQL, its artifacts on that store,
    # behind `mlflow server --app-name basic-auth` (the README's security note).
    with (
        postgres() as db,
        s3_server(tmp) as s3,
        production_mlflow(tmp, db, s3) as mlflow_server,
        ProcessGroups() as groups,
    ):
        # The user's data goes to the shared store; no node has it on disk.
        csv = classification_csv(tmp / "train.csv", rows=1200)
        s3.client().upload_file(str(csv), "nasorch", "data/train.csv")
        csv.unlink()

        # Step 2: "Create the Ray token that every node and every client must present", and
        # copy it to each node (what cluster.yaml does).
        env = clean_env()
        env.update(S3_ENV, RAY_AUTH_MODE="token")  # S3 keys: the nodes' instance role
        env.pop("RAY_AUTH_TOKEN_PATH", None)
        laptop = {**env, "HOME": str(homes["laptop"])}
        subprocess.run(
            [str(BIN / "ray"), "get-auth-token", "--generate"], env=laptop, check=True,
            capture_output=True, timeout=60,
        )  # fmt: skip
        token = homes["laptop"] / ".ray" / "auth_token"
        assert token.is_file()
        for who in ("head", "worker"):
            (homes[who] / ".ray").mkdir()
            shutil.copy(token, homes[who] / ".ray" / "auth_token")

        # "ray up cluster.yaml": a head, then a worker joining it, each `ray start` with the
        # token. The head notices a lost node within seconds rather than Ray's half minute.
        gcs, *ports = free_ports(1 + 12)
        address = f"127.0.0.1:{gcs}"
        logs = [tmp / "head.log", tmp / "worker.log", tmp / "run.log", tmp / "resume.log"]
        logs += [mlflow_server.log]
        node_env = {**env, "RAY_health_check_period_ms": "500"}
        node_env["RAY_health_check_failure_threshold"] = "3"
        head_cmd = ray_start(ports[:6], "--head", "--port", str(gcs), "--include-dashboard",
                             "false", "--temp-dir", str(tmp / "ray"))  # fmt: skip
        head = groups.start(head_cmd, logs[0], env={**node_env, "HOME": str(homes["head"])})
        wait_for(lambda: port_open(gcs), "the Ray head", 60, logs)
        worker_env = {**node_env, "HOME": str(homes["worker"])}
        worker_cmd = ray_start(ports[6:], "--address", address, "--temp-dir", str(tmp / "ray"))
        worker = join_node(
            groups, worker_cmd, logs[1], logs, address=address, env=worker_env, cwd=tmp
        )

        # The search: the quickstart's torch trainable and ASHA, the data on S3 with a held-out
        # test split, Ray's storage on S3 ("a cloud URI Ray supports"), the records on the
        # shared MLflow server, the best model registered.
        config = {
            "name": NAME,
            "metric": "val_accuracy",
            "mode": "max",
            "num_samples": TRIALS,
            "max_concurrent_trials": 2,  # one CPU per node: both nodes are busy
            "max_failures": 3,  # a trial lost with its node is retried from its checkpoint
            "seed": 0,
            "search_space": {"name": "mlp", "options": {"max_depth": 2}},
            "trainable": {
                "name": "torch",
                "options": {
                    "epochs": EPOCHS,
                    "batch_size": 8,  # small batches: epochs long enough to lose a node in
                    "dataset": {
                        "format": "csv",
                        "path": s3.uri("data/train.csv"),
                        "target": "label",
                        "test": 0.2,
                    },  # fmt: skip
                },
            },
            "searcher": {"name": "tpe"},
            "scheduler": {"name": "asha", "options": {"grace_period": 2, "reduction_factor": 3}},
            "resources": {"cpu": 1},
            "storage_path": s3.uri("ray"),
            "tracking": {"uri": mlflow_server.uri, "register_model": NAME},
        }
        (tmp / "search.yaml").write_text(yaml.safe_dump(config))
        # The driver has MLflow's credentials and the token; no S3 keys for MLflow's artifacts
        # (the server proxies them), only the instance role's for Ray's storage and the data.
        creds = {
            "MLFLOW_TRACKING_USERNAME": mlflow_server.user,
            "MLFLOW_TRACKING_PASSWORD": mlflow_server.password,
        }
        driver_env = {**laptop, **creds}
        for key, value in creds.items():  # this test reads MLflow as the user would
            monkeypatch.setenv(key, value)

        # "nasorch run examples/quickstart.yaml --address ...".
        run = [str(BIN / "nasorch"), "run", "search.yaml", "--address", address, "--quiet"]
        driver = groups.start(run, logs[2], env=driver_env, cwd=tmp)
        ours += process_tree([db.pid, s3.pid, mlflow_server.pid, head.pid, worker.pid])

        # A worker node is lost while it trains a trial: its trials move to the head (from
        # their checkpoints on S3) or are retried there.
        def training_on_worker() -> bool:
            assert driver.poll() is None, tails(logs)
            return any(_is_trial(p) for p in process_tree([worker.pid]))

        # Its trial has copied the data from S3 into the worker's own cache (the node never
        # had it on disk) and trains on it.
        cache = homes["worker"] / ".cache" / "nasorch" / "data"
        wait_for(lambda: training_on_worker() and any(cache.rglob("train.csv")),
                 "a trial training on the worker node", 180, logs)  # fmt: skip
        time.sleep(1)  # an epoch into it
        ours += process_tree([worker.pid, driver.pid])
        os.killpg(worker.pid, signal.SIGKILL)

        # Then the driver dies (SIGKILL: no cleanup) once the search has gone on without the
        # node: a trial has ended since.
        ended_at_loss = _ended(mlflow_server.uri)

        def went_on() -> bool:
            assert driver.poll() is None, f"the search ended unkilled\n{tails(logs)}"
            return _ended(mlflow_server.uri) > ended_at_loss

        wait_for(went_on, "a trial to end after the node loss", 180, logs)
        ours += process_tree([driver.pid])
        kill_tree(driver)

        # "nasorch resume <folder>" finishes it (nasorch's own files stay on the driver's disk).
        folder = next((tmp / "nasorch_results" / "ray").glob(f"{NAME}-*"))
        resume = [str(BIN / "nasorch"), "resume", str(folder), "--address", address, "--quiet"]
        resumed = groups.start(resume, logs[3], env=driver_env, cwd=tmp)
        try:
            resumed.wait(timeout=240)
        except subprocess.TimeoutExpired:
            pytest.fail(f"nasorch resume did not finish\n{tails(logs)}")
        assert resumed.returncode == 0, tails(logs)

        # Afterwards, as the user checks: every trial once, nothing left RUNNING, the test
        # score on the search's run, the registered model usable anywhere.
        from mlflow.tracking import MlflowClient

        client = MlflowClient(mlflow_server.uri)
        experiment = client.get_experiment_by_name(NAME)
        runs = client.search_runs([experiment.experiment_id], max_results=1000)
        assert not [r.info.run_name for r in runs if r.info.status == "RUNNING"]
        (parent,) = [r for r in runs if r.data.tags.get("nasorch.role") == "search"]
        assert parent.info.status == "FINISHED" and "nasorch.resumed" in parent.data.tags
        assert "best_test_val_accuracy" in parent.data.metrics, parent.data.metrics
        trials = [r for r in runs if r.data.tags.get("nasorch.role") == "trial"]
        # A kill mid-upload of Ray's snapshot can have one trial suggested again under the next
        # number: its first run is closed as superseded (README, "When things go wrong").
        superseded = [r for r in trials if r.data.tags.get("nasorch.status") == "superseded"]
        assert len(superseded) <= 1 and all(r.info.status == "KILLED" for r in superseded)
        numbers = sorted(int(r.data.tags["nasorch.trial_number"]) for r in trials)
        counted = sorted(
            int(r.data.tags["nasorch.trial_number"]) for r in trials if r not in superseded
        )
        assert counted == list(range(1, TRIALS + 1)), f"{numbers}\n{tails(logs[2:4])}"
        # The artifacts are on S3, through the server; the model loads in a fresh process.
        assert s3.keys(f"mlartifacts/{experiment.experiment_id}/")
        user = {**driver_env, "MLFLOW_TRACKING_URI": mlflow_server.uri}
        assert load_and_predict(f"models:/{NAME}/1", user)[0] == 4

        ours += process_tree([db.pid, s3.pid, mlflow_server.pid, head.pid, resumed.pid])

    # Nothing the story started is left running.
    time.sleep(1)
    left = [p for p in ours if _running(p)]
    assert not left, [(p.pid, p.name()) for p in left]


def _is_trial(proc: psutil.Process) -> bool:
    """A Ray worker process running a task or actor (an idle one is titled `ray::IDLE`)."""
    try:
        title = " ".join(proc.cmdline())
    except psutil.Error:
        return False
    return title.startswith("ray::") and not title.startswith("ray::IDLE")


def _ended(uri: str) -> int:
    """Trial runs of the search that have ended, as MLflow has them."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(NAME)
    if experiment is None:
        return 0
    runs = client.search_runs(
        [experiment.experiment_id], "tags.`nasorch.role` = 'trial'", max_results=1000
    )
    return sum(r.info.status != "RUNNING" for r in runs)


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
