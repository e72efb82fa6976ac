"""Checking substitutes for library reconstructors a file may call, and the dtype check.

numpy's scalar, dtype and random-state reconstructors would accept anything a file
passes; the allowlist (:mod:`devpersist._rule_table`) maps their names to these
functions, which accept only what numpy itself writes and build the same objects.
:func:`check_dtype` is also the validator of every dtype a load builds
(:mod:`devpersist._validate`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._exceptions import IntegrityError, UntrustedTypeError


def check_dtype(dtype: Any) -> None:
    """Refuse a dtype whose state a file could have rewritten (``dtype(...)`` + BUILD).

    The dtype must be what numpy builds from its own public description: no object
    fields (a field over file bytes is a pointer numpy would follow), fields and
    sub-arrays inside the item, and state (flags, size, alignment, metadata) equal to
    the canonical dtype's.

    Raises
    ------
    IntegrityError
        When the dtype is not one numpy would build.
    """
    import numpy as np

    if not isinstance(dtype, np.dtype):
        raise IntegrityError("the object graph has a malformed numpy dtype")
    try:
        canonical = _canonical_dtype(dtype, top=True)
        same = canonical == dtype and canonical.__reduce__()[2] == dtype.__reduce__()[2]
    except IntegrityError:
        raise
    except Exception:
        same = False
    if not same:
        raise IntegrityError(
            "the object graph holds a numpy dtype whose internal state does not describe "
            "a dtype numpy would build (rewritten fields, offsets, size or flags)"
        )


def _canonical_dtype(dtype: Any, top: bool = False) -> Any:
    import numpy as np

    if dtype.subdtype is not None:
        base, shape = dtype.subdtype
        return np.dtype((_canonical_dtype(base), shape))
    if dtype.names is not None:
        names, formats, offsets, titles = [], [], [], []
        for name in dtype.names:
            field = dtype.fields[name]
            names.append(name)
            formats.append(_canonical_dtype(field[0]))
            offsets.append(field[1])
            titles.append(field[2] if len(field) > 2 else None)
        spec: dict[str, Any] = {
            "names": names, "formats": formats, "offsets": offsets, "itemsize": dtype.itemsize
        }  # fmt: skip
        if any(t is not None for t in titles):
            spec["titles"] = titles
        return np.dtype(spec, align=bool(dtype.isalignedstruct))  # type: ignore[call-overload]
    if dtype.kind == "O" and not top:
        raise IntegrityError("the object graph holds a numpy dtype with an object field")
    return np.dtype(dtype.str)


def numpy_scalar(dtype: Any, data: Any = None) -> Any:
    """numpy's scalar reconstructor, restricted to plain bytes of a non-object dtype."""
    import numpy as np

    check_dtype(dtype)  # the stream may have rewritten it before this use
    if not isinstance(dtype, np.dtype) or dtype.hasobject or not isinstance(data, bytes):
        raise UntrustedTypeError("numpy scalar with an object dtype or non-bytes payload")
    if len(data) != dtype.itemsize:
        raise UntrustedTypeError("numpy scalar payload does not match its dtype size")
    return np._core.multiarray.scalar(dtype, data)  # type: ignore[attr-defined]


def numpy_dtype(obj: Any, align: Any = False, copy: Any = True) -> Any:
    """``numpy.dtype`` as pickle calls it, always returning a fresh copy: the stream may
    then BUILD it, which must never reach numpy's shared builtin dtypes."""
    import numpy as np

    if not isinstance(obj, str) or not isinstance(align, bool) or not isinstance(copy, bool):
        raise IntegrityError("the object graph has a malformed numpy dtype")
    return np.dtype(obj, align, True)


#: The bit generators numpy's random-state reconstructors may name.
BIT_GENERATORS = ("MT19937", "PCG64", "PCG64DXSM", "Philox", "SFC64")


def _bit_generator_class(name: Any) -> Any:
    import numpy.random as npr

    if isinstance(name, type):
        name = name.__name__
    if name not in BIT_GENERATORS:
        raise UntrustedTypeError(f"unknown numpy bit generator {name!r}")
    return getattr(npr, name)


def bit_generator_ctor(name: Any = "MT19937") -> Any:
    """``numpy.random._pickle.__bit_generator_ctor``, for the listed generators only."""
    return _bit_generator_class(name)()


def _bit_generator(arg: Any) -> Any:
    """numpy passes either a bit generator (already rebuilt from the stream) or a name;
    the ``ctor`` callable numpy also passes is ignored, never called."""
    import numpy.random as npr

    if isinstance(arg, npr.BitGenerator):
        return arg
    return bit_generator_ctor(arg)


def randomstate_ctor(name: Any = "MT19937", ctor: Any = None) -> Any:
    """``numpy.random._pickle.__randomstate_ctor`` (``ctor`` is never called)."""
    import numpy.random as npr

    return npr.RandomState(_bit_generator(name))


def generator_ctor(name: Any = "PCG64", ctor: Any = None) -> Any:
    """``numpy.random._pickle.__generator_ctor`` (``ctor`` is never called)."""
    import numpy.random as npr

    return npr.Generator(_bit_generator(name))


def checked(func: Callable[..., Any]) -> Callable[[], Any]:
    """A resolver returning ``func`` itself (the substitute stands in for the name)."""
    return lambda: func
