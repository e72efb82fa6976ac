"""Walking an object graph the way pickle sees it, to name attribute paths.

Only used off the fast path: to label arrays in the manifest, to find the estimators
that own them (``_config``) and to say which attribute of a graph cannot be saved.
Objects of array libraries (the registry's modules) are not walked into. The walk is
breadth-first and iterative, with a seen-set, so cycles and deep graphs are fine.
"""

from __future__ import annotations

import types
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from .arrays import array_modules

_ATOMS = (type(None), bool, int, float, complex, str, bytes, bytearray, type, range, slice)
_ATOM_SET = frozenset(_ATOMS)
_LEAVES = _ATOM_SET | {types.FunctionType, types.ModuleType, types.BuiltinFunctionType}
MAX_VISITS = 1_000_000


def _children(obj: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(obj, (list, tuple)):
        for i, item in enumerate(obj):
            if type(item) not in _ATOM_SET:
                yield f"[{i}]", item
        return
    if isinstance(obj, dict):
        for key, value in obj.items():
            if type(value) not in _ATOM_SET:
                yield f"[{key!r}]", value
        return
    if isinstance(obj, (set, frozenset)):
        for item in obj:
            yield "{…}", item
        return
    state = getattr(obj, "__dict__", None)
    if state is None and hasattr(obj, "__getstate__") and not isinstance(obj, type):
        try:
            state = obj.__getstate__()
        except Exception:
            state = None
    if (
        isinstance(state, tuple)
        and len(state) == 2
        and all(part is None or isinstance(part, dict) for part in state)
    ):  # (dict state, slot state)
        state = {**(state[0] or {}), **(state[1] or {})}
    elif isinstance(state, (tuple, list)):
        for i, item in enumerate(state):
            if type(item) not in _ATOM_SET:
                yield f".__getstate__()[{i}]", item
        return
    if isinstance(state, dict):
        for key, value in state.items():
            if type(value) not in _ATOM_SET:
                yield (
                    (f".{key}" if isinstance(key, str) and key.isidentifier() else f"[{key!r}]"),
                    value,
                )


def walk(root: Any, visit: Callable[[str, Any], bool]) -> None:
    """Call ``visit(path, obj)`` breadth-first; stop when it returns True."""
    name = type(root).__name__
    seen = {id(root)}
    queue: deque[tuple[str, Any]] = deque([(name, root)])
    visits = 0
    opaque = array_modules()  # arrays and array machinery: nothing to name inside
    while queue and visits < MAX_VISITS:
        path, obj = queue.popleft()
        visits += 1
        if visit(path, obj):
            return
        tp = type(obj)
        if tp in _LEAVES or tp.__module__.partition(".")[0] in opaque:
            continue
        for label, child in _children(obj):
            if id(child) not in seen:
                seen.add(id(child))
                queue.append((path + label, child))


def array_paths(root: Any, arrays: list[Any], owners: list[Any] | None = None) -> list[str | None]:
    """The attribute path of each array in ``arrays`` (None where not found).

    Arrays reached through the graph by identity get their path directly. Arrays that an
    object's ``__getstate__`` builds on each call (scikit-learn's ``Tree``) are matched,
    by dtype and shape, among the state of their ``owner``: the object pickle was
    reducing when it met them.
    """
    wanted = {id(a): i for i, a in enumerate(arrays)}
    owner_ids = {id(o) for o in owners or () if o is not None}
    owner_paths: dict[int, str] = {}
    found: list[str | None] = [None] * len(arrays)
    remaining = len(wanted)

    def visit(path: str, obj: Any) -> bool:
        nonlocal remaining
        key = id(obj)
        index = wanted.get(key)
        if index is not None and found[index] is None:
            found[index] = path
            remaining -= 1
        if key in owner_ids:
            owner_paths.setdefault(key, path)
        return remaining == 0 and len(owner_paths) == len(owner_ids)

    if wanted:
        walk(root, visit)
    if owners and remaining:
        _match_owned(arrays, owners, owner_paths, found)
    return found


def _match_owned(
    arrays: list[Any], owners: list[Any], owner_paths: dict[int, str], found: list[str | None]
) -> None:
    used: set[tuple[int, str]] = set()
    states: dict[int, list[tuple[str, Any]]] = {}
    for index, (array, owner) in enumerate(zip(arrays, owners)):
        if found[index] is not None or owner is None or id(owner) not in owner_paths:
            continue
        if id(owner) not in states:
            states[id(owner)] = list(_children(owner))
        for label, candidate in states[id(owner)]:
            if (id(owner), label) in used:
                continue
            if getattr(candidate, "shape", None) == getattr(array, "shape", ()) and getattr(
                candidate, "dtype", None
            ) == getattr(array, "dtype", ()):
                found[index] = owner_paths[id(owner)] + label
                used.add((id(owner), label))
                break
        else:
            found[index] = owner_paths[id(owner)] + ".<constructor argument>"


def _why_unpicklable(obj: Any) -> str | None:
    if isinstance(obj, types.FunctionType):
        qualname = obj.__qualname__
        if "<lambda>" in qualname:
            return "lambdas cannot be saved; use a module-level function"
        if "<locals>" in qualname:
            return "functions defined inside another function cannot be saved"
        return None
    if isinstance(obj, types.GeneratorType):
        return "generators cannot be saved"
    if isinstance(obj, (types.ModuleType,)):
        return None
    if isinstance(obj, _ATOMS) or type(obj) in (list, tuple, dict, set, frozenset):
        return None
    try:
        obj.__reduce_ex__(5)
    except Exception as exc:
        return str(exc)
    return None


def find_unpicklable(root: Any) -> tuple[str, Any, str] | None:
    """The first object (breadth-first) that pickle cannot save: path, object, reason."""
    result: list[tuple[str, Any, str]] = []

    def visit(path: str, obj: Any) -> bool:
        reason = _why_unpicklable(obj)
        if reason is not None:
            result.append((path, obj, reason))
            return True
        return False

    walk(root, visit)
    return result[0] if result else None
