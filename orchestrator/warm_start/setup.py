"""A new search's warm start, done once between its parent run's creation and its first trial.

The fingerprints go on every parent run (so any later search can learn from this one); with a
`warm_start` config the earlier trials are read from MLflow, the strategy is told the search's
own past, the gate gets the complete ones as answers, and the adapter a related task's best
architectures to try first. All of it lands in the searcher's saved state: a resumed search
neither reads the record again nor loses it.
"""

from __future__ import annotations

import sys
from typing import Any

from orchestrator.config import ExperimentConfig
from orchestrator.core import tags as T
from orchestrator.warm_start.fingerprint import Fingerprint, fingerprint
from orchestrator.warm_start.plan import PastTrial, WarmStart
from orchestrator.warm_start.record import read_record


def search_fingerprint(cfg: ExperimentConfig, trainable_options: dict[str, Any]) -> Fingerprint:
    return fingerprint(
        cfg.trainable.name, trainable_options, cfg.search_space.model_dump(mode="json"), cfg.metric
    )


def fingerprint_tags(fp: Fingerprint) -> dict[str, str]:
    return {T.FINGERPRINT: fp.full, T.RECIPE: fp.recipe}


def read_past(
    cfg: ExperimentConfig, parts: Any, client: Any, skip_parent: str | None = None
) -> list[PastTrial]:
    """The earlier trials of `cfg.warm_start`'s experiments; read before the parent run is
    made, so that a wrong experiment name stops the search before anything is recorded (or,
    for a search that starts over, without its own parent run `skip_parent`)."""
    ws = cfg.warm_start
    if ws is None:
        return []
    return read_record(
        client,
        ws.experiments or [cfg.experiment_name()],
        space=parts.space,
        metrics=[cfg.metric, *(o.metric for o in cfg.objectives)],
        skip_parent=skip_parent,
    )


def apply_warm_start(
    cfg: ExperimentConfig, parts: Any, searcher: Any, past: list[PastTrial], fp: Fingerprint
) -> WarmStart | None:
    """Prime `parts.strategy`, `parts.gate` and `searcher` (the adapter) with `past`."""
    ws = cfg.warm_start
    if ws is None:
        return None
    plan = WarmStart.plan(
        past, fp, mode=cfg.mode, reuse=ws.reuse, transfer=ws.transfer, top_k=ws.top_k,
        budget=cfg.num_samples,
    )  # fmt: skip
    plan.apply(searcher)  # the adapter holds parts.strategy and parts.gate
    names = ws.experiments or [cfg.experiment_name()]
    print(
        f"nasorch: warm start from {', '.join(names)}: {len(past)} earlier trials; the searcher "
        f"was told {len(plan.told)}, {len(plan.answers)} can answer a proposal without "
        f"training, {len(plan.seeds)} of a related task are tried first",
        file=sys.stderr,
    )
    return plan
