"""fsspec URLs wherever a path works, against a real S3 API server on loopback (moto)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import devpersist

# Never let botocore look for credentials on the network (instance metadata service).
SAFE_ENV = {
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """An S3 API server on loopback (skips when s3fs or moto, the remote test tools, are absent)."""
    pytest.importorskip("s3fs")
    moto_server = pytest.importorskip("moto.server")
    saved = {k: os.environ.get(k) for k in SAFE_ENV}
    os.environ.update(SAFE_ENV)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    options = {"client_kwargs": {"endpoint_url": endpoint}, "skip_instance_cache": True}
    import fsspec

    fs = fsspec.filesystem("s3", **options)
    fs.mkdir("models")
    yield fs, options, endpoint
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def model():
    from sklearn.linear_model import Ridge

    X = np.random.default_rng(0).random((30, 4))
    return Ridge().fit(X, X.sum(axis=1)), X


def test_dump_load_info_verify_on_s3(s3, model):
    fs, options, _ = s3
    est, X = model
    url = "s3://models/ridge.dvp"
    devpersist.dump(est, url, storage_options=options)
    assert fs.exists("models/ridge.dvp")
    loaded = devpersist.load(url, storage_options=options)
    assert np.array_equal(loaded.predict(X), est.predict(X))
    assert devpersist.info(url, storage_options=options)["object"]["type"].endswith("Ridge")
    assert devpersist.verify(url, storage_options=options)["arrays"] == 1
    assert devpersist.get_untrusted_types(url, storage_options=options) == []


def test_info_reads_only_the_manifest(s3, monkeypatch):
    fs, options, _ = s3
    url = "s3://models/big.dvp"
    devpersist.dump({"w": np.ones(2**20)}, url, storage_options=options)  # 8 MiB of array
    import s3fs

    fetched: list[tuple[int, int]] = []
    real = s3fs.core.S3File._fetch_range

    def counting(self, start, end):
        fetched.append((start, end))
        return real(self, start, end)

    monkeypatch.setattr(s3fs.core.S3File, "_fetch_range", counting)
    meta = devpersist.info(url, storage_options=options)
    total = sum(end - start for start, end in fetched)
    assert meta["arrays"][0]["shape"] == [2**20]
    assert len(fetched) <= 4 and total < 8192, fetched


def test_failed_upload_leaves_no_object(s3, monkeypatch):
    fs, options, _ = s3
    import s3fs

    real_write = s3fs.core.S3File.write

    def broken(self, data):  # the connection drops after the first bytes
        real_write(self, b"x" * 1000)
        raise OSError("network went away")

    monkeypatch.setattr(s3fs.core.S3File, "write", broken)
    with pytest.raises(OSError, match="network went away"):
        devpersist.dump({"a": np.arange(3)}, "s3://models/partial.dvp", storage_options=options)
    fs.invalidate_cache()
    assert not fs.exists("models/partial.dvp")


def test_missing_object_is_one_clear_error(s3):
    _, options, _ = s3
    with pytest.raises(devpersist.RemoteStorageError, match="s3://models/absent.dvp"):
        devpersist.load("s3://models/absent.dvp", storage_options=options)


def test_cli_on_urls_and_its_errors(s3, model, tmp_path):
    fs, options, endpoint = s3
    devpersist.dump(model[0], "s3://models/cli.dvp", storage_options=options)
    env = {**os.environ, **SAFE_ENV, "AWS_ENDPOINT_URL": endpoint}
    run = lambda *args: subprocess.run([sys.executable, "-m", "devpersist", *args],  # noqa: E731
                                       capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    ok = run("info", "s3://models/cli.dvp")
    assert ok.returncode == 0, ok.stderr
    assert "Ridge" in ok.stdout
    missing = run("info", "s3://models/absent.dvp")
    assert (
        missing.returncode == 3
        and missing.stderr.count("\n") == 1
        and "Traceback" not in missing.stderr
    )
    assert run("verify", "s3://models/cli.dvp").returncode == 0
    unknown = run("info", "nosuchproto://x/y.dvp")
    assert unknown.returncode == 3 and "Traceback" not in unknown.stderr


def test_memory_and_file_urls(tmp_path, model):
    pytest.importorskip("fsspec")
    est, X = model
    for url in ("memory://bucket/m.dvp", f"file://{tmp_path}/m.dvp"):
        devpersist.dump(est, url)
        assert np.array_equal(devpersist.load(url).predict(X), est.predict(X))
