"""`nasorch_state.json`: what a search needs to be resumed, next to Ray's experiment folder.

Two processes write it: the driver (where the search lives: its MLflow parent run, Ray's
experiment path with any query string intact, the config's folder) and the MLflow writer (each
trial's run, the last epoch written). `SearchState` is the only code that touches the file: every
write merges its own keys into what is there, under a lock, and writes atomically, so neither
writer drops the other's keys. A `version` field lets a later nasorch read older files.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from orchestrator.core.errors import UserError
from orchestrator.core.jsonio import write_json_atomic
from trainables.storage import locked

STATE_FILE = "nasorch_state.json"
VERSION = 1
# key -> what it holds (the schema; a key not listed here is refused)
FIELDS = {
    "parent": "MLflow run id of the search (the parent run)",
    "ray_path": "Ray's experiment folder or URI, exactly as Tuner.restore needs it",
    "config_dir": "folder of the config file: user modules are imported from there",
    "runs": "trial id -> MLflow run id",
    "steps": "trial id -> last epoch written to MLflow",
    "trials": "trial id -> [trial number, architecture hash]",
    "ended": "trial id -> [status, epochs] its run ended with",
    "unsent": "records the writer could not deliver: {count, file}",
}


class SearchState:
    def __init__(self, folder_or_file: str | os.PathLike):
        path = Path(folder_or_file)
        self.path = path if path.name == STATE_FILE else path / STATE_FILE

    def read(self) -> dict[str, Any]:
        if not self.path.is_file():
            return {}
        try:
            data = json.loads(self.path.read_text())
        except ValueError as e:
            raise UserError(f"{self.path}: not a nasorch state file ({e})") from None
        if not isinstance(data, dict) or int(data.get("version", 0)) > VERSION:
            raise UserError(f"{self.path}: written by a newer nasorch; upgrade to resume it")
        return data

    def update(self, **fields: Any) -> dict[str, Any]:
        """Merge `fields` into the file (read, merge, atomic write, under a lock)."""
        unknown = set(fields) - set(FIELDS)
        if unknown:
            raise ValueError(f"unknown state fields: {', '.join(sorted(unknown))}")
        with locked(self.path.with_name(f".{STATE_FILE}.lock")):
            data = self.read()
            data.update(fields, version=VERSION)
            write_json_atomic(self.path, data)
        return data
