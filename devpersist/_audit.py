"""The audit: what a stream would do, with resource limits, before anything is built.

Step 2 of a load (parse -> **audit** -> resolve -> place -> read -> construct). The
opcode pre-pass (:func:`devpersist._opcodes.precheck`) bounds what the C unpickler may
spend; then the stream is replayed inertly (:mod:`devpersist._replay`), so every global
it can reach is known, with which it calls and whose results it modifies, while nothing
real is imported or built. A name computed at run time cannot get past it:
``STACK_GLOBAL`` on anything but a literal string fails in the replay. Last, the limits
walk (:func:`check_shape`) bounds the nesting and the size of the graph with shared
references expanded. The allowlist (:mod:`devpersist._safety`) then judges the record.
"""

from __future__ import annotations

from typing import Any

from ._exceptions import FormatError, IntegrityError, ResourceLimitError, printable
from ._opcodes import precheck
from ._replay import ARRAY_ORIGIN, Record, replay

#: Safety limit for the audit: the longest chain of nested containers.
MAX_DEPTH = 200
#: Limits on the audited graph: the size of the graph with every shared reference
#: expanded (what ``repr`` or ``np.asarray`` of it would walk: a "billion laughs" of
#: nested shared lists is 700 bytes of pickle).
MAX_EXPANDED = 10_000_000

#: What :func:`audit` returns (the names, calls and modifications of a stream).
Audit = Record


def said(exc: BaseException) -> str:
    """An exception's message for ours: it may quote file data, so escaped and cut."""
    text = printable(str(exc))
    return text if len(text) <= 300 else text[:297] + "..."


def audit(data: bytes, n_arrays: int, limits: bool = True) -> Record:
    """Audit a stream without importing or building anything real.

    Parameters
    ----------
    data : bytes
        The object graph's pickle stream.
    n_arrays : int
        How many arrays the container holds (every one must be used, none other).
    limits : bool
        Check resource limits (off only for a stream devpersist just wrote).

    Returns
    -------
    Record
        Every global the stream names, which it calls, which results it modifies.

    Raises
    ------
    FormatError, IntegrityError, ResourceLimitError
        A malformed stream, or one past a limit.
    """
    if limits:
        precheck(data)  # before the C unpickler spends what the stream asks for
    try:
        root, result, consumed = replay(data, n_arrays)
    except (FormatError, ResourceLimitError):
        raise
    except RecursionError as exc:
        raise ResourceLimitError("the object graph is nested too deeply (limit MAX_DEPTH)") from exc
    except MemoryError as exc:
        raise ResourceLimitError("the object graph needs too much memory") from exc
    except Exception as exc:
        raise IntegrityError(f"the object graph is not a valid stream: {said(exc)}") from exc
    if consumed != len(data):
        raise IntegrityError("bytes follow the end of the object graph's stream")
    if result.pids != set(range(n_arrays)):
        raise IntegrityError("the manifest lists arrays the object graph never uses")
    if ARRAY_ORIGIN in result.modified:
        raise FormatError("the object graph modifies an array after loading it")
    if limits:
        check_shape(root, frozenset(result.stub_types))
    return result


def scan(data: bytes, n_arrays: int) -> set[tuple[str, str]]:
    """The globals a stream names (see :func:`audit`)."""
    return audit(data, n_arrays).names


_CONTAINERS = frozenset({list, tuple, set, frozenset, dict})


def _too_big() -> ResourceLimitError:
    return ResourceLimitError(
        f"the object graph expands to more than {MAX_EXPANDED} objects "
        "(shared references nested in shared references; limit MAX_EXPANDED)"
    )


#: An empty container's expansion (itself) and depth.
_EMPTY = (1, 1)


class Undecided(Exception):
    """The quick walk cannot settle a graph: the reference walk decides."""


def check_shape(root: Any, stub_types: frozenset[type] = frozenset()) -> None:
    """Longest nesting chain and expanded size, over the shared graph.

    The quick walk (:func:`acyclic_shape`) settles graphs without cycles within the
    limits, which is every model seen so far; anything else (a cycle, a limit reached,
    Python's recursion limit) goes to the reference walk (:func:`check_shape_walk`),
    which decides and words the error. On a graph without cycles the two compute the same
    totals: a container's expansion and depth do not depend on the order its children
    are visited in, and the reference walk only treats a child differently when it is
    still being walked, which is a cycle.

    Raises
    ------
    ResourceLimitError
        Deeper than :data:`MAX_DEPTH` or larger than :data:`MAX_EXPANDED`.
    """
    try:
        acyclic_shape(root, _CONTAINERS | stub_types)
    except (Undecided, RecursionError):
        check_shape_walk(root, stub_types)


def acyclic_shape(root: Any, containers: frozenset[type]) -> tuple[int, int]:
    """Expanded size and depth by recursion with memoised totals (about twice the speed
    of the explicit stack); raises :class:`Undecided` on a cycle or a limit reached.
    Recursion stops at :data:`MAX_DEPTH` + 1 levels, well inside Python's limit.
    Returns the root's ``(expanded size, depth)``, ``(0, 0)`` for a non-container."""
    plain = _CONTAINERS
    known: dict[int, tuple[int, int]] = {}
    path: set[int] = set()
    settled = known.get

    def visit(obj: Any, tp: type, level: int) -> tuple[int, int]:
        if tp is dict:
            total, items = 2 * len(obj) + 1, (*obj.values(), *obj)
        elif tp in plain:
            total, items = len(obj) + 1, obj
        else:
            items = obj.parts
            total = len(items) + 1
        key = id(obj)
        path.add(key)
        deepest = 0
        for child in items:
            ctp = type(child)
            if ctp in containers:
                found = settled(id(child))
                if found is None:
                    if not (child if ctp in plain else child.parts):
                        found = _EMPTY  # no items (array placeholders, empty arguments)
                    elif id(child) in path or level > MAX_DEPTH:
                        raise Undecided
                    else:
                        found = visit(child, ctp, level + 1)
                total += found[0] - 1
                if found[1] > deepest:
                    deepest = found[1]
        path.discard(key)
        if total > MAX_EXPANDED or deepest >= MAX_DEPTH:
            raise Undecided
        known[key] = result = (total, deepest + 1)
        return result

    tp = type(root)
    return visit(root, tp, 1) if tp in containers else (0, 0)


def check_shape_walk(root: Any, stub_types: frozenset[type] = frozenset()) -> tuple[int, int]:
    """Longest nesting chain and expanded size, over the shared graph (no recursion).

    A post-order walk computes, for each container, the size of its expansion (its own
    items, plus each container child's expansion) and the depth below it, once per
    distinct object; a reference back to an object still being walked (a cycle) counts
    as a leaf. Containers without container children (most: argument tuples, empty
    keyword dicts, array placeholders) are settled as soon as they are met. The loop is
    written flat (no helper calls per object): it is the audit's main cost on graphs of
    many small objects (a forest).

    Returns
    -------
    tuple of int
        The root's ``(expanded size, depth)``; ``(0, 0)`` for a non-container.

    Raises
    ------
    ResourceLimitError
        Deeper than :data:`MAX_DEPTH` or larger than :data:`MAX_EXPANDED`.
    """
    plain = _CONTAINERS
    containers = plain | stub_types
    if type(root) not in containers:
        return 0, 0
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    active: set[int] = set()
    stack: list[tuple[Any, Any]] = [(root, None)]
    pop, push, settled = stack.pop, stack.append, size.get
    while stack:
        obj, children = pop()
        key = id(obj)
        if children is not None:  # all children done: this container's totals
            tp = type(obj)
            total = (
                2 * len(obj) + 1
                if tp is dict
                else len(obj) + 1
                if tp in plain
                else len(obj.parts) + 1
            )
            deepest = 0
            for child in children:
                ck = id(child)
                found = settled(ck)
                if found is not None:
                    total += found - 1
                    if depth[ck] > deepest:
                        deepest = depth[ck]
            size[key], depth[key] = total, deepest + 1
            active.discard(key)
            if total > MAX_EXPANDED:
                raise _too_big()
            if deepest >= MAX_DEPTH:
                raise ResourceLimitError(
                    f"the object graph nests deeper than {MAX_DEPTH} levels (limit MAX_DEPTH)"
                )
            continue
        if key in size or key in active:
            continue
        tp = type(obj)
        if tp is dict:
            children = [c for c in (*obj.values(), *obj) if type(c) in containers]
        elif tp in plain:
            children = [c for c in obj if type(c) in containers]
        else:
            children = [c for c in obj.parts if type(c) in containers]
        if not children:  # settled now: the totals the post-order step would give
            total = size[key] = (
                2 * len(obj) + 1
                if tp is dict
                else len(obj) + 1
                if tp in plain
                else len(obj.parts) + 1
            )
            depth[key] = 1
            if total > MAX_EXPANDED:
                raise _too_big()
            continue
        active.add(key)
        push((obj, children))
        for child in children:
            ck = id(child)
            if ck not in size and ck not in active:
                push((child, None))
    return size[id(root)], depth[id(root)]
