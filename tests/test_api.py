"""The public API: verbs, file kinds, atomic saves, unsupported objects, info."""

from __future__ import annotations

import io
import os
import sys
import textwrap
import threading

import numpy as np
import pytest
from _compare import assert_identical

import devpersist


def test_public_api_is_locked():
    assert devpersist.__all__ == sorted(devpersist.__all__, key=lambda s: (not s.isupper(), s))
    assert set(devpersist.__all__) == {
        "FORMAT_VERSION", "ConfigWarning", "ConfiguredEstimator", "DeviceError",
        "DeviceFallbackWarning", "DevpersistError", "FormatError", "IntegrityError",
        "MissingLibraryError", "NotDevpersistError", "RemoteStorageError", "ResourceLimitError",
        "UnsupportedFormatVersionError", "UnsupportedObjectError", "UntrustedTypeError",
        "VersionMismatchError", "VersionMismatchWarning", "__version__", "config_context",
        "UntrustedSourceWarning", "convert", "UnsafeTrustError", "UntrustedTypeWarning",
        "dangerously_trust", "PrecisionLossError", "CodecFallbackWarning", "NotMappedWarning",
        "dump", "dumps", "get_untrusted_types", "info", "load", "loads", "presets", "unwrap",
        "verify",
    }  # fmt: skip
    for name in devpersist.__all__:
        assert hasattr(devpersist, name)


def test_exceptions_subclass_builtins():
    assert issubclass(devpersist.FormatError, ValueError)
    assert issubclass(devpersist.IntegrityError, devpersist.FormatError)
    assert issubclass(devpersist.UntrustedTypeError, TypeError)
    assert issubclass(devpersist.UnsupportedObjectError, TypeError)
    assert issubclass(devpersist.MissingLibraryError, ImportError)
    assert issubclass(devpersist.DeviceError, RuntimeError)
    for name in devpersist.__all__:
        obj = getattr(devpersist, name)
        if isinstance(obj, type) and issubclass(obj, Exception) and not issubclass(obj, Warning):
            assert issubclass(obj, devpersist.DevpersistError)


@pytest.fixture
def model():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.random((50, 4))
    return LogisticRegression().fit(X, X[:, 0] > 0.5), X


@pytest.mark.parametrize("kind", ["str", "pathlike", "file", "bytesio"])
def test_dump_load_file_kinds(tmp_path, model, kind):
    est, X = model
    path = tmp_path / "model.dvp"
    if kind == "str":
        devpersist.dump(est, str(path))
        loaded = devpersist.load(str(path))
    elif kind == "pathlike":
        devpersist.dump(est, path)
        loaded = devpersist.load(path)
    elif kind == "file":
        with open(path, "wb") as f:
            devpersist.dump(est, f)
        with open(path, "rb") as f:
            loaded = devpersist.load(f)
            assert f.read() == b""  # left at the end of the data
    else:
        buf = io.BytesIO()
        devpersist.dump(est, buf)
        buf.seek(0)
        loaded = devpersist.load(buf)
    assert_identical(est.predict_proba(X), loaded.predict_proba(X))


def test_file_object_at_an_offset_and_unseekable(model):
    est, X = model
    data = devpersist.dumps(est)
    buf = io.BytesIO(b"prefix" + data)
    buf.seek(6)
    assert_identical(est.predict(X), devpersist.load(buf).predict(X))

    class Pipe(io.RawIOBase):
        def __init__(self, payload: bytes) -> None:
            self._inner = io.BytesIO(payload)

        def readable(self) -> bool:
            return True

        def readinto(self, b) -> int:  # type: ignore[override]
            return self._inner.readinto(b)

    assert_identical(est.predict(X), devpersist.load(Pipe(data)).predict(X))


def test_dump_and_dumps_write_the_same_bytes(tmp_path, model):
    est, _ = model
    devpersist.dump(est, tmp_path / "m.dvp")
    assert (tmp_path / "m.dvp").read_bytes() == devpersist.dumps(est)


def test_loads_rejects_str_and_load_rejects_non_files():
    with pytest.raises(TypeError, match="bytes"):
        devpersist.loads("not bytes")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        devpersist.load(12345)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        devpersist.dump({}, 12345)  # type: ignore[arg-type]


def _lambda_pipeline():
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    return Pipeline([("scale", StandardScaler()), ("f", FunctionTransformer(func=lambda x: x))])


def _local_function():
    def double(x):
        return 2 * x

    return {"model": {"post": double}}


def _generator():
    return {"steps": [1, 2, (i for i in range(3))]}


@pytest.mark.parametrize(
    "make, path, type_name",
    [
        (_lambda_pipeline, "Pipeline.steps[1][1].func", "function"),
        (_local_function, "dict['model']['post']", "function"),
        (lambda: {"lock": [threading.Lock()]}, "dict['lock'][0]", "lock"),
        (_generator, "dict['steps'][2]", "generator"),
        (lambda: {"log": open(os.devnull)}, "dict['log']", "TextIOWrapper"),
    ],
    ids=["lambda", "local-function", "lock", "generator", "open-file"],
)
def test_unsupported_objects_name_their_path_and_write_nothing(tmp_path, make, path, type_name):
    obj = make()
    target = tmp_path / "out.dvp"
    with pytest.raises(devpersist.UnsupportedObjectError) as info:
        devpersist.dump(obj, target)
    assert path in str(info.value)
    assert type_name in info.value.type_name
    assert info.value.path == path
    assert list(tmp_path.iterdir()) == []  # no target, no temporary file
    buf = io.BytesIO()
    with pytest.raises(devpersist.UnsupportedObjectError):
        devpersist.dump(obj, buf)
    assert buf.getvalue() == b""
    if isinstance(obj, dict) and "log" in obj:
        obj["log"].close()


def test_failed_save_keeps_the_old_file(tmp_path, monkeypatch, model):
    est, X = model
    target = tmp_path / "model.dvp"
    devpersist.dump(est, target)
    before = target.read_bytes()

    from devpersist import _format

    real = _format.write_container

    def broken(f, graph, blobs, metadata, **options):
        f.write(b"partial garbage")
        raise OSError("disk full")

    monkeypatch.setattr(_format, "write_container", broken)
    with pytest.raises(OSError, match="disk full"):
        devpersist.dump({"other": np.arange(10)}, target)
    monkeypatch.setattr(_format, "write_container", real)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.dvp"]
    assert_identical(est.predict(X), devpersist.load(target).predict(X))


def test_info_describes_without_loading(tmp_path, model):
    est, _ = model
    meta = devpersist.info(devpersist.dumps(est))
    assert meta["format_version"] == devpersist.FORMAT_VERSION
    assert meta["object"]["type"] == "sklearn.linear_model._logistic.LogisticRegression"
    paths = {a["path"]: a for a in meta["arrays"]}
    assert paths["LogisticRegression.coef_"]["shape"] == [1, 4]
    assert paths["LogisticRegression.coef_"]["dtype"] == "<f8"
    assert ["sklearn.linear_model._logistic", "LogisticRegression"] in meta["globals"]
    assert meta["environment"]["packages"]["scikit-learn"]


@pytest.fixture
def foreign_module(tmp_path, monkeypatch):
    """A user module defining an estimator-like class outside the allowlist."""
    (tmp_path / "userpkg_dp.py").write_text(
        textwrap.dedent(
            """
            class Custom:
                def __init__(self, w):
                    self.w = w
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import userpkg_dp

    yield userpkg_dp
    sys.modules.pop("userpkg_dp", None)


def test_untrusted_types_are_listed_not_imported(foreign_module):
    with pytest.warns(devpersist.UntrustedTypeWarning, match="userpkg_dp.Custom"):
        data = devpersist.dumps({"m": foreign_module.Custom(np.arange(3.0))})
    sys.modules.pop("userpkg_dp")
    assert devpersist.get_untrusted_types(data) == ["userpkg_dp.Custom"]
    assert devpersist.info(data)["arrays"][0]["path"] == "dict['m'].w"
    with pytest.raises(devpersist.UntrustedTypeError) as err:
        devpersist.loads(data)
    assert err.value.untrusted == ["userpkg_dp.Custom"]
    assert "userpkg_dp" not in sys.modules  # audited by name, never imported
    loaded = devpersist.loads(data, trusted=["userpkg_dp.Custom"])
    assert np.array_equal(loaded["m"].w, np.arange(3.0))
    assert devpersist.get_untrusted_types(data, trusted=["userpkg_dp.Custom"]) == []


def test_trusted_accepts_types(foreign_module):
    with pytest.warns(devpersist.UntrustedTypeWarning):
        data = devpersist.dumps(foreign_module.Custom(1))
    assert devpersist.loads(data, trusted=[foreign_module.Custom]).w == 1


def test_shared_references_and_cycles_survive():
    a = np.arange(4.0)
    inner: list = [a]
    obj = {"x": a, "y": a, "inner": inner}
    inner.append(obj)
    out = devpersist.loads(devpersist.dumps(obj))
    assert out["x"] is out["y"] is out["inner"][0]
    assert out["inner"][1] is out


def test_saving_leaves_the_model_untouched(model):
    est, X = model
    coef = est.coef_
    snapshot = coef.copy()
    devpersist.dumps(est)
    assert est.coef_ is coef and np.array_equal(coef, snapshot) and coef.flags.writeable


def test_progress_bar_on_request_and_quiet_by_default(tmp_path, capsys):
    payload = {"w": np.ones(300_000)}
    devpersist.dump(payload, tmp_path / "p.dvp", progress=True)
    err = capsys.readouterr().err
    assert "saving" in err and "MiB/s" in err and "100%" in err
    devpersist.load(tmp_path / "p.dvp", progress=True)
    assert "loading" in capsys.readouterr().err
    devpersist.dump(payload, tmp_path / "q.dvp")  # not a terminal: nothing by default
    devpersist.load(tmp_path / "q.dvp")
    assert capsys.readouterr().err == ""
