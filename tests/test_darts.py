"""Differentiable search (DARTS, DARTS-PT) on the NB201 supernet, and the searcher around it."""

from __future__ import annotations

import json
import math
import random
import sys

import pytest
import torch
import yaml
from mlflow.tracking import MlflowClient

import orchestrator
from orchestrator.config import parse_config
from orchestrator.core import tags as T
from orchestrator.execution.components import build_strategy
from orchestrator.reporting import alphas
from orchestrator.reporting.figures import draw_figures
from orchestrator.searchers import STRATEGIES, darts
from orchestrator.searchers.darts import DartsSearch, ranked
from search_spaces import MLPSpace, NB201Space
from search_spaces.nb201 import EDGE_NAMES, OPS
from search_spaces.torch_models import nb201_darts
from search_spaces.torch_models.nb201_darts import DartsTrainer
from search_spaces.torch_models.nb201_supernet import NB201Supernet
from tests.conftest import ROOT
from tests.data_files import write_npz
from trainables import supernet_training

ALL_NONE = ["none"] * 6


@pytest.fixture(autouse=True)
def _one_thread():
    # Beside other work on 2 cores, a second torch thread made these tests 20x slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict:
    """60 generated 3x8x8 images: a supernet epoch is one batch."""
    return {"format": "npz", "path": str(write_npz(tmp_path_factory.mktemp("tiny")))}


def search(tiny: dict, **options) -> DartsSearch:
    return DartsSearch(NB201Space(), seed=0, dataset=tiny, **{"supernet_epochs": 2, **options})


def tensors(n: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return torch.randn(n, 1, 8, 8, generator=gen), torch.arange(n) % 10


def test_registered():
    assert STRATEGIES["darts"] is DartsSearch
    pt = STRATEGIES["darts_pt"](NB201Space())
    assert isinstance(pt, DartsSearch) and pt.job["select"] == "perturbation"


def test_one_hot_weights_compute_the_cell():
    torch.manual_seed(0)
    net = NB201Supernet((1, 8, 8), 10).train()  # batch statistics: the same in both passes
    x, _ = tensors()
    rng = random.Random(0)
    for edges in [
        ALL_NONE,
        ["skip_connect"] * 6,
        *([rng.choice(OPS) for _ in range(6)] for _ in range(4)),
    ]:
        weights = torch.zeros(6, len(OPS))
        weights[range(6), [OPS.index(op) for op in edges]] = 1.0
        mixed = net(x, weights)
        assert torch.equal(mixed, net(x, edges))
        assert torch.allclose(mixed, net.extract(edges).train()(x), atol=1e-6)


def test_alpha_learns_from_the_validation_step_only():
    torch.manual_seed(0)
    net = NB201Supernet((1, 8, 8), 10)
    trainer = DartsTrainer(net, epochs=1, seed=0, arch_lr=0.1)
    x, y = tensors()
    alpha, weights = trainer.alpha.detach().clone(), [p.detach().clone() for p in net.parameters()]

    trainer.weight_step(x, y, lr=0.1)
    assert trainer.alpha.grad is None and torch.equal(trainer.alpha, alpha)
    assert any(not torch.equal(p, w) for p, w in zip(net.parameters(), weights))

    weights = [p.detach().clone() for p in net.parameters()]
    net.zero_grad(set_to_none=True)
    trainer.arch_step(x, y)
    assert not torch.equal(trainer.alpha, alpha)
    assert all(torch.equal(p, w) for p, w in zip(net.parameters(), weights))
    assert all(p.grad is None for p in net.parameters())  # no weight gradient computed at all


def test_fixed_alpha_takes_no_arch_steps(tiny):
    s = search(tiny, arch_lr=0)
    s.ask()
    assert all(p == pytest.approx(0.2) for p in s.history["probabilities"][-1][0])
    assert "supernet/val_loss" not in s.curves()  # no validation steps were taken


def test_derived_cell_is_the_argmax_then_cells_by_probability():
    probs = [[0.1, 0.2, 0.3, 0.25, 0.15]] * 3 + [[0.5, 0.2, 0.1, 0.1, 0.1]] * 3
    s = DartsSearch(NB201Space(), seed=0)
    s.load_state({**s.state(), "scores": [[math.log(p) for p in row] for row in probs],
                  "history": {"probabilities": [probs]}})  # fmt: skip
    assert s.derived() == ["nor_conv_1x1"] * 3 + ["none"] * 3
    asked = [s.ask()["edges"] for _ in range(4)]
    assert asked[0] == s.derived()
    # The next most probable: one edge moves to its second op, where that costs least.
    moved = [e for e in range(6) if asked[1][e] != asked[0][e]]
    assert len(moved) == 1 and moved[0] < 3 and asked[1][moved[0]] == "nor_conv_3x3"
    logp = [sum(math.log(probs[e][OPS.index(op)]) for e, op in enumerate(c)) for c in asked]
    assert logp == sorted(logp, reverse=True)
    assert s.summary()["derived_parameter_free_edges"] == 3


def test_ranked_covers_the_space_best_first():
    scores = [[float(k == e % 5) for k in range(5)] for e in range(6)]
    order = ranked(scores)
    assert len(order) == len(set(order)) == 5**6
    assert list(order[0]) == [OPS[e % 5] for e in range(6)]


def test_perturbation_keeps_what_the_supernet_cannot_do_without(tiny):
    s = search(tiny, select="perturbation")
    s.ask()
    for row in s.scores:
        assert row[OPS.index("none")] == 0.0  # taking out an op that adds nothing changes nothing
    assert s.derived() == [OPS[max(range(5), key=row.__getitem__)] for row in s.scores]
    argmax = search(tiny)  # the same supernet, DARTS's selection
    argmax.ask()
    assert argmax.history == s.history


@pytest.mark.parametrize("tune", [0, 1])
def test_perturbation_leaves_the_supernet_as_it_was(tune):
    """With DARTS-PT's tuning after each edge too: the weights, the optimizer's momentum and
    the batch order after the selection are those before it, so a checkpoint holds the
    supernet as trained."""
    torch.manual_seed(0)
    net = NB201Supernet((1, 8, 8), 10)
    trainer = DartsTrainer(net, epochs=1, seed=0)
    x, y = tensors(64)
    trainer.run_epoch(x, y, x, y)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    momentum = [v["momentum_buffer"].clone() for v in trainer.w_opt.state.values()]
    order = trainer.gen.get_state()
    scores = trainer.perturbation_scores(x, y, tune, x, y)
    assert len(scores) == 6 and all(len(row) == len(OPS) for row in scores)
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())
    after = [v["momentum_buffer"] for v in trainer.w_opt.state.values()]
    assert all(torch.equal(a, b) for a, b in zip(after, momentum, strict=True))
    assert torch.equal(trainer.gen.get_state(), order)


def test_tuning_after_each_choice_trains_the_weights_between_edges(monkeypatch):
    """DARTS-PT's Algorithm 1: the weights train `tune` epochs with each chosen edge fixed
    before the next edge is measured; the last edge is followed by none."""
    torch.manual_seed(0)
    trainer = DartsTrainer(NB201Supernet((1, 8, 8), 10), epochs=1, seed=0, batch_size=32)
    x, y = tensors(64)
    trainer.run_epoch(x, y, x, y)
    fixed = []
    real = trainer._step
    monkeypatch.setattr(
        trainer, "_step", lambda logits, labels, lr: (fixed.append(lr), real(logits, labels, lr))[1]
    )
    untuned = trainer.perturbation_scores(x, y)
    assert fixed == []
    tuned = trainer.perturbation_scores(x, y, 2, x, y)
    assert len(fixed) == 5 * 2 * 2  # 5 edges x 2 epochs x 2 batches of 32, at the last rate
    assert set(fixed) == {nb201_darts.LR_MIN}
    assert tuned[0] == untuned[0]  # the first edge is measured before any tuning


def test_state_round_trip_continues_without_retraining(tiny, monkeypatch):
    a = search(tiny)
    for _ in range(3):
        a.tell(a.ask(), 0.5)
    b = DartsSearch(NB201Space(), seed=9, dataset=tiny)
    b.load_state(json.loads(json.dumps(a.state())))
    monkeypatch.setattr(
        supernet_training, "search_epochs", lambda *a: pytest.fail("a restored search retrained")
    )
    assert [b.ask() for _ in range(5)] == [a.ask() for _ in range(5)]
    assert b.results == a.results and b.summary() == a.summary()


def test_started_again_after_a_crash_in_training_continues_from_the_checkpoint(
    tiny, tmp_path, monkeypatch
):
    # back on the driver every epoch
    monkeypatch.setattr(supernet_training, "CHECKPOINT_SECONDS", 0.0)
    if "ray" in sys.modules:  # a Ray another test left running: train here, where calls count
        monkeypatch.setattr(sys.modules["ray"], "is_initialized", lambda: False)
    calls = []
    real = supernet_training.search_epochs

    def crash_after_two(job, blob):
        calls.append(blob is not None)
        if len(calls) > 2:
            raise KeyboardInterrupt  # the driver dies during the third epoch
        return real(job, blob)

    monkeypatch.setattr(supernet_training, "search_epochs", crash_after_two)
    first = search(tiny, supernet_epochs=4)
    first.folder = str(tmp_path / "run-1")  # the runner's experiment folders
    (tmp_path / "run-1").mkdir()
    (tmp_path / "run-2").mkdir()
    with pytest.raises(KeyboardInterrupt):
        first.ask()
    assert calls == [False, True, True]
    (pending,) = tmp_path.glob(".darts-*.pt")  # beside the search's folder, named by the job

    # Ray has no snapshot of a search killed in its first suggestion: the same search starts
    # again, in a new folder of the same storage, and trains the last 2 epochs only.
    calls.clear()
    monkeypatch.setattr(
        supernet_training,
        "search_epochs",
        lambda job, blob: (calls.append(blob), real(job, blob))[1],
    )
    again = search(tiny, supernet_epochs=4)
    again.folder = str(tmp_path / "run-2")
    cell = again.ask()
    assert len(calls) == 2 and calls[0] is not None
    assert (
        not pending.exists() and (tmp_path / "run-2" / supernet_training.CHECKPOINT_FILE).exists()
    )
    uninterrupted = search(tiny, supernet_epochs=4)
    assert cell == uninterrupted.ask() and again.scores == uninterrupted.scores
    assert again.history == uninterrupted.history


def test_curves_and_plot_for_the_parent_run(tiny, tmp_path):
    s = search(tiny)
    s.ask()
    curves = s.curves()
    alpha = [k for k in curves if k.startswith("alpha/")]
    assert len(alpha) == len(EDGE_NAMES) * len(OPS)
    assert [step for step, _ in curves["alpha/edge_1_0/skip_connect"]] == [0, 1, 2]
    assert [step for step, _ in curves["supernet/val_loss"]] == [1, 2]
    assert s.artifacts(str(tmp_path)) == []  # a searcher draws nothing: reporting does
    (path,) = draw_figures(s.figures(), str(tmp_path))
    assert path.endswith(alphas.PLOT_FILE) and (tmp_path / alphas.PLOT_FILE).stat().st_size > 0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"select": "best"}, "select must be one of argmax, perturbation, got 'best'"),
        ({"supernet_epochs": 0}, "supernet_epochs must be an integer >= 1"),
        ({"tune_epochs": -1}, "tune_epochs must be an integer >= 0, got -1"),
        ({"arch_lr": -1.0}, r"arch_lr must be >= 0 \(0: alpha stays uniform\), got -1.0"),
        ({"val_fraction": 1.5}, "val_fraction must be between 0 and 1, got 1.5"),
        ({"dataset": "mnist"}, "dataset: 'mnist' is not one of digits"),
    ],
)
def test_bad_options_say_which_and_what_is_allowed(options, message):
    with pytest.raises(ValueError, match=message):
        DartsSearch(NB201Space(), **options)


def test_only_nb201():
    with pytest.raises(ValueError, match="nb201 space only"):
        DartsSearch(MLPSpace())


def test_trains_on_the_trainables_dataset_unless_told_otherwise(tiny):
    config = {
        "name": "d",
        "search_space": {"name": "nb201"},
        "trainable": {"name": "torch", "options": {"dataset": tiny, "val_fraction": 0.3}},
        "searcher": {"name": "darts_pt"},
    }
    cfg = parse_config(config)
    strategy = build_strategy(cfg, NB201Space())
    assert strategy.job["dataset"] == tiny and strategy.job["val_fraction"] == 0.3
    config["searcher"]["options"] = {"dataset": "digits"}
    assert build_strategy(parse_config(config), NB201Space()).job["dataset"] == "digits"


def example(tmp_path, tiny: dict, supernet_epochs: int) -> dict:
    """examples/darts.yaml, small: 2 trials of 2 epochs on `tiny`, recorded under `tmp_path`."""
    cfg = yaml.safe_load((ROOT / "examples" / "darts.yaml").read_text())
    cfg["num_samples"] = 2
    cfg["trainable"]["options"].update(dataset=tiny, epochs=2)
    cfg["searcher"]["options"]["supernet_epochs"] = supernet_epochs
    cfg.update(
        storage_path=str(tmp_path / "ray"), tracking={"uri": f"sqlite:///{tmp_path}/mlflow.db"}
    )
    return cfg


@pytest.mark.integration
def test_the_example_runs_end_to_end(ray_local, tmp_path, tiny):
    """examples/darts.yaml on generated images: the supernet in a Ray task, the derived cells as
    trials, alpha's trajectory and its plot on the parent run."""
    cfg = example(tmp_path, tiny, supernet_epochs=3)
    result = orchestrator.run(cfg, progress=False)
    assert list(result.trials["status"]) == ["completed", "completed"]
    # The first trial is the derived cell (asked first): the summary counts its edges.
    derived = json.loads(result.trials.sort_values("trial")["arch_json"].iloc[0])["edges"]
    free = sum(op in darts.PARAMETER_FREE for op in derived)
    assert result.summary["derived_parameter_free_edges"] == free
    assert result.summary["derived_skip_edges"] == derived.count("skip_connect")

    client = MlflowClient(result.tracking_uri)
    runs = client.search_runs([result.experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get(T.ROLE) == T.SEARCH]
    children = [r for r in runs if r.data.tags.get(T.ROLE) == T.TRIAL]
    assert parent.info.status == "FINISHED"
    assert [c.info.status for c in children] == ["FINISHED", "FINISHED"]
    history = client.get_metric_history(parent.info.run_id, "alpha/edge_3_2/nor_conv_3x3")
    assert sorted(m.step for m in history) == [0, 1, 2, 3]
    alpha = [k for k in parent.data.metrics if k.startswith("alpha/")]
    assert len(alpha) == 30
    assert alphas.PLOT_FILE in {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert (tmp_path / "ray").exists()
    checkpoint = [p for p in (tmp_path / "ray").rglob(supernet_training.CHECKPOINT_FILE)]
    assert len(checkpoint) == 1  # the supernet's weights and alpha, next to the search's state
    assert not list((tmp_path / "ray").glob(".darts-*"))  # moved in once trained


@pytest.mark.integration
def test_resume_of_a_search_killed_while_its_supernet_trains(
    ray_local, tmp_path, tiny, monkeypatch
):
    """Ray snapshots nothing before the first suggestion returns: `nasorch resume` starts such a
    search over in its folder and MLflow run, and the supernet trains on from its checkpoint."""
    # back on the driver every epoch
    monkeypatch.setattr(supernet_training, "CHECKPOINT_SECONDS", 0.0)
    monkeypatch.setattr(darts, "on_a_worker", lambda fn, **kwargs: fn)  # there, calls count
    real, calls = supernet_training.search_epochs, []

    def crash_in_the_third_epoch(job, blob):
        calls.append(blob is not None)
        if len(calls) > 2:
            raise KeyboardInterrupt
        return real(job, blob)

    monkeypatch.setattr(supernet_training, "search_epochs", crash_in_the_third_epoch)
    cfg = example(tmp_path, tiny, supernet_epochs=4)
    with pytest.raises(KeyboardInterrupt):
        orchestrator.run(cfg, progress=False)
    (folder,) = [p for p in (tmp_path / "ray").iterdir() if p.is_dir()]
    assert len(list((tmp_path / "ray").glob(".darts-*.pt"))) == 1  # two epochs in it

    calls.clear()
    monkeypatch.setattr(
        supernet_training,
        "search_epochs",
        lambda job, blob: (calls.append(blob is not None), real(job, blob))[1],
    )
    result = orchestrator.resume(str(folder), progress=False)
    assert calls == [True, True]  # the last two epochs, from the checkpoint
    assert list(result.trials["status"]) == ["completed", "completed"]
    client = MlflowClient(result.tracking_uri)
    runs = client.search_runs([result.experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get(T.ROLE) == T.SEARCH]
    assert parent.info.status == "FINISHED" and T.RESUMED in parent.data.tags
    children = [r for r in runs if r.data.tags.get(T.ROLE) == T.TRIAL]
    assert [c.info.status for c in children] == ["FINISHED", "FINISHED"]
    history = client.get_metric_history(parent.info.run_id, "alpha/edge_3_2/nor_conv_3x3")
    assert sorted(m.step for m in history) == [0, 1, 2, 3, 4]
    assert [p.name for p in (tmp_path / "ray").iterdir()] == [folder.name]  # the same folder
    assert (folder / supernet_training.CHECKPOINT_FILE).exists()
