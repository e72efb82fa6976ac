"""Issue 14: honest precision, joblib's compression conventions, user metadata."""

from __future__ import annotations

import math

import numpy as np
import pytest

import devpersist


def _scaler(mean: float):
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    return StandardScaler().fit(mean + rng.standard_normal((50, 3)))


# --------------------------------------------------------------------------- precision


def test_float16_refuses_values_it_would_store_as_inf(tmp_path):
    scaler = _scaler(3e5)
    target = tmp_path / "scaler.dvp"
    with pytest.raises(devpersist.PrecisionLossError, match=r"StandardScaler\.mean_") as err:
        devpersist.dump(scaler, target, precision="float16")
    assert err.value.path.endswith("mean_") and "inf" in str(err.value)
    assert not target.exists()  # refused before anything was written
    assert isinstance(err.value, ValueError)


def test_bfloat16_holds_what_float16_cannot():
    scaler = _scaler(3e5)
    out = devpersist.loads(devpersist.dumps(scaler, precision="bfloat16"))
    expected = scaler.mean_.astype(np.float32)
    bits = (
        expected.view(np.uint32).astype(np.uint64) + 0x7FFF + ((expected.view(np.uint32) >> 16) & 1)
    ) >> 16
    expected = (bits.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    assert out.mean_.dtype == np.float64 and np.array_equal(out.mean_, expected)


def test_bfloat16_refuses_float64_beyond_its_range():
    with pytest.raises(devpersist.PrecisionLossError, match=r"dict\['a'\].*inf"):
        devpersist.dumps({"a": np.array([1.0, 1e300])}, precision="bfloat16")


def test_clamp_precision_stores_the_largest_finite_value():
    values = np.array([3e5, -3e5, 1.5, np.inf, np.nan, -np.inf])
    out = devpersist.loads(
        devpersist.dumps({"a": values}, precision="float16", clamp_precision=True)
    )["a"]
    finite_max = float(np.finfo(np.float16).max)
    assert out.dtype == np.float64
    assert out[:3].tolist() == [finite_max, -finite_max, 1.5]
    assert np.isposinf(out[3]) and np.isnan(out[4]) and np.isneginf(out[5])


def test_float16_refuses_an_array_that_would_vanish():
    # a variance of 1e-9 would be stored as all zeros
    with pytest.raises(devpersist.PrecisionLossError, match="stored as 0"):
        devpersist.dumps({"var": np.full(4, 1e-9)}, precision="float16")
    # tiny values next to large ones are flushed to zero, as half precision always does
    mixed = np.array([1.0, 1e-9, 0.0])
    out = devpersist.loads(devpersist.dumps({"m": mixed}, precision="float16"))["m"]
    assert out.tolist() == [1.0, 0.0, 0.0]


def test_infinite_and_nan_values_are_not_precision_losses():
    values = np.array([np.inf, -np.inf, np.nan, 2.0])
    out = devpersist.loads(devpersist.dumps({"a": values}, precision="float16"))["a"]
    assert np.isposinf(out[0]) and np.isneginf(out[1]) and np.isnan(out[2]) and out[3] == 2.0


# --------------------------------------------------------------------------- metadata


def test_metadata_is_stored_and_shown(tmp_path):
    meta = {"owner": "ml-team", "metrics": {"r2": 0.91, "n": 3}, "tags": ["a", None, True]}
    target = tmp_path / "m.dvp"
    devpersist.dump({"w": np.arange(3.0)}, target, metadata=meta)
    assert devpersist.info(target)["metadata"] == meta
    assert devpersist.info(devpersist.dumps({"w": 1}, metadata=meta))["metadata"] == meta
    assert "metadata" not in devpersist.info(devpersist.dumps({"w": 1}))


@pytest.mark.parametrize(
    "bad, error, match",
    [
        ({"x": math.nan}, ValueError, "NaN"),
        ({"x": [math.inf]}, ValueError, "infinity"),
        ({1: "a"}, TypeError, "keys must be strings"),
        ({"x": (1, 2)}, TypeError, "tuple"),
        ({"x": np.arange(3)}, TypeError, "ndarray"),
        ({"x": "y" * 70_000}, ValueError, "limit"),
        ("owner", TypeError, "dict"),
    ],
)
def test_bad_metadata_is_refused_before_writing(tmp_path, bad, error, match):
    target = tmp_path / "m.dvp"
    with pytest.raises(error, match=match):
        devpersist.dump({"w": 1}, target, metadata=bad)
    assert not target.exists()


def test_metadata_survives_convert(tmp_path):
    src, dst = tmp_path / "a.dvp", tmp_path / "b.dvp"
    devpersist.dump({"w": np.arange(3.0)}, src, metadata={"owner": "me"})
    assert devpersist.convert(src, dst, compress="zlib")["metadata"] == {"owner": "me"}
    assert devpersist.info(dst)["metadata"] == {"owner": "me"}


# --------------------------------------------------------------------------- compression


def _codec_of(data: bytes) -> tuple:
    return tuple(sorted({a.get("codec") for a in devpersist.info(data)["arrays"] if "codec" in a}))


BIG = {"w": np.arange(100_000, dtype=np.float64)}


@pytest.mark.parametrize(
    "compress, codec",
    [
        (0, ()),
        (3, ("zlib",)),
        (9, ("zlib",)),
        ("gzip", ("zlib",)),
        ("xz", ("lzma",)),
        (("zlib", 1), ("zlib",)),
        ("zlib:1", ("zlib",)),
        (["lzma", 1], ("lzma",)),
    ],
)
def test_joblib_compress_conventions(compress, codec):
    data = devpersist.dumps(BIG, compress=compress)
    assert _codec_of(data) == codec
    assert devpersist.loads(data)["w"].tobytes() == BIG["w"].tobytes()


def test_compress_int_is_the_zlib_level():
    import zlib

    data = devpersist.dumps(BIG, compress=1)
    entry = devpersist.info(data)["arrays"][0]
    stored = data[entry["offset"] : entry["offset"] + entry["length"]]
    assert stored == zlib.compress(BIG["w"].tobytes(), 1)


@pytest.mark.parametrize("bad", [10, -1, "bz2", "zstd:x", ("zlib", 12), ("zlib", "3"), 2.5])
def test_bad_compress_values_are_refused(bad):
    with pytest.raises(ValueError, match="compress|codec|level"):
        devpersist.dumps(BIG, compress=bad)


def test_compress_true_falls_back_to_zlib_when_zstandard_is_missing(monkeypatch):
    import builtins
    import importlib
    import sys

    real_import = builtins.__import__

    def no_zstandard(name, *args, **kwargs):
        if name == "zstandard":
            raise ImportError("No module named 'zstandard'")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "zstandard", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_zstandard)
    real_import_module = importlib.import_module

    def import_module(name, package=None):
        if name == "zstandard":
            raise ImportError("No module named 'zstandard'")
        return real_import_module(name, package)

    monkeypatch.setattr(importlib, "import_module", import_module)
    with pytest.warns(devpersist.CodecFallbackWarning, match="zlib"):
        data = devpersist.dumps(BIG, compress=True)
    assert _codec_of(data) == ("zlib",)
    with pytest.raises(devpersist.MissingLibraryError, match="zstandard"):
        devpersist.dumps(BIG, compress="zstd")  # named: no fallback


def test_compress_true_is_zstd_when_installed():
    pytest.importorskip("zstandard")
    assert _codec_of(devpersist.dumps(BIG, compress=True)) == ("zstd",)


def test_mmap_warns_when_it_cannot_map(tmp_path):
    import io

    path = tmp_path / "m.dvp"
    devpersist.dump(BIG, path, compress="zlib")
    with pytest.warns(devpersist.NotMappedWarning, match="1 of 1 arrays are compressed"):
        out = devpersist.load(path, mmap=True)
    assert out["w"].flags.writeable and out["w"].tobytes() == BIG["w"].tobytes()
    with pytest.warns(devpersist.NotMappedWarning, match="BytesIO"):
        out = devpersist.load(io.BytesIO(devpersist.dumps(BIG)), mmap=True)
    assert out["w"].tobytes() == BIG["w"].tobytes()


def test_mmap_warns_for_a_url():
    pytest.importorskip("fsspec")
    devpersist.dump(BIG, "memory://issue14/m.dvp")
    with pytest.warns(devpersist.NotMappedWarning, match="URL"):
        out = devpersist.load("memory://issue14/m.dvp", mmap=True)
    assert out["w"].tobytes() == BIG["w"].tobytes()


def test_memory_url_missing_file_is_file_not_found():
    pytest.importorskip("fsspec")
    with pytest.raises(FileNotFoundError, match="memory://issue14/absent.dvp"):
        devpersist.load("memory://issue14/absent.dvp")
    with pytest.raises(FileNotFoundError):
        devpersist.info("memory://issue14/absent.dvp")


# --------------------------------------------------------------------------- convert


@pytest.mark.parametrize("ext", ["z", "gz", "bz2", "xz", "lzma", "lz4"])
def test_convert_reads_every_joblib_compression(tmp_path, ext):
    joblib = pytest.importorskip("joblib")
    if ext == "lz4":
        pytest.importorskip("lz4")
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(1)
    model = Ridge().fit(rng.random((20, 3)), rng.random(20))
    src = tmp_path / f"m.joblib.{ext}"
    joblib.dump(model, src)
    with pytest.warns(devpersist.UntrustedSourceWarning):
        devpersist.convert(src, tmp_path / "m.dvp")
    out = devpersist.load(tmp_path / "m.dvp")
    assert out.coef_.tobytes() == model.coef_.tobytes() and out.alpha == model.alpha


def test_convert_names_a_torch_save_file(tmp_path):
    torch = pytest.importorskip("torch")
    src = tmp_path / "t.pt"
    torch.save({"a": torch.ones(3)}, src)
    with pytest.raises(devpersist.FormatError, match="torch.save"):
        devpersist.convert(src, tmp_path / "t.dvp")
    assert not (tmp_path / "t.dvp").exists()


# --------------------------------------------------------------------------- command line


def test_cli_diff_reports_parameters_and_attributes(tmp_path, capsys):
    from sklearn.linear_model import Ridge

    from devpersist.cli import EXIT_FAILED, main

    rng = np.random.default_rng(0)
    X, y = rng.random((30, 3)), rng.random(30)
    a, b = tmp_path / "a.dvp", tmp_path / "b.dvp"
    devpersist.dump(Ridge(alpha=1.0).fit(X, y), a)
    devpersist.dump(Ridge(alpha=5.0, fit_intercept=False).fit(X, y), b)
    assert main(["diff", str(a), str(b)]) == EXIT_FAILED
    out = capsys.readouterr().out.splitlines()
    assert "parameter Ridge.alpha: 1.0 -> 5.0" in out
    assert "parameter Ridge.fit_intercept: True -> False" in out
    intercept = Ridge(alpha=1.0).fit(X, y).intercept_
    assert f"attribute Ridge.intercept_: {float(intercept)!r} -> 0.0" in out
    assert "array Ridge.coef_: values differ" in out
    assert out.index("parameter Ridge.alpha: 1.0 -> 5.0") < out.index(
        "array Ridge.coef_: values differ"
    )


def test_cli_diff_orders_paths_naturally(tmp_path, capsys):
    from sklearn.ensemble import RandomForestRegressor

    from devpersist.cli import main

    rng = np.random.default_rng(0)
    X, y = rng.random((20, 2)), rng.random(20)
    for seed in (0, 1):
        model = RandomForestRegressor(n_estimators=12, max_depth=1, random_state=seed).fit(X, y)
        devpersist.dump(model, tmp_path / f"{seed}.dvp")
    main(["diff", str(tmp_path / "0.dvp"), str(tmp_path / "1.dvp")])
    out = capsys.readouterr().out
    assert "RandomForestRegressor.random_state: 0 -> 1" in out
    assert 0 <= out.index("estimators_[2].") < out.index("estimators_[10].")
    arrays = [line for line in out.splitlines() if line.startswith("array ")]
    assert arrays and arrays.index(
        next(x for x in arrays if "estimators_[2]." in x)
    ) < arrays.index(next(x for x in arrays if "estimators_[10]." in x))


def test_cli_diff_does_not_import_what_the_file_names(tmp_path, capsys, monkeypatch):
    import sys

    from devpersist.cli import main

    (tmp_path / "issue14_custom.py").write_text(
        "class Thing:\n    def __init__(self, k):\n        self.k = k\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import issue14_custom

    a, b = tmp_path / "a.dvp", tmp_path / "b.dvp"
    with pytest.warns(devpersist.UntrustedTypeWarning, match="issue14_custom.Thing"):
        devpersist.dump({"t": issue14_custom.Thing(1), "f": math.pi}, a)
    with pytest.warns(devpersist.UntrustedTypeWarning, match="issue14_custom.Thing"):
        devpersist.dump({"t": issue14_custom.Thing(2), "f": math.pi}, b)
    (tmp_path / "issue14_custom.py").write_text("raise RuntimeError('imported')\n")
    monkeypatch.delitem(sys.modules, "issue14_custom")
    assert main(["diff", str(a), str(b)]) == 1
    assert capsys.readouterr().out.splitlines() == ["attribute dict['t'].k: 1 -> 2"]
    assert "issue14_custom" not in sys.modules


def test_cli_version_help_and_metadata(tmp_path, capsys):
    from devpersist.cli import main

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"devpersist {devpersist.__version__}"
    for argv in (["--help"], ["convert", "--help"], ["diff", "--help"]):
        assert main(argv) == 0
        text = capsys.readouterr().out
        assert "usage: devpersist" in text
        assert "``" not in text and ":func:" not in text and ":class:" not in text
    path = tmp_path / "m.dvp"
    devpersist.dump({"w": np.arange(3.0)}, path, metadata={"owner": "ml-team", "r2": 0.5})
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert 'metadata owner: "ml-team"' in out and "metadata r2: 0.5" in out


@pytest.mark.parametrize(
    "given, codec", [("zlib:1", "zlib"), ("3", "zlib"), ("xz", "lzma"), ("0", None)]
)
def test_cli_convert_takes_a_level(tmp_path, given, codec):
    from devpersist.cli import main

    src, dst = tmp_path / "a.dvp", tmp_path / "b.dvp"
    devpersist.dump(BIG, src)
    assert main(["convert", str(src), str(dst), "--compress", given]) == 0
    assert devpersist.info(dst)["arrays"][0].get("codec") == codec
    assert devpersist.load(dst)["w"].tobytes() == BIG["w"].tobytes()


# --------------------------------------------------------------------------- progress


class _Terminal:
    """A stand-in for stderr that records each redraw."""

    def __init__(self):
        self.text = ""

    def write(self, s):
        self.text += s

    def flush(self):
        pass

    def isatty(self):
        return True

    @property
    def frames(self):
        return [f.strip() for f in self.text.replace("\n", "\r").split("\r") if f.strip()]


def test_progress_moves_per_chunk_on_save_and_load(tmp_path, monkeypatch):
    import re
    import sys

    from devpersist import _progress

    clock = iter(range(1_000_000))
    monkeypatch.setattr(_progress.time, "perf_counter", lambda: next(clock) * 0.2)
    term = _Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    payload = {"w": np.ones(12 * 2**20)}  # one 96 MiB array: 6 pieces of 16 MiB
    path = tmp_path / "p.dvp"
    devpersist.dump(payload, path, progress=True)
    saving = [f for f in term.frames if "saving" in f]
    percents = [int(re.search(r"\((\s*\d+)%\)", f).group(1)) for f in saving]
    assert len(set(percents)) >= 6 and percents == sorted(percents) and percents[-1] == 100
    assert all("MB" not in f for f in saving) and all(re.search(r"MiB/s", f) for f in saving)
    assert any(re.search(r"\d+:\d\d left", f) for f in saving)

    term.text = ""
    devpersist.load(path, progress=True)
    loading = [f for f in term.frames if "loading" in f]
    assert len(loading) >= 3 and loading[-1].endswith("MiB/s") and "(100%)" in loading[-1]


def test_progress_shows_no_rate_for_what_mmap_does_not_read(tmp_path, monkeypatch):
    import sys

    term = _Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    path = tmp_path / "p.dvp"
    devpersist.dump({"w": np.ones(2**20)}, path)
    devpersist.load(path, mmap=True, progress=True)
    assert "/s" not in term.text


def test_cli_diff_compares_long_values_in_full_and_escapes_them(tmp_path, capsys):
    from devpersist.cli import main

    a, b = tmp_path / "a.dvp", tmp_path / "b.dvp"
    devpersist.dump({"s": "x" * 500 + "a", "t": "\x1b[31m"}, a)
    devpersist.dump({"s": "x" * 500 + "b", "t": "\x1b[32m"}, b)
    assert main(["diff", str(a), str(b)]) == 1
    out = capsys.readouterr().out
    assert "dict['s']" in out and "\x1b" not in out and "\\x1b[31m" in out


def test_cli_info_escapes_metadata(tmp_path, capsys):
    from devpersist.cli import main

    path = tmp_path / "m.dvp"
    devpersist.dump({"w": 1}, path, metadata={"own\x1b[2Jer": "a\u202eb"})
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\u202e" not in out and "\\x1b[2J" in out
