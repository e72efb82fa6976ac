"""Deep equality of loaded state, for the adapted peers' suites.

Plays the role of skops' ``assert_params_equal`` (``skops/io/tests/_utils.py``), stricter
where devpersist promises more: arrays must keep their dtype and bits (NaNs equal), and
every value keeps its exact type.
"""

from __future__ import annotations

import types
from typing import Any

import numpy as np


def assert_same(a: Any, b: Any, path: str = "obj", _seen: set[int] | None = None) -> None:
    """Recursively assert that ``b`` equals ``a``: types, dtypes and values."""
    seen = set() if _seen is None else _seen
    if id(a) in seen:
        return
    seen.add(id(a))
    assert type(a) is type(b), f"{path}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, f"{path}: {a.dtype}{a.shape}"
        if a.dtype.hasobject:
            for i, (x, y) in enumerate(zip(a.ravel(), b.ravel())):
                assert_same(x, y, f"{path}.flat[{i}]", seen)
        else:
            assert np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes(), path
        return
    if hasattr(a, "tocsr") and hasattr(a, "nnz"):  # scipy sparse
        assert a.shape == b.shape and a.dtype == b.dtype, path
        assert (a != b).nnz == 0, path
        return
    if isinstance(a, np.random.RandomState):
        assert_same(a.get_state(legacy=False), b.get_state(legacy=False), path, seen)
        return
    if isinstance(a, np.random.Generator):
        assert a.bit_generator.state == b.bit_generator.state, path
        return
    if isinstance(a, dict):
        assert list(a) == list(b), f"{path}: keys {list(a)} != {list(b)}"
        for key in a:
            assert_same(a[key], b[key], f"{path}[{key!r}]", seen)
        return
    if isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{path}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{path}[{i}]", seen)
        return
    if isinstance(a, float) and np.isnan(a):
        assert np.isnan(b), path
        return
    if isinstance(a, np.generic):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), f"{path}: {a!r} != {b!r}"
        return
    if isinstance(a, _REFERENCES):
        assert a is b, f"{path}: {a!r} is not {b!r}"  # functions, types, ufuncs
        return
    if isinstance(a, types.MethodType):
        assert a.__func__ is b.__func__, f"{path}: {a!r} != {b!r}"
        assert_same(a.__self__, b.__self__, f"{path}.__self__", seen)
        return
    if isinstance(a, (str, bytes, bytearray, int, float, complex, bool, type(None), range,
                      slice, set, frozenset)):  # fmt: skip
        assert a == b, f"{path}: {a!r} != {b!r}"
        return
    if hasattr(a, "__dict__") and (vars(a) or not hasattr(a, "__reduce_ex__")):
        assert_same(vars(a), vars(b), f"{path}.__dict__", seen)
        return
    # Extension types without a __dict__ (trees, Cython losses...): what they pickle to.
    assert_same(_reduced(a), _reduced(b), f"{path}.__reduce__()", seen)


_REFERENCES = (types.FunctionType, types.BuiltinFunctionType, type, np.ufunc)


def _reduced(obj: Any) -> tuple[Any, ...]:
    reduced = obj.__reduce_ex__(5)
    assert isinstance(reduced, tuple), reduced
    return reduced[1:3]  # the arguments and the state; the callable is the type
