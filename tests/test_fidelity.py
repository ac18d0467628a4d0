"""The `fidelity` searcher and scheduler (EI over configuration x epoch, promotion at ASHA's
rungs) and the one-epoch top-k baseline, in simulated time."""

from __future__ import annotations

import json

import numpy as np
import pytest

from orchestrator.schedulers import SCHEDULERS
from orchestrator.schedulers.fidelity import PAUSE, FidelityScheduler
from orchestrator.searchers.fidelity import ACQUISITIONS, FidelitySearch
from orchestrator.simulation import build_source, simulate
from orchestrator.simulation.setup import combo_parts
from tests.test_resume import started
from tests.test_simulation import write_curves
from trainables.curves import TableCurves

__all__ = ["started"]  # the fixture, used by name


def test_without_a_model_the_fidelity_scheduler_stops_what_asha_stops():
    source = build_source("nb201")
    asha = simulate(source, "random", "asha", workers=4, seed=2, max_trials=60)
    ours = simulate(source, "random", "fidelity", workers=4, seed=2, max_trials=60)
    assert ours.stops == asha.stops and ours.trajectory == asha.trajectory


def test_the_model_pauses_promotions_and_resumes_them(monkeypatch):
    pauses: list[tuple[str, int]] = []
    decide = FidelityScheduler.on_trial_result

    def spy(self, controller, trial, result):
        action = decide(self, controller, trial, result)
        if action == PAUSE:
            pauses.append((trial.trial_id, result["training_iteration"]))
        return action

    monkeypatch.setattr(FidelityScheduler, "on_trial_result", spy)
    source = build_source("nb201")
    result = simulate(source, "fidelity", "fidelity", workers=2, seed=0, max_trials=80)
    assert pauses, "the model never preferred another trial to a promotion"
    reached = {f"s{number:06d}": epoch for number, epoch, _ in result.stops}
    resumed = [t for t, epoch in pauses if reached.get(t, epoch) > epoch]
    assert resumed, "no paused trial was ever continued"


def test_paused_trials_are_resumed_once_the_searcher_has_nothing_new(tmp_path):
    source = TableCurves.load(write_curves(tmp_path / "c.csv", n=14))
    result = simulate(source, "fidelity", "fidelity", workers=2, seed=1,
                      searcher_options={"num_init": 3, "min_points": 3})  # fmt: skip
    assert result.trials == 14 and len(result.stops) == 14  # every trial ended, none left paused


def observed(source, strategy, archs, epochs: int) -> None:
    for arch in archs:
        for epoch, value in enumerate(source.curve(arch).values[:epochs], start=1):
            strategy.observe(arch, epoch, value)


def test_gains_rank_a_good_curve_above_a_poor_one_and_the_state_refits_alike(tmp_path):
    source = TableCurves.load(write_curves(tmp_path / "c.csv", n=40))
    strategy = FidelitySearch(source.space, seed=0, num_init=3, min_points=3, refit_every=4)
    strategy.horizon = source.max_epochs
    archs = [strategy.ask() for _ in range(12)]
    observed(source, strategy, archs, 3)
    finals = {source.space.key(a): source.curve(a).values[2] for a in archs}
    good = max(archs, key=lambda a: finals[source.space.key(a)])
    poor = min(archs, key=lambda a: finals[source.space.key(a)])
    gains = strategy.gains([good, poor], [9, 9])
    assert gains is not None and gains[0] > gains[1]
    assert strategy.fitted_at == len(strategy.obs) == 36
    restored = FidelitySearch(source.space, seed=99, num_init=3, min_points=3, refit_every=4)
    restored.horizon = source.max_epochs
    restored.load_state(json.loads(json.dumps(strategy.state())))
    assert restored.gains([good, poor], [9, 9]) == pytest.approx(gains)
    assert [restored.ask() for _ in range(5)] == [strategy.ask() for _ in range(5)]


def test_proposals_alternate_between_ei_and_a_thompson_draw(tmp_path):
    """`alternate` proposes what `ei` would on even asks and what `its` would on odd ones,
    from the same state; a restored searcher keeps the turn (it is the saved ask count)."""
    source = TableCurves.load(write_curves(tmp_path / "c.csv", n=60))
    options = {"num_init": 3, "min_points": 3, "refit_every": 4}
    strategy = FidelitySearch(source.space, seed=0, **options)
    strategy.horizon = source.max_epochs
    observed(source, strategy, [strategy.ask() for _ in range(12)], 3)
    kinds = set()
    for shift in (0, 1):
        state = json.loads(json.dumps(strategy.state()))
        state["n_asked"] += shift
        picks = {}
        for acquisition in ACQUISITIONS:
            searcher = FidelitySearch(source.space, seed=5, acquisition=acquisition, **options)
            searcher.horizon = source.max_epochs
            searcher.load_state(state)
            picks[acquisition] = source.space.key(searcher.ask())
        turn = "its" if (state["n_asked"] + 1) % 2 else "ei"
        assert picks["alternate"] == picks[turn], (shift, picks)
        assert picks["ei"] != picks["its"], picks  # the two rules differ here
        kinds.add(turn)
    assert kinds == {"ei", "its"}


def test_the_model_is_refit_less_often_as_observations_accumulate():
    space = build_source("nb201").space
    strategy = FidelitySearch(space, seed=0, min_points=2, refit_every=8, max_points=16)
    fits = []
    for i in range(600):
        strategy.observe(strategy.ask(), 1 + i % 5, float(i % 37))
        if strategy.model() is not None and (not fits or fits[-1] != strategy.fitted_at):
            fits.append(strategy.fitted_at)
    assert len(fits) < 600 // 8  # every 8 at first, then every 1/16th more
    assert strategy._model.x.shape[0] <= 16  # the training set is capped


def test_the_model_fits_the_best_configurations_not_one_configurations_epochs():
    """The GP's best half is each of the best configurations' deepest observation: a long good
    curve does not fill it with its own epochs (the model then knew one configuration, and
    stalled at 256 workers). A restored searcher fits the same points from its saved list."""
    import random

    space = build_source("nb201").space
    rng = random.Random(0)
    archs = list({space.key(a): a for a in (space.sample(rng) for _ in range(20))}.values())[:8]
    strategy = FidelitySearch(space, seed=0, min_points=2, refit_every=1000, max_points=8)
    for epoch in range(1, 11):  # archs[0]: the best curve, ten epochs
        strategy.observe(archs[0], epoch, 0.90 + epoch / 100)
    for i, arch in enumerate(archs[1:4]):  # good, two epochs each
        strategy.observe(arch, 1, 0.80 + i / 100)
        strategy.observe(arch, 2, 0.85 + i / 100)
    for arch in archs[4:]:  # the latest four: poor, one epoch
        strategy.observe(arch, 1, 0.10)
    strategy._fit(len(strategy.obs))
    rows = {tuple(r[:-1]) for r in np.round(strategy._model.x, 9)}
    assert rows == {tuple(np.round(space.encode(a), 9)) for a in archs}  # all eight, once each
    strategy.observe(archs[5], 2, 0.2)  # not refit yet: the restored one must not use it
    restored = FidelitySearch(space, seed=0, min_points=2, refit_every=1000, max_points=8)
    restored.load_state(json.loads(json.dumps(strategy.state())))
    assert np.array_equal(restored.model().x, strategy._model.x)


def test_one_epoch_top_k_continues_only_the_best_so_far(tmp_path):
    source = TableCurves.load(write_curves(tmp_path / "c.csv", n=30))
    result = simulate(source, "random", "one_epoch", workers=1, seed=0, keep_trials=True,
                      scheduler_options={"top_k": 3})  # fmt: skip
    assert {e for _, e, status in result.stops if status == "stopped"} == {1}
    seen: list[float] = []
    for arch, _, epochs, _ in result.ended:  # one worker: each trial ends before the next
        first = float(source.curve(arch).values[0])
        top = sorted(seen, reverse=True)[:3]
        assert (epochs > 1) == (len(top) < 3 or first > top[-1])
        seen.append(first)
    assert 3 <= sum(e > 1 for _, _, e, _ in result.ended) < 30


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("one_epoch", {"top_k": 0}, "top_k"),
        ("one_epoch", {"epoch": 99}, "epoch"),
        ("fidelity", {"reduction_factor": 1}, "reduction_factor"),
    ],
)
def test_scheduler_options_are_checked(name, options, message):
    with pytest.raises(ValueError, match=message):
        SCHEDULERS[name](9, **options)


NEW_COMBOS = ["random+async_hyperband", "random+one_epoch", "fidelity+fidelity"]


@pytest.mark.parametrize("combo", NEW_COMBOS)
def test_the_new_combinations_run_inside_the_table(tmp_path, combo):
    source = TableCurves.load(write_curves(tmp_path / "c.csv", n=30))
    searcher, scheduler, options = combo_parts(combo)
    runs = [simulate(source, searcher, scheduler, workers=3, seed=1, scheduler_options=options)
            for _ in range(2)]  # fmt: skip
    assert runs[0].trials == 30 and runs[0].trajectory and len(runs[0].stops) == 30
    assert runs[0].stops == runs[1].stops  # seeded: the same run
    if combo == "random+async_hyperband":
        assert combo_parts(combo)[1:] == ("asha", {"brackets": 3})


@pytest.mark.integration  # starts Ray and MLflow, SIGKILLs the driver
def test_a_real_search_with_the_fidelity_pair_survives_a_crash(tmp_path, started):
    """Under Ray Tune the fidelity scheduler pauses and resumes trials from their checkpoints;
    a SIGKILLed search resumes (the searcher's observations through its JSON state, the
    scheduler's rungs through the snapshots) and ends every trial once, its epochs unbroken."""
    import yaml
    from mlflow.tracking import MlflowClient

    from tests.test_resume import N, config, crash_and_resume, trials_by_number

    cfg = config(tmp_path, "fid")
    cfg["searcher"] = {"name": "fidelity", "options": {"num_init": 2, "min_points": 3}}
    cfg["scheduler"] = {"name": "fidelity", "options": {"grace_period": 1, "reduction_factor": 2}}
    (tmp_path / "fid.yaml").write_text(yaml.safe_dump(cfg))
    crash_and_resume(tmp_path, started, "fid", lambda steps: len(steps) >= N // 2)

    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    trials = trials_by_number(client, "fid")
    assert sorted(trials) == list(range(1, N + 1))
    # Trials started after Ray's last snapshot are suggested again after the resume under the
    # same numbers; the fidelity searcher's proposals depend on which partial results had
    # arrived when it was asked (timing), so such a number may come back with another
    # architecture, and its first run is then closed as superseded (KILLED, never RUNNING).
    superseded = [
        r for runs in trials.values() for r in runs
        if r.data.tags.get("nasorch.status") == "superseded"
    ]  # fmt: skip
    assert all(r.info.status == "KILLED" for r in superseded)
    for number, runs in trials.items():
        runs = [r for r in runs if r not in superseded]
        shown = [(r.data.tags.get("nasorch.trial_id"), r.data.tags.get("nasorch.status"),
                  r.info.status) for r in runs]  # fmt: skip
        assert len(runs) == 1, f"trial {number} has {len(runs)} child runs: {shown}"
        steps = [m.step for m in client.get_metric_history(runs[0].info.run_id, "score")]
        assert sorted(steps) == list(range(1, len(steps) + 1))  # none twice, none missing
        if runs[0].data.tags["nasorch.status"] == "stopped_early":
            assert runs[0].data.tags["nasorch.stop_reason"].startswith("fidelity rung")


def test_a_trial_paused_outside_the_schedulers_decisions_is_still_resumed(tmp_path):
    """The heap of paused trials is built once per model fit; a trial that is PAUSED without
    the scheduler having paused it since (restored by a resume, or chosen and left paused) is
    found when the heap runs dry, so a search never idles with a paused trial waiting."""
    from types import SimpleNamespace

    from ray.tune.experiment import Trial

    source = TableCurves.load(write_curves(tmp_path / "c.csv", n=20))
    strategy = FidelitySearch(source.space, seed=0, num_init=3, min_points=3)
    archs = [strategy.ask() for _ in range(6)]
    observed(source, strategy, archs, 3)
    scheduler = FidelityScheduler(max_t=source.max_epochs)
    scheduler.set_search_properties(source.metric, source.mode)
    scheduler.consult(strategy)
    trials = [
        SimpleNamespace(trial_id=f"t{i}", status=Trial.RUNNING, config={"arch": a},
                        last_result={"training_iteration": 3})
        for i, a in enumerate(archs)
    ]  # fmt: skip
    controller = SimpleNamespace(get_trials=lambda: trials)
    assert scheduler.choose_trial_to_run(controller) is None  # nothing paused: heap built empty
    trials[2].status = trials[4].status = Trial.PAUSED  # paused behind the scheduler's back

    def choose():  # the first call may wait for a new trial; none comes, so the second resumes
        return scheduler.choose_trial_to_run(controller) or scheduler.choose_trial_to_run(
            controller
        )

    chosen = choose()
    assert chosen in (trials[2], trials[4])
    chosen.status = Trial.RUNNING
    assert choose() in (trials[2], trials[4])
