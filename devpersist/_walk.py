"""Walking an object graph the way pickle sees it, to name attribute paths.

Place in the data flow: every dump labels its arrays here (:func:`array_paths`, after
pickling, before the arrays are described: the labels go into the manifest); off the
hot path, ``_config`` finds the estimators that own arrays and ``_pickler`` says which
attribute of a graph cannot be saved.
Objects of array libraries (the registry's modules) are not walked into. The walk is
breadth-first and iterative, with a seen-set, so cycles and deep graphs are fine.
"""

from __future__ import annotations

import types
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, TypeAlias

from .arrays import array_modules

_ATOMS = (type(None), bool, int, float, complex, str, bytes, bytearray, type, range, slice)
_ATOM_SET = frozenset(_ATOMS)
_LEAVES = _ATOM_SET | {types.FunctionType, types.ModuleType, types.BuiltinFunctionType}
MAX_VISITS = 1_000_000


# How a child hangs from its parent; the label text is made only for the paths asked for.
_INDEX, _KEY, _MEMBER, _ATTR, _STATE_ITEM = range(5)


def _items(obj: Any) -> list[tuple[int, Any, Any]]:
    """The non-atomic children of ``obj`` as pickle sees them: (kind, key, child)."""
    if isinstance(obj, (list, tuple)):
        return [(_INDEX, i, item) for i, item in enumerate(obj) if type(item) not in _ATOM_SET]
    if isinstance(obj, dict):
        return [(_KEY, k, v) for k, v in obj.items() if type(v) not in _ATOM_SET]
    if isinstance(obj, (set, frozenset)):
        return [(_MEMBER, None, item) for item in obj]
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
        return [
            (_STATE_ITEM, i, item) for i, item in enumerate(state) if type(item) not in _ATOM_SET
        ]
    if isinstance(state, dict):
        return [(_ATTR, k, v) for k, v in state.items() if type(v) not in _ATOM_SET]
    return []


def _label(kind: int, key: Any) -> str:
    if kind == _INDEX:
        return f"[{key}]"
    if kind == _KEY:
        return f"[{key!r}]"
    if kind == _MEMBER:
        return "{…}"
    if kind == _STATE_ITEM:
        return f".__getstate__()[{key}]"
    return f".{key}" if isinstance(key, str) and key.isidentifier() else f"[{key!r}]"


def _children(obj: Any) -> Iterator[tuple[str, Any]]:
    for kind, key, child in _items(obj):
        yield _label(kind, key), child


#: A place in the walk: the root's name, or (parent place, kind, key).
_Place: TypeAlias = "str | tuple[_Place, int, Any] | None"


def _path(place: _Place, made: dict[int, str]) -> str:
    """The text of ``place``; ``made`` keeps the texts of places already made (siblings
    share their parent's)."""
    if not isinstance(place, tuple):
        return str(place)
    text = made.get(id(place))
    if text is None:
        parent, kind, key = place
        text = made[id(place)] = _path(parent, made) + _label(kind, key)
    return text


def _is_leaf(tp: type, opaque: frozenset[str] | set[str]) -> bool:
    return tp in _LEAVES or tp.__module__.partition(".")[0] in opaque


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
        if _is_leaf(type(obj), opaque):
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

    The same breadth-first walk as :func:`walk`, but a path's text is made only for the
    arrays and owners found (most objects visited are neither), a type's leaf verdict is
    looked up once, and an owner's state is kept for the matching instead of asking its
    ``__getstate__`` a second time.
    """
    wanted = {id(a): i for i, a in enumerate(arrays)}
    owner_ids = {id(o) for o in owners or () if o is not None}
    owner_places: dict[int, _Place] = {}
    owner_items: dict[int, list[tuple[int, Any, Any]]] = {}
    places: list[_Place] = [None] * len(arrays)
    remaining = len(wanted)
    if wanted:
        opaque = array_modules()
        leaf: dict[type, bool] = {}
        seen = {id(root)}
        queue: deque[tuple[Any, _Place]] = deque()
        if not _is_leaf(type(root), opaque):
            queue.append((root, type(root).__name__))
        index = wanted.get(id(root))
        if index is not None:
            places[index] = type(root).__name__
            remaining -= 1
        if id(root) in owner_ids:
            owner_places[id(root)] = type(root).__name__
        visits = 0
        # breadth-first, so an object's first place is where it is first met: it is
        # recorded then, and leaves (arrays above all) are never queued
        while queue and visits < MAX_VISITS:
            if remaining == 0 and len(owner_places) == len(owner_ids):
                break
            obj, place = queue.popleft()
            visits += 1
            items = _items(obj)
            if id(obj) in owner_ids:
                owner_items[id(obj)] = items
            for kind, name, child in items:
                key = id(child)
                if key in seen:
                    continue
                seen.add(key)
                tp = type(child)
                is_leaf = leaf.get(tp)
                if is_leaf is None:
                    is_leaf = leaf[tp] = _is_leaf(tp, opaque)
                index = wanted.get(key)
                if index is None and is_leaf and key not in owner_ids:
                    continue
                child_place = (place, kind, name)
                if index is not None:
                    places[index] = child_place
                    remaining -= 1
                if key in owner_ids:
                    owner_places[key] = child_place
                if not is_leaf:
                    queue.append((child, child_place))
    made: dict[int, str] = {}  # the places are alive until the end: ids stay unique
    found: list[str | None] = [None if p is None else _path(p, made) for p in places]
    if owners and remaining:
        _match_owned(arrays, owners, owner_places, owner_items, found, made)
    return found


def _match_owned(
    arrays: list[Any],
    owners: list[Any],
    owner_places: dict[int, _Place],
    owner_items: dict[int, list[tuple[int, Any, Any]]],
    found: list[str | None],
    made: dict[int, str],
) -> None:
    used: set[tuple[int, int]] = set()
    owner_paths: dict[int, str] = {}
    for index, (array, owner) in enumerate(zip(arrays, owners)):
        if found[index] is not None or owner is None or id(owner) not in owner_places:
            continue
        key = id(owner)
        if key not in owner_paths:
            owner_paths[key] = _path(owner_places[key], made)
            if key not in owner_items:  # not walked into (an array library's object)
                owner_items[key] = list(_items(owner))
        shape, dtype = getattr(array, "shape", ()), getattr(array, "dtype", ())
        for position, (kind, name, candidate) in enumerate(owner_items[key]):
            if (key, position) in used:
                continue
            if getattr(candidate, "shape", None) == shape and (
                (got := getattr(candidate, "dtype", None)) is dtype or got == dtype
            ):  # `is` first: comparing structured dtypes is slow
                found[index] = owner_paths[key] + _label(kind, name)
                used.add((key, position))
                break
        else:
            found[index] = owner_paths[key] + ".<constructor argument>"


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
