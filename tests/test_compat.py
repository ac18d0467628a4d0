"""One probe per private name of Ray, MLflow, Optuna and CPython that nasorch uses
(orchestrator/compat.py).

When an upgrade moves one, its probe fails and says what moved, instead of a search failing in
the middle. Each probe uses the installed library for real, on a small scheduler, store or
session of its own; none starts a Ray cluster.
"""

from __future__ import annotations

import contextlib
import inspect
from types import SimpleNamespace

import pytest

from orchestrator import compat
from tests.conftest import ROOT


@contextlib.contextmanager
def probing(what: str):
    """Turns a missing name into a message that says what moved."""
    try:
        yield
    except (AttributeError, ImportError, TypeError, KeyError) as e:
        pytest.fail(f"{what} moved in the installed version ({type(e).__name__}: {e})")


class Trial(SimpleNamespace):
    """Enough of Ray's Trial for a scheduler."""

    def __hash__(self) -> int:
        return hash(self.trial_id)


CONTROLLER = SimpleNamespace(search_alg=None, get_live_trials=lambda: [])


def trial(trial_id: str, number: int = 1):
    return Trial(trial_id=trial_id, config={"trial_number": number}, status="RUNNING")


def test_ray_config_refresh_and_auth_mode(monkeypatch):
    with probing("ray._raylet.Config / get_authentication_mode"):
        from ray._raylet import AuthenticationMode, get_authentication_mode

        monkeypatch.setenv("RAY_AUTH_MODE", "token")
        compat.refresh_ray_config()
        assert get_authentication_mode() == AuthenticationMode.TOKEN
        monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
        compat.refresh_ray_config()
        assert get_authentication_mode() != AuthenticationMode.TOKEN


def test_ray_init_takes_node_ip_address():
    import ray

    with probing("ray.init's _node_ip_address"):
        source = inspect.getsource(inspect.unwrap(ray.init))
        for name in compat.local_ray_init_kwargs():
            assert f'"{name}"' in source or f"{name}=" in source, f"ray.init ignores {name}"


def test_ray_temp_root_and_staging_layout(tmp_path, monkeypatch):
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))
    with probing("ray._common.utils.get_default_ray_temp_dir"):
        assert compat.ray_temp_root() == str(tmp_path / "ray")
    staged = tmp_path / "ray" / "session_2026" / "artifacts" / "x" / "exp" / "driver_artifacts"
    staged.mkdir(parents=True)
    assert compat.ray_staging_dirs("exp") == [str(staged)]


def _asha():
    from orchestrator.schedulers import SCHEDULERS

    scheduler = SCHEDULERS["asha"](max_t=9, grace_period=1, reduction_factor=3)
    scheduler.set_search_properties("acc", "max")
    return scheduler


def test_asha_rungs_cutoffs_and_state():
    scheduler = _asha()
    trials = [trial(f"t{i}", i) for i in range(4)]
    with probing("AsyncHyperBandScheduler._trial_info / _Bracket._rungs / cutoff"):
        for t in trials:
            scheduler.on_trial_add(None, t)
        empty = compat.asha_rung(scheduler, "t0", 1)
        assert empty == (1, {}) and compat.asha_cutoff(scheduler, "t0", empty) is None  # no cutoff
        for i, t in enumerate(trials[:3]):
            scheduler.on_trial_result(None, t, {"training_iteration": 1, "acc": 0.1 * (i + 1)})
        rung = compat.asha_rung(scheduler, "t3", 1)
        cutoff, recorded = compat.asha_cutoff(scheduler, "t3", rung)
        assert (rung[0], recorded) == (1, 3) and 0.1 < cutoff < 0.3
        # after t3's result is recorded, the cutoff it was measured against is the same
        scheduler.on_trial_result(None, trials[3], {"training_iteration": 1, "acc": 0.05})
        assert compat.asha_cutoff(scheduler, "t3", rung) == (cutoff, 3)
        state = compat.asha_state(scheduler)
        assert state["rungs"][0][-1] == {
            "t0": 0.1, "t1": 0.2, "t2": pytest.approx(0.3), "t3": 0.05
        }  # fmt: skip
        fresh = _asha()
        compat.asha_restore(fresh, state)
        assert compat.asha_state(fresh) == state


def test_hyperband_bracket_hooks():
    from orchestrator.schedulers import SCHEDULERS

    scheduler = SCHEDULERS["hyperband"](max_t=9, reduction_factor=3)
    scheduler.set_search_properties("acc", "max")
    with probing("HyperBandScheduler._create_bracket / hyperband._Bracket"):
        base = compat.hyperband_bracket_class()
        assert "successive_halving" in vars(base)
        bracket = compat.hyperband_new_bracket(scheduler, base, 2)
        epoch, live = compat.hyperband_bracket_view(bracket)
        assert epoch >= 1 and live == {}
        from ray.tune.schedulers import HyperBandScheduler

        assert "_create_bracket" in vars(HyperBandScheduler)  # the hook nasorch overrides


def test_median_rule_view():
    from orchestrator.schedulers import SCHEDULERS

    scheduler = SCHEDULERS["median"](max_t=9, grace_period=1, min_samples_required=1)
    scheduler.set_search_properties("acc", "max")
    a, b = trial("a"), trial("b", 2)
    with probing("MedianStoppingRule._trials_beyond_time / _running_mean / _best_result"):
        for t, value in ((a, 0.9), (b, 0.2)):
            scheduler.on_trial_add(CONTROLLER, t)
            scheduler.on_trial_result(CONTROLLER, t, {"training_iteration": 1, "acc": value})
        best, means = compat.median_rule_view(scheduler, b, 1)
        assert best == pytest.approx(0.2) and means == [pytest.approx(0.9)]


def test_pbt_exploit_hooks():
    from ray.tune.schedulers import PopulationBasedTraining

    with probing("PopulationBasedTraining._exploit / _get_new_config / _trial_state"):
        cls = compat.pbt_with_hooks(PopulationBasedTraining)
        assert {"_exploit", "_get_new_config"} <= set(vars(cls))
        base_methods = vars(PopulationBasedTraining)
        assert "_exploit" in base_methods and "_get_new_config" in base_methods
        params = inspect.signature(PopulationBasedTraining._exploit).parameters
        assert list(params)[1:] == ["tune_controller", "trial", "trial_to_clone"]
        pbt = PopulationBasedTraining(
            time_attr="training_iteration", metric="acc", mode="max",
            hyperparam_mutations={"lr": [0.1, 0.2]},
        )  # fmt: skip
        assert isinstance(pbt._trial_state, dict)


def test_pbt_searcher_check_is_passed_by_the_controller_without_searcher():
    from ray.tune.schedulers import PopulationBasedTraining
    from ray.tune.search import Searcher, SearchGenerator

    pbt = PopulationBasedTraining(
        time_attr="training_iteration", metric="acc", mode="max",
        hyperparam_mutations={"lr": [0.1, 0.2]},
    )  # fmt: skip
    controller = SimpleNamespace(search_alg=SearchGenerator(Searcher()), other=7)
    with pytest.raises(ValueError, match="Search algorithms cannot be used"):
        pbt.on_trial_add(controller, Trial(trial_id="a"))  # the check compat gets past
    hidden = compat.pbt_controller_without_searcher(controller)
    assert hidden.search_alg is None and hidden.other == 7
    # Past the searcher check, Ray reads the trial's checkpoint settings: the check was passed.
    with pytest.raises(AttributeError, match="run_metadata"):
        pbt.on_trial_add(hidden, Trial(trial_id="a"))


def test_ray_snapshot_file_name():
    import fnmatch

    with probing("TuneController.CKPT_FILE_TMPL"):
        from ray.tune.execution.tune_controller import TuneController

        name = TuneController.CKPT_FILE_TMPL.format("2026-12-06_06-00-00")
    assert fnmatch.fnmatch(name, compat.RAY_SNAPSHOT_GLOB)


def test_run_exit_handlers_runs_each_once_now(tmp_path):
    """In a process of its own: it runs every handler of the process (Ray's shutdown too)."""
    import subprocess
    import sys

    script = (
        "import atexit\n"
        "from orchestrator import compat\n"
        "atexit.register(print, 'handler')\n"
        "compat.run_exit_handlers()\n"
        "print('after')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == "handler\nafter\n"  # run now, and not again at the real exit


def test_mlflow_sql_store_models_schema_and_validator(tmp_path):
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path}/m.db")
    client.search_experiments()
    with probing("MlflowClient._tracking_client.store / dbmodels / SqlAlchemyStore"):
        store = compat.mlflow_sql_store(client)
        assert store is not None
        models = compat.mlflow_sql_models()
        assert models.run.__tablename__ == "runs"
        assert compat.mlflow_sql_schema_problem(store) is None
    with probing("mlflow.utils.validation._validate_batch_log_data"):
        long = Param("p", "x" * 10_000)
        metrics, params, tags = compat.mlflow_validate_batch(
            [Metric("m", 1.0, 0, 0)], [long], [RunTag("t", "v")]
        )
        assert len(params[0].value) <= 8000  # MLflow truncates long param values
        from mlflow.exceptions import MlflowException

        with pytest.raises(MlflowException):
            compat.mlflow_validate_batch([Metric("acc@1", 1.0, 0, 0)], [], [])
    assert compat.mlflow_sql_store(MlflowClient("http://127.0.0.1:9")) is None


def test_a_changed_schema_sends_the_writer_to_the_client(tmp_path):
    """The SQL path checks the installed MLflow's tables at start and falls back to the client
    when they differ from what it writes."""
    import sqlalchemy
    from mlflow.tracking import MlflowClient

    from orchestrator.tracking import sinks

    client = MlflowClient(f"sqlite:///{tmp_path}/m.db")
    client.search_experiments()
    assert isinstance(sinks.make_sink(client), sinks.SqlSink)
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path}/m.db")
    with engine.begin() as db:  # a newer MLflow's required column nasorch does not write
        db.execute(sqlalchemy.text("ALTER TABLE tags ADD COLUMN origin TEXT NOT NULL DEFAULT ''"))
        db.execute(sqlalchemy.text("CREATE TABLE params2 AS SELECT * FROM params"))
        db.execute(sqlalchemy.text("DROP TABLE params"))
        db.execute(sqlalchemy.text("CREATE TABLE params (key TEXT, run_uuid TEXT)"))
    problem = compat.mlflow_sql_schema_problem(compat.mlflow_sql_store(client))
    assert problem == "table 'params' lacks value"
    assert type(sinks.make_sink(client)) is sinks.ClientSink


def test_optuna_truncnorm_log_ndtr_is_replaced_by_an_equal_function():
    import numpy as np

    with probing("optuna.samplers._tpe._truncnorm._log_ndtr"):
        from optuna.samplers._tpe import _truncnorm

        original = _truncnorm._log_ndtr_single
        compat.optuna_vectorised_truncnorm()
        compat.optuna_vectorised_truncnorm()  # idempotent
        patched = _truncnorm._log_ndtr
    assert getattr(patched, "_nasorch", False)
    # Every branch of Optuna's scalar version: the far left tail's series, the middle, the right.
    a = np.array([-40.0, -25.0, -20.5, -19.0, -5.0, -0.3, 0.0, 0.7, 5.9, 6.5, 12.0])
    want = np.array([original(float(x)) for x in a])
    # Optuna approximates log(1 - x) by -x past a = 6; SciPy is exact there (~3e-8 apart).
    np.testing.assert_allclose(patched(a), want, rtol=1e-6, atol=1e-300)
    assert patched(a.reshape(1, -1)).shape == (1, a.size)


def test_mlflow_artifact_uri():
    with probing("mlflow.utils.uri.append_to_uri_path"):
        assert compat.mlflow_artifact_uri("s3://b/x?a=1", "r1") == "s3://b/x/r1/artifacts?a=1"
        assert compat.mlflow_artifact_uri("/tmp/m/1", "r1") == "/tmp/m/1/r1/artifacts"


def test_ray_validate_cluster_config():
    import yaml

    from tests.conftest import ROOT

    cluster = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    with probing("ray.autoscaler._private.util.prepare_config / validate_config"):
        merged = compat.ray_validate_cluster_config(cluster)
    assert merged["head_node_type"] == cluster["head_node_type"]


def test_optuna_tpe_proposals_draws_what_tpe_draws():
    """One proposal is TPE's own `_sample` draw for the same generator state; several are each
    the best of their own candidates under one fit, inside the space."""
    import copy

    import optuna
    from optuna.distributions import FloatDistribution, IntDistribution

    space = {"x": FloatDistribution(0.0, 1.0), "n": IntDistribution(1, 9)}
    sampler = optuna.samplers.TPESampler(seed=0, multivariate=True)
    study = optuna.create_study(sampler=sampler)
    for i in range(30):
        params = {"x": (i * 0.37) % 1.0, "n": 1 + i % 9}
        study.add_trial(optuna.trial.create_trial(
            params=params, distributions=space, value=params["x"] + params["n"] / 10
        ))  # fmt: skip
    twin = copy.deepcopy(sampler)
    with probing("optuna.samplers._tpe.sampler (_split_trials, _build_parzen_estimator, ...)"):
        ours = compat.optuna_tpe_proposals(sampler, study, space, 1)
        theirs = twin._sample(study, study.trials[-1], space)
        several = compat.optuna_tpe_proposals(sampler, study, space, 5)
    assert ours == [theirs]
    assert len(several) == 5 and len({(p["x"], p["n"]) for p in several}) > 1
    assert all(0 <= p["x"] <= 1 and 1 <= p["n"] <= 9 for p in several)


def test_optuna_samplers_take_the_folded_search_space():
    import optuna

    from orchestrator.searchers.optuna import FoldedIntersection

    for cls in (optuna.samplers.TPESampler, optuna.samplers.CmaEsSampler,
                optuna.samplers.NSGAIISampler):  # fmt: skip
        sampler, folded = cls(seed=0), FoldedIntersection()
        with probing(f"{cls.__name__}._search_space"):
            assert compat.optuna_set_search_space(sampler, folded)
            assert sampler._search_space is folded
