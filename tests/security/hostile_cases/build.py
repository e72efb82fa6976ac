"""Base files and builders the hostile case tables share.

Each case is a :class:`Case`: an id, a maker (canary path -> file bytes), the devpersist
errors it may raise, the untrusted names the error must list and the modules that must not
get imported. Makers wrap a payload in a well-formed container (``_hostile``), or edit a
valid file at the byte level; edited files keep a payload in their object graph too
(:func:`armed_file`), so that a loader which skipped a check would run it.
"""

from __future__ import annotations

import functools
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _hostile as H
import numpy as np

import devpersist
from devpersist import UntrustedTypeError

X4 = np.array([[0.0], [1.0], [2.0], [3.0]])
Y4 = np.array([0, 1, 0, 1])


@functools.cache
def small_dict_file() -> bytes:
    return devpersist.dumps({"a": np.arange(3.0)})


@functools.cache
def ridge_file() -> bytes:
    from sklearn.linear_model import Ridge

    return devpersist.dumps(Ridge(alpha=0.5).fit(X4, [1.0, 2.0, 0.0, 3.0]))


@functools.cache
def tree_file() -> bytes:
    from sklearn.tree import DecisionTreeClassifier

    return devpersist.dumps(DecisionTreeClassifier(random_state=0).fit(X4, Y4))


@functools.cache
def hgb_file() -> bytes:
    from sklearn.ensemble import HistGradientBoostingClassifier

    X = np.arange(200.0).reshape(-1, 1)
    model = HistGradientBoostingClassifier(max_iter=2, min_samples_leaf=5, random_state=0)
    return devpersist.dumps(model.fit(X, (np.arange(200) // 10) % 2))


def touch(canary: str) -> str:
    return f"touch {shlex.quote(canary)}"


def with_array(*items: bytes) -> bytes:
    """A list of the fragments, plus array 0 by persistent id."""
    return H.stream(H.EMPTY_LIST, H.MARK, *items, H.integer(0), b"Q", H.APPENDS)


def plain_file(c: str) -> bytes:
    """A valid container whose graph is just ``[array 0]``: for checks made while arrays
    are read, which come after the audit (a payload would be rejected first)."""
    return H.container(with_array(), [np.arange(3.0)])


def armed_file(c: str, **extra: Any) -> bytes:
    """A well-formed container whose graph runs ``os.system(touch canary)`` first."""
    return H.container(with_array(H.shell(touch(c))), [np.arange(3.0)], extra=extra or None)


def two_array_file(c: str) -> bytes:
    graph = H.stream(
        H.EMPTY_LIST, H.MARK, H.shell(touch(c)), H.integer(0), b"Q", H.integer(1), b"Q", H.APPENDS
    )
    return H.container(graph, [np.arange(3.0), np.arange(5.0)])


Maker = Callable[[str], bytes]


def edit(base: Maker, change: Callable[[dict[str, Any]], Any]) -> Maker:
    return lambda c: H.edit_manifest(base(c), change)


def array0(change: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    return lambda m: change(m["arrays"][0])


def setter(**values: Any) -> Callable[[dict[str, Any]], None]:
    return lambda entry: entry.update(values)


# --------------------------------------------------------------------------- the cases


@dataclass
class Case:
    id: str
    make: Callable[[str], bytes]  # canary path -> file bytes
    expect: tuple[type[BaseException], ...]
    untrusted: tuple[tuple[str, str], ...] = ()  # names the error must list
    watch: tuple[str, ...] = ()  # modules that must not get imported
    quiet: bool = False  # ignore warnings during the load (to see the real outcome)


def str_list(*items: str) -> bytes:
    return H.EMPTY_LIST + H.MARK + b"".join(H.text(i) for i in items) + H.APPENDS


def py(c: str) -> str:
    return f"open({c!r}, 'w').close()"


def script(c: str) -> str:
    path = c + "_payload.py"
    Path(path).write_text(py(c) + "\n")
    return path


def ucall(
    module: str,
    name: str,
    make_args: Callable[[str], list[bytes]],
    case_id: str | None = None,
    also: tuple[tuple[str, str], ...] = (),
    watch: tuple[str, ...] = (),
) -> Case:
    def make(c: str) -> bytes:
        return H.container(
            with_array(H.call(H.stack_global(module, name), *make_args(c))), [np.arange(3.0)]
        )

    return Case(
        case_id or f"{module}.{name}", make, (UntrustedTypeError,), ((module, name), *also), watch
    )


def gadget(
    case_id: str,
    fragment: Callable[[str], bytes],
    names: tuple[tuple[str, str], ...],
    watch: tuple[str, ...] = (),
) -> Case:
    return Case(
        case_id,
        lambda c: H.container(with_array(fragment(c)), [np.arange(3.0)]),
        (UntrustedTypeError,),
        names,
        watch,
    )


def hidden(
    case_id: str,
    graph: Callable[[str], bytes],
    names: tuple[tuple[str, str], ...],
    expect: tuple[type[BaseException], ...] = (UntrustedTypeError,),
) -> Case:
    return Case(case_id, lambda c: H.container(graph(c), [np.arange(3.0)]), expect, names)


def root(fragment: bytes) -> bytes:
    """A stream whose root is ``[fragment's object, array 0]``: the object stays reachable."""
    return H.stream(H.EMPTY_LIST, H.MARK, fragment, H.integer(0), b"Q", H.APPENDS)


def tail(*parts: bytes) -> bytes:
    """Leave a benign root that uses array 0, after the parts, and stop."""
    return b"".join(parts) + H.EMPTY_LIST + H.integer(0) + b"Q" + H.APPEND + H.STOP


SG = H.stack_global
T = H.text
