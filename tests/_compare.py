"""Bit-for-bit comparison of estimator outputs."""

from __future__ import annotations

from typing import Any

import numpy as np


def as_numpy(value: Any) -> Any:
    if hasattr(value, "toarray"):
        value = value.toarray()
    if type(value).__module__.startswith("torch"):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def assert_identical(a: Any, b: Any, what: str = "") -> None:
    """Same type, dtype, shape and bits (NaNs equal)."""
    assert type(a) is type(b), f"{what}: {type(a)} != {type(b)}"
    if isinstance(a, tuple):  # ("raised", name) from _sklearn_cases.outputs
        assert a == b, what
        return
    x, y = as_numpy(a), as_numpy(b)
    assert x.dtype == y.dtype, f"{what}: dtype {x.dtype} != {y.dtype}"
    assert x.shape == y.shape, f"{what}: shape {x.shape} != {y.shape}"
    if x.dtype.hasobject:
        assert np.array_equal(x, y), f"{what}: values differ"
    else:
        assert x.tobytes() == y.tobytes(), f"{what}: bits differ"
