"""What ``devpersist diff`` compares beyond the manifest: every non-array value of the
object graph (an estimator's hyperparameters and fitted attributes), read without
importing or building anything from the file.

The graph is first audited (:func:`devpersist._audit.audit`: limits, validity), then
replayed by the same inert replay (:mod:`devpersist._replay`, traced nodes that keep
what each part was); arrays stay placeholders (the manifest's checksums compare
them). Only numpy scalars and dtypes are decoded, from their bytes, to print
``1.5`` rather than a record. So a file with untrusted types can be diffed too.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from ._audit import said
from ._exceptions import FormatError, printable
from ._replay import ARRAY_ORIGIN, Node, Traced, label
from ._replay import replay as _replay

#: Longest value shown in a line of the diff.
MAX_SHOWN = 80
#: Values visited per file at most (the audit bounds the graph already).
MAX_VALUES = 1_000_000


class _Node:
    """A replayed call, shown: its name, arguments, and what BUILD/APPEND/SETITEM added
    (read from a :class:`devpersist._replay.Traced` node)."""

    def __init__(self, node: Traced) -> None:
        self.name = label(type(node).origin)
        args, kwargs, *rest = node.parts
        self.args: tuple[Any, ...] = args
        self.kwargs: dict[str, Any] = kwargs
        self.state: Any = None
        self.items: list[Any] = []
        self.mapping: dict[Any, Any] = {}
        parts = iter(rest)
        for op in node.ops:
            if op == "state":
                self.state = next(parts)
            elif op == "item":
                self.items.append(next(parts))
            elif op == "items":
                self.items.extend(next(parts))
            else:  # "set": key, value
                key = next(parts)
                self.mapping[key] = next(parts)


def replay(graph: bytes) -> Any:
    """The audited ``graph`` as replayed nodes, plain values and array placeholders."""
    try:
        return _replay(graph, node=Traced)[0]
    except Exception as exc:  # audited already: a stream only real objects could build
        raise FormatError(f"the object graph cannot be compared: {said(exc)}") from exc


_DTYPE_CODE = re.compile(r"[<>=|]?[biufc][1-9][0-9]?")
_NUMPY_SCALARS = {"numpy._core.multiarray.scalar", "numpy.core.multiarray.scalar"}


def _numpy_value(node: _Node) -> Any:
    """A numpy scalar or dtype, decoded from its recorded arguments (numpy is a core
    dependency and these two are on the default allowlist); None if not one."""
    import numpy as np

    try:
        if node.name == "numpy.dtype" and node.args and isinstance(node.args[0], str):
            code = node.args[0]
            return np.dtype(code) if _DTYPE_CODE.fullmatch(code) else None
        if node.name in _NUMPY_SCALARS and len(node.args) == 2:
            dtype, data = node.args
            dtype = _shown(dtype)
            if isinstance(dtype, _Node) and isinstance(data, bytes):
                kind = _numpy_value(dtype)
                if (
                    isinstance(kind, np.dtype)
                    and kind.kind in "biufc"
                    and len(data) == kind.itemsize
                ):
                    return np.frombuffer(data, dtype=kind)[0].item()
    except (TypeError, ValueError):
        return None
    return None


def _entry(kind: str, text: str) -> tuple[str, str, str]:
    """``(kind, shown, compared)``: values are compared in full, shown shortened."""
    text = printable(text)
    shown = text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 1] + "…"
    compared = (
        text if len(text) <= 256 else hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()
    )
    return kind, shown, compared


def flatten(root: Any) -> dict[str, tuple[str, str, str]]:
    """``{path: (kind, shown value)}`` for every non-array value under ``root``; kind is
    ``"parameter"`` for a scikit-learn estimator's constructor parameters (public
    attributes without a trailing underscore), else ``"attribute"``."""
    out: dict[str, tuple[str, str, str]] = {}
    seen: set[int] = set()
    root = _shown(root)
    root_name = (
        printable(root.name.rpartition(".")[2]) if isinstance(root, _Node) else type(root).__name__
    )
    stack: list[tuple[str, Any, str]] = [(root_name, root, "attribute")]
    while stack and len(out) < MAX_VALUES:
        path, raw, kind = stack.pop()
        if isinstance(raw, Node) and type(raw).origin == ARRAY_ORIGIN:
            continue  # compared through the manifest's checksums
        if isinstance(raw, type) and issubclass(raw, Node):
            out[path] = _entry(kind, label(raw.origin))  # a global kept as a value
            continue
        if id(raw) in seen:
            out[path] = _entry(kind, "<shared>")
            continue
        obj = _shown(raw)
        if isinstance(obj, _Node):
            value = _numpy_value(obj)
            if value is not None:
                out[path] = _entry(kind, repr(value))
                continue
        if not isinstance(obj, (_Node, list, tuple, dict, set, frozenset)):
            out[path] = _entry(kind, repr(obj))
            continue
        seen.add(id(raw))
        stack.extend(reversed(list(_children(path, obj, out, kind))))
    return out


def _shown(obj: Any) -> Any:
    return _Node(obj) if isinstance(obj, Traced) else obj


def _children(
    path: str, obj: Any, out: dict[str, tuple[str, str, str]], kind: str
) -> list[tuple[str, Any, str]]:
    if isinstance(obj, (set, frozenset)):
        out[path] = _entry(kind, repr(sorted(map(repr, obj))))
        return []
    if isinstance(obj, (list, tuple)):
        out[path] = _entry(kind, f"{type(obj).__name__} of {len(obj)}")
        return [(f"{path}[{i}]", item, kind) for i, item in enumerate(obj)]
    if isinstance(obj, dict):
        out[path] = _entry(kind, f"dict of {len(obj)}")
        return [(f"{path}[{key!r}]", value, kind) for key, value in obj.items()]
    out[path] = _entry(kind, obj.name)
    found: list[tuple[str, Any, str]] = []
    found += [(f"{path}({i})", arg, "attribute") for i, arg in enumerate(obj.args)]
    found += [(f"{path}({k}=)", arg, "attribute") for k, arg in obj.kwargs.items()]
    state = obj.state
    if (
        isinstance(state, tuple)
        and len(state) == 2
        and all(s is None or isinstance(s, dict) for s in state)
    ):
        state = {**(state[0] or {}), **(state[1] or {})}  # (dict state, slot state)
    if isinstance(state, dict):
        estimator = "_sklearn_version" in state  # scikit-learn's __getstate__ adds it
        for key, value in state.items():
            label = f".{key}" if isinstance(key, str) and key.isidentifier() else f"[{key!r}]"
            public = isinstance(key, str) and not key.startswith("_") and not key.endswith("_")
            found.append(
                (path + label, value, "parameter" if estimator and public else "attribute")
            )
    elif state is not None:
        found.append((f"{path}.__setstate__()", state, "attribute"))
    found += [(f"{path}[{i}]", item, "attribute") for i, item in enumerate(obj.items)]
    found += [(f"{path}[{k!r}]", v, "attribute") for k, v in obj.mapping.items()]
    return found


_NUMBER = re.compile(r"(\d+)")


def natural_key(text: str) -> list[tuple[int, int] | tuple[int, str]]:
    """Sort key placing ``estimators_[2]`` before ``estimators_[100]``."""
    return [(0, int(part)) if part.isdigit() else (1, part) for part in _NUMBER.split(text)]


def _is_below(path: str, parent: str) -> bool:
    return path.startswith(parent) and path[len(parent) : len(parent) + 1] in (".", "[", "(")


def compare(
    a: dict[str, tuple[str, str, str]], b: dict[str, tuple[str, str, str]], names: tuple[str, str]
) -> list[str]:
    """Lines describing what differs between two :func:`flatten` results: parameters
    first, then attributes, each in natural order; a value present on one side only is
    reported once, at its topmost path."""
    lines: dict[str, list[str]] = {"parameter": [], "attribute": []}
    only: list[str] = []
    for path in sorted(set(a) | set(b), key=natural_key):
        va, vb = a.get(path), b.get(path)
        if va is not None and vb is not None:
            if va[2] != vb[2]:
                lines[va[0]].append(f"{va[0]} {path}: {va[1]} -> {vb[1]}")
            continue
        if any(_is_below(path, parent) for parent in only[-64:]):
            continue
        only.append(path)
        kind, shown, _ = va or vb  # type: ignore[misc]
        side = names[0] if va is not None else names[1]
        lines[kind].append(f"{kind} {path}: only in {side} ({shown})")
    return lines["parameter"] + lines["attribute"]
