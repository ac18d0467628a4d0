"""Whether a cluster can ever hold one trial: its live nodes, and the node types its autoscaler
may start (read from the cluster's YAML, as `ray up` and `ray start --autoscaling-config` use it).

A trial asking for what no node offers would wait forever; on a private local Ray that is an
error at once. On a cluster with an autoscaler whose node types are known, it is an error when no
node type offers it either, and otherwise the search says it waits for the autoscaler. Pure: the
caller passes Ray's node list and the YAML's content.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

# Where `ray up` puts the cluster's config on the head node (its autoscaler reads it there).
BOOTSTRAP_CONFIG = "~/ray_bootstrap_config.yaml"
CONFIG_ENV = "NASORCH_CLUSTER_CONFIG"


def _need(cpu: float, gpu: float) -> dict[str, float]:
    return {k: v for k, v in (("CPU", cpu), ("GPU", gpu)) if v > 0}


def _fits(resources: dict[str, float], need: dict[str, float]) -> bool:
    return all(resources.get(k, 0.0) >= v for k, v in need.items())


def _offer(resources: dict[str, float]) -> str:
    return f"{resources.get('CPU', 0):g} CPU, {resources.get('GPU', 0):g} GPU"


def _asked(need: dict[str, float], short: list[str]) -> tuple[str, str]:
    keys = short or list(need)
    return (
        " / ".join(f"resources.{k.lower()}" for k in keys),
        " and ".join(f"{need[k]:g} {k}" for k in keys),
    )


def check_resources(cpu: float, gpu: float, nodes: list[dict], can_grow: bool) -> str | None:
    """None when some live node can hold one trial; otherwise what is missing, in one line. A
    cluster that can grow (an autoscaler, or nodes the user may still add) only gets a note;
    a private local Ray never grows, so there it is an error (the caller raises it)."""
    need = _need(cpu, gpu)
    alive = [n.get("Resources", {}) for n in nodes if n.get("Alive", True)]
    if any(_fits(r, need) for r in alive):
        return None
    short = [k for k, v in need.items() if not any(r.get(k, 0.0) >= v for r in alive)]
    field, asked = _asked(need, short)
    offers = "; ".join(f"node {i + 1}: {_offer(r)}" for i, r in enumerate(alive))
    what = f"{field}: each trial asks for {asked}"
    if can_grow:
        return f"{what}; no node offers that yet ({offers or 'no nodes'}): waiting for one"
    return f"{what}, but no node of this Ray offers it ({offers or 'no nodes'})"


def node_types(config: dict) -> dict[str, dict[str, float]] | None:
    """The node types an autoscaler config may run (the head's, and every worker type with
    `max_workers` > 0), name -> resources; None when a type leaves its resources to the cloud
    provider to detect (nothing can be judged then)."""
    types = config.get("available_node_types") or {}
    head = config.get("head_node_type")
    out = {}
    for name, spec in types.items():
        spec = spec or {}
        if name != head and spec.get("max_workers", config.get("max_workers", 1)) == 0:
            continue
        if "resources" not in spec:
            return None
        out[name] = {k: float(v) for k, v in (spec["resources"] or {}).items()}
    return out or None


def find_cluster_config() -> Path | None:
    """$NASORCH_CLUSTER_CONFIG, else `ray up`'s copy on the head node, if present."""
    for candidate in (os.environ.get(CONFIG_ENV), BOOTSTRAP_CONFIG):
        if candidate and Path(candidate).expanduser().is_file():
            return Path(candidate).expanduser()
    return None


def check_node_types(cpu: float, gpu: float, config: dict, source: str) -> tuple[str, bool] | None:
    """(one line, fatal) for a trial no live node can hold, judged by the autoscaler's node types:
    fatal when no type offers it; otherwise a note naming the types the autoscaler may start.
    None when the node types cannot be judged."""
    types = node_types(config)
    if types is None:
        return None
    need = _need(cpu, gpu)
    fit = [name for name, r in types.items() if _fits(r, need)]
    short = [k for k, v in need.items() if not any(r.get(k, 0.0) >= v for r in types.values())]
    field, asked = _asked(need, short)
    if not fit:
        offers = "; ".join(f"{name}: {_offer(r)}" for name, r in types.items())
        return (
            f"{field}: each trial asks for {asked}, but no node type of the cluster offers it "
            f"({offers}; from {source})",
            True,
        )
    return (
        f"each trial asks for {asked}: waiting for the autoscaler to start a node of type "
        f"{' or '.join(fit)}",
        False,
    )


def load_cluster_config(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ValueError(f"{CONFIG_ENV}: cannot read {path} ({type(e).__name__})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{CONFIG_ENV}: {path} is not a cluster config (a YAML mapping)")
    return data
