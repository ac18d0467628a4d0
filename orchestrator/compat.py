"""Every use of a private name of Ray, MLflow or Optuna, in one place.

These libraries move their internals between minor releases. Each function here wraps one
private access and says what it is for; `tests/test_compat.py` probes each against the installed
versions and fails with a message naming what moved, so an upgrade breaks one test, not a
search. Code elsewhere in nasorch uses only the libraries' public APIs and this module.
"""

from __future__ import annotations

import os
from typing import Any

# ---- Ray ------------------------------------------------------------------------------------


def refresh_ray_config() -> None:
    """Make this process's Ray read its environment (RAY_AUTH_MODE) again: Ray caches its
    config when `ray._raylet` is first imported, which may be before nasorch chose the mode."""
    from ray._raylet import Config

    Config.initialize("")


def ray_token_auth_enabled() -> bool:
    """Whether this process's Ray runs with token authentication."""
    from ray._raylet import AuthenticationMode, get_authentication_mode

    return get_authentication_mode() == AuthenticationMode.TOKEN


def local_ray_init_kwargs() -> dict[str, Any]:
    """ray.init arguments for a private local Ray: advertise loopback, not the machine's own
    address (Ray has no public argument for it)."""
    return {"_node_ip_address": "127.0.0.1"}


def tuner_run_config(tuner: Any) -> Any:
    """The RunConfig of a Tuner, including one Ray unpickled for `Tuner.restore` (its callbacks
    and stopper are the search's own objects, with their restored state)."""
    return tuner._local_tuner.get_run_config()


def tuner_search_alg(tuner: Any) -> Any:
    """The searcher of a Tuner (after `Tuner.restore`: the one Ray unpickled)."""
    return tuner._local_tuner._tune_config.search_alg


def ray_temp_root() -> str:
    """Ray's temp folder on this machine (sessions, staging copies of results)."""
    try:
        from ray._common.utils import get_default_ray_temp_dir

        return get_default_ray_temp_dir()
    except ImportError:  # its usual place
        return os.path.join(os.environ.get("RAY_TMPDIR", "/tmp"), "ray")
