"""The NB201 supernet (weight sharing) and the search that ranks by it."""

from __future__ import annotations

import json
import random

import pytest
import torch

from orchestrator.searchers import STRATEGIES
from orchestrator.searchers.supernet import SupernetSearch, hand_out_order
from search_spaces import MLPSpace, NB201Space
from search_spaces.nb201 import OPS, count_costs
from search_spaces.torch_models.nb201_supernet import NB201Supernet, score, train_supernet
from trainables import datasets

TINY = {"supernet_epochs": 1, "candidates": 24, "top_k": 4, "calibration": 6}
ALL_NONE = ["none"] * 6


@pytest.fixture(scope="module")
def trained():
    """A supernet trained for one epoch, and the digits it was trained on."""
    torch.manual_seed(0)
    data = datasets.load("digits", "image")
    tensors = [torch.from_numpy(a) for a in (data.x_train, data.y_train, data.x_val, data.y_val)]
    net = NB201Supernet(data.input_shape, data.num_classes)
    train_supernet(net, *tensors[:2], epochs=1, rng=random.Random(0))
    return net, tensors


@pytest.fixture(scope="module")
def strategy():
    s = SupernetSearch(NB201Space(), seed=0, **TINY)
    s._rank()  # what the first ask does: train the supernet, score and order the candidates
    return s


def test_registered():
    assert STRATEGIES["supernet"] is SupernetSearch


def test_forward_any_arch_gives_valid_logits(trained):
    net, (x, _, _, _) = trained
    rng = random.Random(1)
    for edges in [
        ALL_NONE,
        ["skip_connect"] * 6,
        *([rng.choice(OPS) for _ in range(6)] for _ in range(5)),
    ]:
        logits = net(x[:16], edges)
        assert logits.shape == (16, 10) and torch.isfinite(logits).all()


@pytest.mark.parametrize("bn", ["recalibrate", "batch"])
def test_inherited_weights_score_the_same_twice(trained, bn):
    net, (x, _, x_val, y_val) = trained
    edges = ["nor_conv_3x3", "skip_connect", "nor_conv_1x1", "avg_pool_3x3", "none", "nor_conv_3x3"]
    first = score(net, edges, x_val, y_val, bn=bn, x_calib=x[:256])
    score(net, ALL_NONE, x_val, y_val, bn=bn, x_calib=x[:256])  # another arch in between
    assert score(net, edges, x_val, y_val, bn=bn, x_calib=x[:256]) == first


def test_extract_is_the_same_network(trained):
    net, (x, _, x_val, y_val) = trained
    edges = ["nor_conv_3x3", "none", "nor_conv_1x1", "skip_connect", "avg_pool_3x3", "nor_conv_3x3"]
    score(net, edges, x_val, y_val, x_calib=x[:256])  # leaves this arch's BN statistics in eval
    standalone = net.extract(edges).eval()
    with torch.no_grad():
        assert torch.allclose(standalone(x_val), net(x_val, edges), atol=1e-5)
    n_params = sum(p.numel() for p in standalone.parameters())
    assert n_params == count_costs(edges, 8, 1, (1, 8, 8), 10)["num_params"]


def test_only_nb201():
    with pytest.raises(ValueError, match="nb201 space only"):
        SupernetSearch(MLPSpace())


def test_hand_out_order():
    ranking = [f"c{i:02d}" for i in range(20)]
    order = hand_out_order(ranking, top_k=3, calibration=4)
    assert order[:3] == ["c00", "c01", "c02"]
    assert order[3:7] == ["c03", "c08", "c14", "c19"]  # evenly spread, best and worst of the rest
    assert sorted(order) == ranking


def test_asks_follow_the_supernet_ranking(strategy):
    s = SupernetSearch(NB201Space(), seed=0, **TINY)
    s.load_state(strategy.state())
    asked = [s.space.key(s.ask()) for _ in range(TINY["candidates"])]
    assert s.ask() is None  # every candidate handed out
    ranking = sorted(s.scores, key=lambda k: (-s.scores[k], k))
    assert asked[: TINY["top_k"]] == ranking[: TINY["top_k"]]
    assert asked == hand_out_order(ranking, TINY["top_k"], TINY["calibration"])
    assert len(set(asked)) == len(asked) == TINY["candidates"]


def test_state_round_trip_continues_without_retraining(strategy, monkeypatch):
    a = SupernetSearch(NB201Space(), seed=0, **TINY)
    a.load_state(strategy.state())
    for _ in range(5):
        arch = a.ask()
        a.tell(arch, 0.5)
    b = SupernetSearch(NB201Space(), seed=7, **TINY)
    b.load_state(json.loads(json.dumps(a.state())))
    monkeypatch.setattr(b, "_rank", lambda: pytest.fail("a restored search retrained"))
    assert [b.ask() for _ in range(8)] == [a.ask() for _ in range(8)]
    assert b.results == a.results


def test_summary_reports_kendall_tau(strategy):
    s = SupernetSearch(NB201Space(), seed=0, mode="min", **TINY)
    s.load_state(strategy.state())
    assert "kendall_tau" not in s.summary()
    for _ in range(12):
        arch = s.ask()
        key = s.space.key(arch)
        # mode=min: a lower told value is better, so -score agrees perfectly with the supernet.
        s.tell(arch, None if key == s.order[0] else -s.scores[key])
    summary = s.summary()
    assert summary["kendall_tau"] == pytest.approx(1.0)
    assert summary["kendall_tau_n"] == 11  # the failed trial does not count
    assert summary["supernet_train_seconds"] > 0


def test_the_supernet_trains_in_a_ray_task_to_the_same_ranking(ray_local, monkeypatch):
    import sys

    import ray

    local = SupernetSearch(NB201Space(), seed=0, **TINY)
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "ray", None)  # as in a process without Ray
        local._rank()
    tasks = []
    real_remote = ray.remote

    def spy(**options):
        tasks.append(options)
        return real_remote(**options)

    monkeypatch.setattr(ray, "remote", spy)
    remote = SupernetSearch(NB201Space(), seed=0, gpus=1, **TINY)  # no GPU here: CPU, warned
    remote._rank()
    assert tasks == [{"num_cpus": 1, "num_gpus": 0}]
    assert remote.scores == local.scores and remote.order == local.order
