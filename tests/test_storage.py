"""Storage URIs kept whole (trainables/storage.py): every reader of a search's storage reaches
the configured server, with the URI's query (endpoint, scheme), never real AWS; data on shared
storage is copied once per node into the data cache. The S3 tests use a real S3-compatible
server on loopback (moto's server mode)."""

# ruff: noqa: F811  (pytest fixtures imported from test_resume are parameters here)
from __future__ import annotations

import json
import os
import threading
import time

import pytest
import yaml

from tests import data_files as gen
from tests.conftest import ROOT
from tests.test_resume import crash_and_resume, nasorch, s3_server, started  # noqa: F401
from trainables import storage
from trainables.errors import InputError

# ---- unit tier: URIs, and fetch from a file:// URI --------------------------------------------

Q = "?endpoint_override=127.0.0.1:9000&scheme=http"


def test_join_and_locate_keep_the_query():
    assert storage.join(f"s3://b/ray{Q}", "run-1", "t000") == f"s3://b/ray/run-1/t000{Q}"
    assert storage.join("/data/ray/", "run-1") == "/data/ray/run-1"
    # a path inside the file system the storage URI opens, back as a URI that reopens it
    assert storage.locate("b/ray/run-1/checkpoint_000002", f"s3://b/ray{Q}") == (
        f"s3://b/ray/run-1/checkpoint_000002{Q}"
    )
    assert storage.locate("/data/ray/run-1/c", "/data/ray") == "/data/ray/run-1/c"
    assert storage.redact(f"s3://b/x{Q}") == "s3://b/x"
    secret = f"s3://b/x{Q}&access_key=A&secret_key=S&session_token=T"
    assert storage.without_secrets(secret) == f"s3://b/x{Q}"
    assert storage.without_secrets("s3://b/x?secret_key=S") == "s3://b/x"


def test_filesystem_reads_the_query(tmp_path):
    fs, path = storage.filesystem(f"s3://bucket/key{Q}")
    assert path == "bucket/key" and fs.type_name == "s3"
    fs, path = storage.filesystem(tmp_path / "x")
    assert fs.type_name == "local" and path == str(tmp_path / "x")
    with pytest.raises(InputError, match="not a storage URI"):
        storage.filesystem("nope://bucket/key")


def test_fetch_copies_once_and_again_when_the_source_changes(tmp_path):
    source = gen.write_csv(tmp_path)
    cache = tmp_path / "cache"
    local = storage.fetch(f"file://{source}", str(cache))
    assert open(local).read() == source.read_text()
    first = os.stat(local).st_mtime_ns
    assert storage.fetch(f"file://{source}", str(cache)) == local
    assert os.stat(local).st_mtime_ns == first  # the cached copy, not copied again
    source.write_text("a,label\n1,x\n")
    os.utime(source, ns=(first + 10**9, first + 10**9))
    assert open(storage.fetch(f"file://{source}", str(cache))).read() == "a,label\n1,x\n"


def test_fetch_copies_a_folder_and_names_a_missing_object(tmp_path):
    pictures = gen.write_image_folder(tmp_path, n=6)
    local = storage.fetch(f"file://{pictures}", str(tmp_path / "cache"))
    assert sorted(os.listdir(local)) == sorted(os.listdir(pictures))
    with pytest.raises(InputError) as e:
        storage.fetch(f"file://{tmp_path}/none.csv", str(tmp_path / "cache"), "dataset.path")
    assert str(e.value) == f"dataset.path: file://{tmp_path}/none.csv does not exist"


def test_a_process_waiting_for_a_lock_names_the_lock_and_its_holder(tmp_path, capsys):
    """A wait on a held lock is said once with the holder's id (how a stray process holding
    the state or data lock is found), and the waiter goes on once the lock is released."""
    path = tmp_path / ".lock"
    entered = threading.Event()

    def wait_for_it():
        with storage.locked(path):
            entered.set()

    with storage.locked(path):
        assert path.read_text() == str(os.getpid())
        waiter = threading.Thread(target=wait_for_it)
        waiter.start()
        said = ""
        for _ in range(500):
            said += capsys.readouterr().err
            if said:
                break
            time.sleep(0.01)
        assert said == f"nasorch: waiting for the lock {path} (held by process {os.getpid()})\n"
        assert not entered.is_set()
    waiter.join(timeout=10)
    assert entered.is_set()


def test_refused_credentials_and_an_unreachable_store_are_said_plainly():
    denied = OSError("When reading information for key 'x': AWS Error ACCESS_DENIED (HTTP 403)")
    assert "refused the credentials" in storage.why(denied)
    lost = OSError("AWS Error NETWORK_CONNECTION during HeadBucket: Could not resolve host: b")
    assert "endpoint_override" in storage.why(lost)


# ---- integration tier: a real S3-compatible server ------------------------------------------


@pytest.fixture
def bucket(s3_server):
    """The moto server's bucket `nasorch`, with a small table and its test split in it."""
    import boto3

    client = boto3.client("s3", endpoint_url=f"http://{s3_server}")
    for name, frame in (("train.csv", gen.table(90, 0)), ("test.csv", gen.table(30, 1))):
        client.put_object(Bucket="nasorch", Key=f"data/{name}", Body=frame.to_csv(index=False))
    return f"?endpoint_override={s3_server}&scheme=http"


@pytest.mark.integration
def test_data_on_s3_is_fetched_and_a_missing_object_is_one_line(bucket, tmp_path):
    local = storage.fetch(f"s3://nasorch/data/train.csv{bucket}", str(tmp_path))
    assert open(local).readline().strip() == "a,b,c,d,colour,label"
    with pytest.raises(InputError) as e:
        storage.fetch(f"s3://nasorch/data/none.csv{bucket}", str(tmp_path), "dataset.path")
    assert str(e.value) == "dataset.path: s3://nasorch/data/none.csv does not exist"


@pytest.mark.integration
def test_the_quickstart_on_s3_storage_then_sigkill_resume_warm_start_compare(
    bucket, tmp_path, started
):
    """The quickstart's torch trainable with Ray's storage and the data on an S3-compatible
    server: killed mid-search and resumed, it ends with its best model and test score (the
    checkpoint read back from that server); a warm-started search and `nasorch compare` then
    read the same searches."""
    from mlflow.tracking import MlflowClient

    config = yaml.safe_load((ROOT / "examples" / "quickstart.yaml").read_text())
    config.update(
        name="s3q", num_samples=4, storage_path=f"s3://nasorch/ray{bucket}",
        tracking={"uri": f"sqlite:///{tmp_path}/mlflow.db"},
    )  # fmt: skip
    config["trainable"]["options"].update(
        epochs=4,
        dataset={
            "format": "csv", "target": "label", "path": f"s3://nasorch/data/train.csv{bucket}",
            "test": f"s3://nasorch/data/test.csv{bucket}", "data_dir": str(tmp_path / "cache"),
        },
    )  # fmt: skip
    config["scheduler"]["options"]["grace_period"] = 1
    (tmp_path / "s3q.yaml").write_text(yaml.safe_dump(config))
    local = tmp_path / "nasorch_results" / "ray"  # nasorch's own files, on the driver's disk
    out = crash_and_resume(tmp_path, started, "s3q", lambda steps: len(steps) >= 2, local)
    assert "best_test_val_accuracy=" in out, out
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.get_experiment_by_name("s3q").experiment_id
    (parent,) = client.search_runs([experiment], "tags.`nasorch.role` = 'search'")
    assert parent.info.status == "FINISHED" and "nasorch.resumed" in parent.data.tags
    assert "best_test_val_accuracy" in parent.data.metrics
    models = client.search_logged_models([experiment])
    found = [(m.name, m.source_run_id) for m in models]
    assert found == [("best_model", parent.info.run_id)], found
    trials = client.search_runs([experiment], "tags.`nasorch.role` = 'trial'")
    assert {r.info.status for r in trials} == {"FINISHED"}
    assert len({r.data.tags["nasorch.trial_number"] for r in trials}) == 4

    # warm start from it, on the same storage: one more search reads the record
    config.update(name="s3q-warm", num_samples=2, warm_start={"experiments": ["s3q"]})
    (tmp_path / "s3q-warm.yaml").write_text(yaml.safe_dump(config))
    warm = nasorch("run", "s3q-warm.yaml", "--quiet", cwd=tmp_path)
    started.append(warm)
    out, _ = warm.communicate(timeout=300)
    # its best model comes from its own trial's checkpoint or a reused trial's (tags.CHECKPOINT)
    assert warm.returncode == 0 and "best_test_val_accuracy=" in out, out
    for run in trials:
        assert run.data.tags["nasorch.checkpoint"].endswith(bucket), run.data.tags

    compared = nasorch(
        "compare", "s3q", "s3q-warm", "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db",
        cwd=tmp_path,
    )  # fmt: skip
    out, _ = compared.communicate(timeout=120)
    assert compared.returncode == 0 and "s3q-warm" in out, out
    summary = json.loads((local / next(os.walk(local))[1][0] / "nasorch_state.json").read_text())
    assert summary["ray_path"].endswith(bucket)  # the URI Ray's folder is at, query whole
