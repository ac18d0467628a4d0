"""`nasorch check CONFIG`: everything about a config that can be known without running it.

It validates the config and builds every component (the same `components.build` a search uses),
then prints the resolved config, the size of the search space, the costs of a sampled
architecture and what the constraints would reject among a sample of candidates. It starts no
Ray and touches no MLflow store, so it takes seconds; a bad config is the usual one line and
exit status 2.
"""

from __future__ import annotations

import argparse
import math
import random
import time
from typing import Any

from orchestrator.config import ExperimentConfig, parse_config
from orchestrator.execution.components import Components, build


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="experiment YAML file")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="override a config value, as for `nasorch run`",
    )  # fmt: skip
    parser.add_argument(
        "--samples", type=int, default=None,
        help="candidates costed to see what the constraints reject (default: 200, 20 when "
        "costing builds torch models)",
    )  # fmt: skip


def execute(args: argparse.Namespace) -> int:
    began = time.perf_counter()
    cfg = parse_config(args.config, args.set)
    parts = build(cfg)
    print(report(cfg, parts, args.samples))
    took = time.perf_counter() - began
    print(f"\nconfig OK ({took:.1f} s); run it with `nasorch run {args.config}`")
    return 0


def report(cfg: ExperimentConfig, parts: Components, samples: int | None = None) -> str:
    rng = random.Random(cfg.seed)
    space, gate = parts.space, parts.gate
    lines = ["resolved config:", _indent(cfg.to_yaml().rstrip())]
    size = space.size()
    lines.append(f"\nsearch space {cfg.search_space.name!r}: {_size(size)} architectures")
    arch = space.sample(rng)
    lines.append(f"a sampled architecture: {space.describe(arch)}")
    cost = gate.cost(arch)
    if cost:
        lines.append("  its costs: " + ", ".join(f"{k} {_num(v)}" for k, v in cost.items()))
    trainable = parts.trainable
    epochs = f"{trainable.max_epochs} epochs" if trainable.epochs_known else "epochs not set"
    lines.append(
        f"trainable {cfg.trainable.name!r} ({epochs}); searcher {cfg.searcher.name!r}; "
        f"scheduler {cfg.scheduler.name!r}; {cfg.num_samples} trials, "
        f"{cfg.max_concurrent_trials} at once, each {_resources(cfg)}"
    )
    if gate.limits:
        lines.append(_rejections(space, gate, rng, samples))
    return "\n".join(lines)


def _rejections(space: Any, gate: Any, rng: random.Random, samples: int | None) -> str:
    n = samples or (20 if gate.input_shape is not None else 200)
    rejected: dict[str, int] = {}
    for _ in range(n):
        for limit in gate.violations(gate.cost(space.sample(rng))):
            rejected[limit] = rejected.get(limit, 0) + 1
    limits = ", ".join(f"{k} {_num(v)}" for k, v in gate.limits.items())
    if not rejected:
        return f"constraints ({limits}): none of {n} sampled candidates rejected"
    parts = ", ".join(f"{k}: {c} of {n}" for k, c in rejected.items())
    return f"constraints ({limits}): sampled candidates rejected by {parts}"


def _size(size: float) -> str:
    if math.isinf(size):
        return "infinitely many (continuous parameters)"
    return f"{size:,.0f}"


def _num(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:.4g}"


def _resources(cfg: ExperimentConfig) -> str:
    gpu = f", {cfg.resources.gpu:g} GPU" if cfg.resources.gpu else ""
    return f"{cfg.resources.cpu:g} CPU{gpu}"


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())
