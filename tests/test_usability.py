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
    bits = (expected.view(np.uint32).astype(np.uint64) + 0x7FFF + ((expected.view(np.uint32) >> 16) & 1)) >> 16
    expected = (bits.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    assert out.mean_.dtype == np.float64 and np.array_equal(out.mean_, expected)


def test_bfloat16_refuses_float64_beyond_its_range():
    with pytest.raises(devpersist.PrecisionLossError, match=r"dict\['a'\].*inf"):
        devpersist.dumps({"a": np.array([1.0, 1e300])}, precision="bfloat16")


def test_clamp_precision_stores_the_largest_finite_value():
    values = np.array([3e5, -3e5, 1.5, np.inf, np.nan, -np.inf])
    out = devpersist.loads(devpersist.dumps({"a": values}, precision="float16", clamp_precision=True))["a"]
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
