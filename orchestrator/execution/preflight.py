"""Checks that cost nothing and catch what would otherwise fail mid-search: every folder the
search will write (Ray's results, MLflow's store and artifacts) must be writable, before
anything is recorded. A read-only file system or a path below a regular file is one line naming
the field, not a traceback after a parent run was opened (or 111 s of SQLAlchemy retries)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from orchestrator.config import ExperimentConfig
from orchestrator.core.errors import UserError
from trainables.errors import InputError
from trainables.storage import filesystem, is_uri, redact, why


def check_paths(cfg: ExperimentConfig) -> None:
    writable_dir(cfg.driver_folder(), "storage_path")
    storage = cfg.resolved_storage_path()
    if is_uri(storage):  # reachable with these credentials, or one line now (not after a trial)
        try:
            fs, path = filesystem(storage)
            fs.get_file_info(path.split("/", 1)[0])  # the bucket
        except InputError as e:
            raise UserError(f"storage_path: {e}") from None
        except OSError as e:
            raise UserError(
                f"storage_path: {redact(storage)} cannot be reached ({why(e)})"
            ) from None
    store = local_store_path(cfg.tracking_uri())
    if store is not None:
        db, is_file = store
        writable_dir(db.parent if is_file else db, "tracking.uri")
        if is_file and db.exists():
            writable_file(db, "tracking.uri")


def local_store_path(uri: str) -> tuple[Path, bool] | None:
    """(path, is a database file) of a tracking store on this machine; None for a server."""
    if uri.startswith("sqlite:///"):
        return Path(uri.removeprefix("sqlite:///").split("?", 1)[0]), True
    if uri.startswith("file:"):
        return Path(uri.removeprefix("file://").removeprefix("file:")), False
    if not is_uri(uri):  # a plain folder (MLflow's file store)
        return Path(uri), False
    return None


def writable_dir(path: str | os.PathLike, field: str) -> None:
    if os.path.exists(path) and not os.path.isdir(path):
        raise UserError(f"{field}: {path} is a file, not a folder")
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        raise UserError(f"{field}: cannot write to {path} ({e.strerror or e})") from None


def writable_file(path: Path, field: str) -> None:
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_APPEND))
    except OSError as e:
        raise UserError(f"{field}: cannot write to {path} ({e.strerror or e})") from None
