"""Shared fixtures: one local Ray for the session, a scratch results folder per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Imported here, before any test captures output: Ray's log handler keeps the stream it was set
# up with, and one set up inside a test's capsys would write to a closed file ever after.
import ray  # noqa: F401,E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def ray_local():
    """A local Ray instance shared by the tests that need one; stopped at the end."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    from orchestrator import compat

    if not ray.is_initialized():
        ray.init(
            address="local",  # never a `ray start` cluster another test (or worker) runs
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            **compat.local_ray_init_kwargs(),  # loopback only
        )
    yield ray
    ray.shutdown()


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """Runs the test inside a fresh folder, with MLflow and Ray results kept there."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


# Tests that start Ray, an MLflow server, a browser or a cluster, or kill processes, are the
# integration tier: `pytest -m "not integration"` is the quick unit tier for everyday work.
# A test that uses the shared local Ray is one; modules that start their own processes say so
# with `pytestmark = pytest.mark.integration`.
def pytest_collection_modifyitems(config, items):
    for item in items:
        if "ray_local" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)
    # Longest modules first: `pytest -n 2 --dist loadfile` hands modules out in this order, so
    # the long ones do not end up last on one worker while the other waits.
    items.sort(key=lambda item: LONGEST_FIRST.get(item.module.__name__.rsplit(".", 1)[-1], 99))


LONGEST_FIRST = {
    name: rank
    for rank, name in enumerate(
        """test_rehearsal test_e2e test_production_mlflow test_resume test_autoscaling
        test_resume_schedulers test_tracking_outage test_private_ray test_failure_modes
        test_store_and_ui test_user_data test_node_loss
        test_schedulers test_multinode test_ui_browser test_compare test_budget test_reliability
        test_plots test_warm_start test_darts test_supernet test_paths""".split()
    )
}
