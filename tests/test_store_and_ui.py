"""Searches and `nasorch ui` started side by side on a fresh folder share one SQLite store
without breaking each other's schema creation, and `nasorch ui` stops its whole server."""

from __future__ import annotations

import signal
import subprocess
import sys

import psutil
import pytest
import yaml

from tests.helpers_procs import ProcessGroups, clean_env, free_ports, http_ok, tails, wait_for

pytestmark = pytest.mark.integration


def ui_cmd(port: int) -> list[str]:
    return [sys.executable, "-m", "orchestrator.commands.cli", "ui", "--port", str(port)]


def test_two_searches_and_the_ui_create_the_store_at_once(tmp_path):
    config = {
        "name": "together",
        "metric": "score",
        "num_samples": 2,
        "search_space": {"name": "custom", "options": {"params": {"a": ["x", "yy", "zzz"]}}},
        "trainable": {"name": "tests.helpers:noop"},
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    env = clean_env()
    (port,) = free_ports(1)
    run = [sys.executable, "-m", "orchestrator.commands.cli", "run", "c.yaml", "--quiet"]
    logs = [tmp_path / "one.log", tmp_path / "two.log", tmp_path / "ui.log"]
    with ProcessGroups() as groups:
        searches = [groups.start(run, log, env=env, cwd=tmp_path) for log in logs[:2]]
        groups.start(ui_cmd(port), logs[2], env=env, cwd=tmp_path)
        for search in searches:
            assert search.wait(timeout=240) == 0, tails(logs)
        wait_for(lambda: http_ok(f"http://127.0.0.1:{port}/health"), "the UI", 90, logs)
    for log in logs:
        assert "Traceback" not in log.read_text(), tails(logs)

    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path}/nasorch_results/mlflow.db")
    experiment = client.get_experiment_by_name("together")
    parents = client.search_runs(
        [experiment.experiment_id], "tags.`nasorch.role` = 'search'", max_results=10
    )
    assert sorted(r.info.status for r in parents) == ["FINISHED", "FINISHED"]


def test_the_ui_stops_its_whole_server(tmp_path):
    """Two UIs side by side (they take seconds to start): one gets SIGTERM, the other SIGINT
    (Ctrl+C); each stops its whole process tree, and neither prints library noise."""
    env = clean_env()
    ports = free_ports(2)
    uis = []
    for port, sig in zip(ports, (signal.SIGTERM, signal.SIGINT)):
        log = tmp_path / f"ui-{sig.name}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                ui_cmd(port), stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp_path,
                start_new_session=True,  # its own group: the test signals the CLI process alone
            )  # fmt: skip
        uis.append((proc, port, sig, log))
    try:
        for _, port, _, log in uis:
            wait_for(lambda p=port: http_ok(f"http://127.0.0.1:{p}/health"), "a UI", 120, [log])
        for proc, port, sig, log in uis:
            tree = psutil.Process(proc.pid).children(recursive=True)
            assert len(tree) >= 2, "MLflow's server is a tree of processes"
            proc.send_signal(sig)
            assert proc.wait(timeout=30) == 0, tails([log])
            gone, alive = psutil.wait_procs(tree, timeout=15)
            assert not alive, f"{sig.name}: left {[p.pid for p in alive]}"
            assert not http_ok(f"http://127.0.0.1:{port}/health")
    finally:
        for proc, *_ in uis:
            ProcessGroups.kill_group(proc.pid)
    for _, port, sig, log in uis:
        text = log.read_text()
        assert f"MLflow UI on http://127.0.0.1:{port}" in text
        for noise in ("DeprecationWarning", "FutureWarning", "warnings.warn", " INFO "):
            assert noise not in text, f"{sig.name}: {text}"
