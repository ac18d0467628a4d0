"""State files and checkpoints, written atomically (temp file in the same folder, fsync,
os.replace)."""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any


def write_json_atomic(path: str | os.PathLike, payload: Any) -> None:
    """Write JSON so that a crash leaves either the old file or the new one, never half."""
    write_bytes_atomic(path, json.dumps(payload).encode(), suffix=".json")


def write_bytes_atomic(path: str | os.PathLike, data: bytes, suffix: str = "") -> None:
    """Write `data` so that a crash leaves either the old file or the new one, never half (a
    state file, a searcher's checkpoint)."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
