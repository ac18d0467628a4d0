"""MLflow as a shared installation runs it: `mlflow server` with its runs in PostgreSQL, its
artifacts on an S3-compatible store (proxied: only the server holds the S3 credentials), behind
MLflow's basic-auth app; and `tracking.uri: postgresql://...` straight to the database.

A search through that server logs its best model, plots and leaderboard onto S3 through the
server, the registered model loads in a fresh process, and a wrong password is one line, exit 2,
before anything starts."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from orchestrator.commands.cli import main
from tests.conftest import ROOT
from tests.helpers_procs import ProcessGroups, nasorch_cmd
from tests.helpers_servers import (
    ProductionMlflow,
    classification_csv,
    load_and_predict,
    postgres,
    production_mlflow,
    s3_server,
)

integration = pytest.mark.integration


@pytest.fixture(scope="module")
def stack() -> Iterator[dict]:
    """PostgreSQL, the S3 server and the authenticated MLflow server on them; stopped after."""
    root = Path(tempfile.mkdtemp(prefix="nasorch-prod-"))
    try:
        with postgres() as db, s3_server(root) as s3, production_mlflow(root, db, s3) as server:
            yield {"db": db, "s3": s3, "server": server, "root": root}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def search_config(folder: Path, name: str, tracking: dict) -> Path:
    """The quickstart (torch MLP, TPE, ASHA), cut to 2 trials of 2 epochs (ASHA's first rung at
    1), on a small CSV with a held-out test split."""
    cfg = yaml.safe_load((ROOT / "examples" / "quickstart.yaml").read_text())
    csv = classification_csv(folder / "data.csv")
    cfg.update(name=name, num_samples=2, storage_path=str(folder / "ray"), tracking=tracking)
    cfg["scheduler"]["options"]["grace_period"] = 1
    cfg["trainable"]["options"].update(
        epochs=2, dataset={"format": "csv", "path": str(csv), "target": "label", "test": 0.2}
    )
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def run_driver(folder: Path, config: Path, env: dict[str, str], timeout: float = 300) -> str:
    log = folder / f"{config.stem}.log"
    with ProcessGroups() as groups:
        proc = groups.start(nasorch_cmd(config), log, env=env, cwd=folder)
        proc.wait(timeout=timeout)
    output = log.read_text(errors="replace")
    assert proc.returncode == 0, output[-4000:]
    return output


@integration
@pytest.mark.parametrize("password", [None, "wrong"])
def test_refused_credentials_are_one_line_before_anything_starts(
    stack, password, tmp_path, monkeypatch, capsys
):
    server: ProductionMlflow = stack["server"]
    env = server.client_env("wrong" if password else None)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    if password is None:
        monkeypatch.delenv("MLFLOW_TRACKING_USERNAME")
        monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD")
    name = f"refused-{password}"
    config = search_config(tmp_path, name, {"uri": server.uri})
    assert main(["run", str(config), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    expected = "refused the credentials" if password else "asks for credentials"
    assert err.count("\n") == 0 and expected in err and "HTTP 401" in err, err
    assert "MLFLOW_TRACKING_PASSWORD" in err
    # Nothing started: no file in the storage folder (the preflight made it), no experiment.
    assert not [p for p in (tmp_path / "ray").rglob("*") if p.is_file()]
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", server.user)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", server.password)
    from mlflow.tracking import MlflowClient

    assert MlflowClient(server.uri).get_experiment_by_name(name) is None


@integration
def test_search_through_the_authenticated_server(stack, tmp_path, monkeypatch):
    server: ProductionMlflow = stack["server"]
    env = server.client_env()  # MLflow's credentials; no S3 credentials at all
    config = search_config(tmp_path, "prod-mlflow", {"uri": server.uri, "register_model": "prod"})
    output = run_driver(tmp_path, config, env)
    assert "Top 2 of 2 trials" in output, output[-3000:]

    for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.setenv(key, env[key])
    from mlflow.tracking import MlflowClient

    client = MlflowClient(server.uri)
    experiment = client.get_experiment_by_name("prod-mlflow")
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    assert len(runs) == 3 and all(r.info.status == "FINISHED" for r in runs)
    (parent,) = [r for r in runs if r.data.tags.get("nasorch.role") == "search"]
    assert "best_test_val_accuracy" in parent.data.metrics

    # The artifacts went to S3 through the server (which alone has the keys), none to the disk.
    keys = stack["s3"].keys(f"mlartifacts/{experiment.experiment_id}/")
    names = {k.rsplit("/", 1)[-1] for k in keys}
    assert {"leaderboard.md", "leaderboard.csv", "MLmodel"} <= names, sorted(names)
    assert any(n.endswith(".png") for n in names), sorted(names)
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "mlartifacts").exists()

    # The registered best model, in a process that shares nothing with this one.
    assert load_and_predict("models:/prod/1", env)[0] == 4  # the 4 rows of its input example


@integration
def test_tracking_uri_straight_to_postgresql(stack, tmp_path):
    server: ProductionMlflow = stack["server"]
    uri = stack["db"].create_database("direct")
    config = {
        "name": "direct",
        "metric": "score",
        "num_samples": 2,
        "search_space": {"name": "custom", "options": {"params": {"a": ["x", "yy"]}}},
        "trainable": {"name": "tests.helpers:noop"},
        "storage_path": str(tmp_path / "ray"),
        "tracking": {"uri": uri},
    }
    path = tmp_path / "direct.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {k: v for k, v in server.client_env().items() if k != "MLFLOW_TRACKING_URI"}
    run_driver(tmp_path, path, env)

    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("direct")
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    roles = sorted(r.data.tags.get("nasorch.role") for r in runs)
    assert roles == ["search", "trial", "trial"] and all(r.info.status == "FINISHED" for r in runs)


def test_a_missing_database_driver_names_the_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if `nasorch[postgres]` were missing
    config = tmp_path / "c.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "name": "no-driver",
                "metric": "score",
                "search_space": {"name": "custom", "options": {"params": {"a": ["x"]}}},
                "trainable": {"name": "tests.helpers:noop"},
                "tracking": {"uri": "postgresql://u:p@127.0.0.1:9/mlflow"},
            }
        )
    )
    assert main(["run", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "nasorch: error: tracking.uri: postgresql:// needs the psycopg driver: pip install "
        '"nasorch[postgres]"'
    ), err
