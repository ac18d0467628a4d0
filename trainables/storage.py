"""Storage named by a folder or a URI: the one place that opens it, for trials and driver alike.

A URI such as `s3://bucket/prefix?endpoint_override=127.0.0.1:9000&scheme=http` says in its
query how to reach the store (an on-prem S3, MinIO). Whatever reads or writes below it must keep
that query, or pyarrow goes to real AWS ("Could not resolve host bucket.s3.us-east-1..."). So a
location below the configured storage is always written as a whole URI (`join`, `locate`) and
opened by `filesystem` alone; nothing else parses a storage path.

`fetch` copies a remote file or folder (a dataset on shared storage) into a node's data cache
once, under a file lock, like the torchvision downloads (trainables/data_download.py).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from trainables.errors import InputError

DEFAULT_CACHE = "~/.cache/nasorch/data"


def is_uri(location: str | os.PathLike) -> bool:
    """s3://, gs://, file://, ... as opposed to a plain folder."""
    return "://" in os.fspath(location)


def join(base: str, *names: str) -> str:
    """`base/name/...` for a folder or a URI, the URI's query string kept at the end
    (s3://b/p?endpoint_override=h:1 -> s3://b/p/name?endpoint_override=h:1)."""
    path, sep, query = base.partition("?") if is_uri(base) else (base, "", "")
    for name in names:
        path = f"{path.rstrip('/')}/{name.strip('/')}"
    return f"{path}{sep}{query}"


def filesystem(location: str | os.PathLike) -> tuple[Any, str]:
    """(pyarrow file system, path inside it) for a folder or a URI; a URI's query (endpoint,
    scheme, region) configures the file system."""
    import pyarrow.fs

    location = os.fspath(location)
    if not is_uri(location):
        return pyarrow.fs.LocalFileSystem(), os.path.abspath(os.path.expanduser(location))
    try:
        return pyarrow.fs.FileSystem.from_uri(location)
    except (ValueError, OSError) as e:  # an unknown scheme, a malformed query
        raise InputError(f"{redact(location)}: not a storage URI pyarrow can open ({e})") from None


def locate(path: str, like: str) -> str:
    """The location of `path`, a path inside the file system `like` opens, as a string that
    `filesystem` opens again: `like`'s scheme and query around it (a plain path for a folder)."""
    if not is_uri(like):
        return path
    scheme = like.split("://", 1)[0]
    query = like.partition("?")[2]
    return f"{scheme}://{path}" + (f"?{query}" if query else "")


def redact(location: str) -> str:
    """A URI for messages: the path, without a query that may carry secrets."""
    return location.partition("?")[0] if is_uri(location) else location


SECRET_WORDS = ("key", "secret", "token", "password")


def without_secrets(location: str) -> str:
    """`location` with the query parameters that may carry credentials (pyarrow takes
    access_key, secret_key, session_token in an S3 URI) left out: what may be recorded. The
    reader's own credentials (its environment) open it again."""
    if not is_uri(location) or "?" not in location:
        return location
    path, _, query = location.partition("?")
    kept = [p for p in query.split("&") if not any(w in p.split("=")[0] for w in SECRET_WORDS)]
    return f"{path}?{'&'.join(kept)}" if kept else path


def fetch(uri: str, cache_dir: str = DEFAULT_CACHE, field: str = "dataset.path") -> str:
    """A local copy of the file or folder at `uri`, made once per node in `cache_dir` (other
    trials on the node wait on a lock, then use it). Copied again when the object's size or
    modification time changed. Missing objects and refused credentials are one line each."""
    import pyarrow.fs

    fs, path = filesystem(uri)
    info = _info(fs, path, uri, field)
    if info.type == pyarrow.fs.FileType.NotFound:
        raise InputError(f"{field}: {redact(uri)} does not exist")
    key = hashlib.sha256(redact(uri).encode()).hexdigest()[:16]
    root = Path(os.path.expanduser(cache_dir), "remote", key)
    local = root / (os.path.basename(path.rstrip("/")) or "data")
    stamp = root / "source.json"
    version = {"uri": redact(uri), "size": info.size, "mtime": str(info.mtime)}
    with locked(root / ".lock"):
        if local.exists() and stamp.is_file() and json.loads(stamp.read_text()) == version:
            return str(local)
        partial = root / ".partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        target = partial / local.name
        try:
            if info.type == pyarrow.fs.FileType.Directory:
                pyarrow.fs.copy_files(
                    path, str(target), source_filesystem=fs,
                    destination_filesystem=pyarrow.fs.LocalFileSystem(),
                )  # fmt: skip
            else:
                with fs.open_input_stream(path) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
        except OSError as e:
            raise InputError(f"{field}: {redact(uri)} could not be copied ({why(e)})") from None
        if local.is_dir():
            shutil.rmtree(local)
        elif local.exists():
            local.unlink()
        os.replace(target, local)
        stamp.write_text(json.dumps(version))
        shutil.rmtree(partial, ignore_errors=True)
    return str(local)


def _info(fs: Any, path: str, uri: str, field: str) -> Any:
    try:
        return fs.get_file_info(path)
    except OSError as e:
        raise InputError(f"{field}: {redact(uri)} cannot be read ({why(e)})") from None


def why(error: OSError) -> str:
    """pyarrow's S3 errors, in words a user acts on."""
    text = str(error)
    if "ACCESS_DENIED" in text or "AccessDenied" in text or "403" in text:
        return "the storage refused the credentials: see AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY"
    if "NETWORK_CONNECTION" in text or "resolve host" in text or "Connection refused" in text:
        return "the storage cannot be reached: check the URI's endpoint_override and scheme"
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock on `path` (a file), held by one process of the node at a time.

    The holder writes its process id into the file, and a process that has to wait says once,
    on stderr, which lock and which process it waits for: a lock held by a process that
    outlived its search (a stray worker) is then found by its id, not by a debugger.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "unknown"
            print(f"nasorch: waiting for the lock {path} (held by process {holder})",
                  file=sys.stderr, flush=True)  # fmt: skip
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            lock.truncate(0)
            lock.write(str(os.getpid()))
            lock.flush()
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
