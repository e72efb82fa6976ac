"""Hostile state for trusted types: dtypes, ufuncs, classes and functions are immutable
to a file.

``numpy.dtype`` objects can be modified after creation: pickle itself writes
``dtype(...)`` then BUILD for structured and non-native dtypes, so BUILD cannot simply be
forbidden. A file could BUILD a dtype whose object field lies over file bytes (``repr``
of a scalar of it followed a pointer from the file: a segfault), or whose field lies
past the item. Loads run in a child process, so a crash is a failed test, not a dead
test run; each loaded object is then ``repr``-ed, which is what crashed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import _hostile as H
import numpy as np
import pytest

NEWTRUE, NEWFALSE = b"\x88", b"\x89"


def _tuple(*items: bytes) -> bytes:
    return H.MARK + b"".join(items) + H.TUPLE


def dtype(base: str, state: bytes | None = None) -> bytes:
    """``numpy.dtype(base, False, True)``, then BUILD ``state`` (pickle's own form)."""
    made = H.call(H.stack_global("numpy", "dtype"), H.text(base), NEWFALSE, NEWTRUE)
    return made + (state + H.BUILD if state is not None else b"")


def state(byteorder: str, sub: bytes, names: bytes, fields: bytes, size: int, align: int,
          flags: int) -> bytes:  # fmt: skip
    return _tuple(H.integer(3), H.text(byteorder), sub, names, fields, H.integer(size),
                  H.integer(align), H.integer(flags))  # fmt: skip


def fields(**items: tuple[bytes, int]) -> bytes:
    body = b"".join(H.text(k) + _tuple(d, H.integer(off)) for k, (d, off) in items.items())
    return H.EMPTY_DICT + H.MARK + body + H.SETITEMS


def names(*items: str) -> bytes:
    return _tuple(*(H.text(n) for n in items))


OBJECT = dtype("O8", state("|", H.NONE, H.NONE, H.NONE, -1, -1, 63))
F8 = dtype("f8", state("<", H.NONE, H.NONE, H.NONE, -1, -1, 0))

#: The issue's dtype: one object field at offset 0 of an 8-byte void, flags without
#: "has object" (16: needs the Python API), so numpy's own hasobject check passes.
OBJECT_FIELD = dtype("V8", state("|", H.NONE, names("a"), fields(a=(OBJECT, 0)), 8, 1, 16))
PAST_THE_ITEM = dtype("V8", state("|", H.NONE, names("a"), fields(a=(F8, 4096)), 8, 1, 16))
OVERLAPPING_SIZE = dtype("V8", state("|", H.NONE, names("a"), fields(a=(F8, 0)), 2, 1, 16))
OBJECT_SUBARRAY = dtype(
    "V8", state("|", _tuple(OBJECT, _tuple(H.integer(1))), H.NONE, H.NONE, 8, 8, 63)
)
FLAGS_ONLY = dtype("f8", state("<", H.NONE, H.NONE, H.NONE, -1, -1, 63))


def scalar(dt: bytes, data: bytes) -> bytes:
    return H.call(H.stack_global("numpy._core.multiarray", "scalar"), dt, H.binbytes(data))


def in_list(*items: bytes) -> bytes:
    return H.stream(H.EMPTY_LIST, H.MARK, *items, H.integer(0), b"Q", H.APPENDS)


def ridge_with_alpha(value: bytes) -> bytes:
    ridge = H.stack_global("sklearn.linear_model._ridge", "Ridge")
    made = ridge + H.EMPTY_TUPLE + H.NEWOBJ
    state_ = H.EMPTY_DICT + H.MARK + H.text("alpha") + value + H.SETITEMS
    return H.stream(H.EMPTY_LIST, H.MARK, made + state_ + H.BUILD, H.integer(0), b"Q", H.APPENDS)


def build_on(module: str, name: str, state_: bytes) -> bytes:
    return in_list(H.stack_global(module, name) + state_ + H.BUILD)


SLOTSTATE = _tuple(H.NONE, H.EMPTY_DICT + H.MARK + H.text("__doc__") + H.text("x") + H.SETITEMS)
DICTSTATE = H.EMPTY_DICT + H.MARK + H.text("identity") + H.text("x") + H.SETITEMS

CASES = {
    "scalar of a dtype with an object field": in_list(scalar(OBJECT_FIELD, b"AAAAAAAA")),
    "Ridge.alpha as that scalar": ridge_with_alpha(scalar(OBJECT_FIELD, b"AAAAAAAA")),
    "scalar of a dtype whose field is past the item": in_list(scalar(PAST_THE_ITEM, bytes(8))),
    "scalar of a dtype smaller than its field": in_list(scalar(OVERLAPPING_SIZE, bytes(2))),
    "dtype with an object field, returned": in_list(OBJECT_FIELD),
    "dtype with a field past the item, returned": in_list(PAST_THE_ITEM),
    "dtype with an object sub-array": in_list(OBJECT_SUBARRAY),
    "float64 dtype claiming object flags": in_list(FLAGS_ONLY),
    "BUILD on a numpy ufunc": build_on("numpy", "log1p", DICTSTATE),
    "BUILD with slot state on a scipy.special ufunc": build_on(
        "scipy.special._special_ufuncs", "expit", SLOTSTATE
    ),
    "BUILD on an estimator class": build_on("sklearn.linear_model._ridge", "Ridge", DICTSTATE),
    "BUILD on the numpy.dtype class": build_on("numpy", "dtype", DICTSTATE),
    "BUILD on a metric function": build_on(
        "sklearn.metrics._classification", "accuracy_score", SLOTSTATE
    ),
    "SETITEM on a ufunc": in_list(
        H.stack_global("numpy", "exp") + H.text("k") + H.text("v") + H.SETITEM
    ),
    "APPEND on a class": in_list(H.stack_global("builtins", "list") + H.text("v") + H.APPEND),
    "BUILD on a builtin type": build_on("builtins", "set", SLOTSTATE),
}

CHILD = textwrap.dedent(
    """
    import json, sys
    import devpersist
    cases = json.loads(sys.argv[1])
    for case_id, path in cases:
        try:
            loaded = devpersist.load(path)
            outcome = "loaded: " + repr(loaded)[:200]  # what segfaulted
        except devpersist.DevpersistError as exc:
            outcome = type(exc).__name__
        except BaseException as exc:
            outcome = "escaped " + type(exc).__name__ + ": " + str(exc)[:200]
        print(json.dumps([case_id, outcome]), flush=True)
    """
)


def _files(tmp_path: Path, cases: dict[str, bytes]) -> list[tuple[str, str]]:
    out = []
    for i, (case_id, graph) in enumerate(cases.items()):
        path = tmp_path / f"case{i}.dvp"
        path.write_bytes(H.container(graph, [np.arange(3.0)]))
        out.append((case_id, str(path)))
    return out


def _run(tmp_path: Path, cases: dict[str, bytes]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SCIPY_ARRAY_API"}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(_files(tmp_path, cases))],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,  # not the checkout: the child imports devpersist from PYTHONPATH
        check=False,
    )
    report = dict(json.loads(line) for line in proc.stdout.splitlines() if line.startswith("["))
    done = set(report)
    crashed = [c for c in cases if c not in done]
    assert proc.returncode == 0, (
        f"the child died (code {proc.returncode}) at {crashed[:1]}: {proc.stderr[-2000:]}"
    )
    return report


def test_mutable_internals_of_trusted_types_are_refused_without_a_crash(tmp_path: Path):
    report = _run(tmp_path, CASES)
    wrong = {c: o for c, o in report.items() if o not in ("IntegrityError", "UntrustedTypeError")}
    assert not wrong, wrong


@pytest.mark.parametrize(
    "value",
    [
        np.dtype([("a", "<f8"), ("b", ">i4")]),
        np.dtype([("a", "<f8"), ("b", "u1")], align=True),
        np.dtype(
            {
                "names": ["a", "b"],
                "formats": ["<i2", "<f4"],
                "offsets": [8, 0],
                "itemsize": 16,
                "titles": ["A", None],
            }
        ),
        np.dtype([("a", "<f8", (2, 3)), ("n", [("x", "<i4"), ("y", "S3")])]),
        np.dtype(">c16"),
        np.dtype("M8[ns]"),
        np.dtype("<m8[3D]"),
        np.dtype("<U5"),
        np.dtype("V7"),
        np.dtype(("<f4", (2,))),
        np.dtype(object),
    ],
    ids=str,
)
def test_dtypes_pickle_builds_still_load(value: np.dtype):
    """The check admits every dtype numpy itself writes with BUILD (and its scalars)."""
    import devpersist

    loaded = devpersist.loads(devpersist.dumps({"d": value}))["d"]
    assert loaded == value and loaded.__reduce__() == value.__reduce__()
    assert loaded is not value and (loaded.fields or {}) == (value.fields or {})
    if not value.hasobject and value.subdtype is None:
        item = np.zeros(1, dtype=value)[0]
        again = devpersist.loads(devpersist.dumps([item]))[0]
        assert type(again) is type(item) and again.dtype == item.dtype
        assert again.tobytes() == item.tobytes()
