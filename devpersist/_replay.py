"""One inert replay of a pickle stream: every global becomes a record of its name.

The audit (:mod:`devpersist._audit`), ``devpersist diff`` (:mod:`devpersist._diff`) and
the allowlist generator (:mod:`devpersist._derive`) all need to know what a stream
*would* do without importing or building anything it names. :class:`Replay` is the one
unpickler that does it: ``find_class`` returns, for each name, a :class:`Node` subclass
whose ``origin`` is the name; calling it (REDUCE, NEWOBJ) records the call and builds a
node holding the arguments; BUILD, SETITEM, APPEND and ADDITEMS on a node record that
its result was modified and keep what was added (``parts``, which the limits walk
follows). Arrays (persistent ids) become nodes of :data:`ARRAY_ORIGIN`.

What the stream did is gathered in a :class:`Record`. Node classes are shared between
replays (one per name, cached), so nodes find the replay in progress through a context
variable.
"""

from __future__ import annotations

import contextvars
import io
import pickle
from typing import Any

from ._exceptions import FormatError

Name = tuple[str, str]
#: The origin of array placeholders.
ARRAY_ORIGIN: Name = ("<array>", "<out of band>")


class Record:
    """What a stream does: the globals it names, calls, and whose results it modifies."""

    __slots__ = ("called", "called_results", "modified", "names", "pids", "stub_types")

    def __init__(self) -> None:
        self.names: set[Name] = set()
        self.called: set[Name] = set()
        self.modified: set[Name] = set()
        self.called_results: set[Name] = set()
        self.pids: set[Any] = set()
        self.stub_types: set[type] = set()


RECORD: contextvars.ContextVar[Record] = contextvars.ContextVar("devpersist_replay")


class Node:
    """Stands in for what a global builds (each global gets its own subclass).

    ``parts`` holds the call's positional and keyword arguments, then each thing BUILD,
    APPEND, ADDITEMS or SETITEM added, in order.
    """

    __slots__ = ("parts",)
    parts: list[Any]
    origin: Name = ("", "")  # set on each subclass

    def __new__(cls, *args: Any, **kwargs: Any) -> Node:  # NEWOBJ calls __new__ only
        self = object.__new__(cls)
        self.parts = [args, kwargs]
        RECORD.get().called.add(cls.origin)
        return self

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # recorded, not raised, so the replay still sees every name the stream refers to
        record = RECORD.get()
        record.called_results.add(type(self).origin)
        cls = node_class(type(self), ("<result of>", label(type(self).origin)))
        record.stub_types.add(cls)
        return cls(*args, **kwargs)

    def _add(self, op: str, *values: Any) -> None:
        RECORD.get().modified.add(type(self).origin)
        self.parts.extend(values)

    def __setstate__(self, state: Any) -> None:
        self._add("state", state)

    def append(self, item: Any) -> None:
        self._add("item", item)

    def extend(self, items: Any) -> None:
        self._add("items", items)

    def add(self, item: Any) -> None:
        self._add("item", item)

    def __setitem__(self, key: Any, value: Any) -> None:
        self._add("set", key, value)


class Traced(Node):
    """A :class:`Node` that also keeps what each part was (``ops``: ``"state"``,
    ``"item"``, ``"items"``, ``"set"``), for showing a graph (``devpersist diff``)."""

    __slots__ = ("ops",)
    ops: list[str]

    def __new__(cls, *args: Any, **kwargs: Any) -> Traced:
        self: Traced = super().__new__(cls, *args, **kwargs)  # type: ignore[assignment]
        self.ops = []
        return self

    def _add(self, op: str, *values: Any) -> None:
        super()._add(op, *values)
        self.ops.append(op)


def label(origin: Name) -> str:
    """A node origin as ``"module.qualname"``."""
    return ".".join(origin)


_classes: dict[tuple[type, Name], type] = {}


def node_class(base: type, origin: Name) -> type:
    """The (cached) node class of ``origin`` (bounded: names come from files)."""
    cls = _classes.get((base, origin))
    if cls is None:
        cls = type(base.__name__, (base,), {"__slots__": (), "origin": origin})
        if len(_classes) < 4096:
            _classes[(base, origin)] = cls
    return cls


class Replay(pickle.Unpickler):
    """Replays a stream into nodes (see the module docstring). With ``n_arrays``, a
    persistent id outside ``range(n_arrays)`` is a :class:`FormatError`."""

    def __init__(self, stream: io.BytesIO, record: Record, n_arrays: int | None = None,
                 node: type[Node] = Node) -> None:  # fmt: skip
        super().__init__(stream)
        self.record = record
        self._node = node
        self._n_arrays = n_arrays
        self._array = node_class(node, ARRAY_ORIGIN)
        record.stub_types.add(self._array)

    def find_class(self, module: str, name: str) -> Any:
        origin = (module, name)
        self.record.names.add(origin)
        cls = node_class(self._node, origin)
        self.record.stub_types.add(cls)
        return cls

    def persistent_load(self, pid: Any) -> Any:
        if self._n_arrays is not None and (type(pid) is not int or not 0 <= pid < self._n_arrays):
            raise FormatError(f"the object graph refers to array {pid!r}, which the file lacks")
        self.record.pids.add(pid)
        stub: Any = object.__new__(self._array)
        stub.parts = []
        if self._node is Traced:
            stub.ops = []
        return stub


def replay(data: bytes, n_arrays: int | None = None, node: type[Node] = Node
           ) -> tuple[Any, Record, int]:  # fmt: skip
    """Replay ``data``: ``(root node or value, record, bytes consumed)``. Exceptions of
    the stream (malformed, too deep) propagate to the caller, which words them."""
    record = Record()
    stream = io.BytesIO(data)
    token = RECORD.set(record)
    try:
        root = Replay(stream, record, n_arrays, node).load()
    finally:
        RECORD.reset(token)
    return root, record, stream.tell()
