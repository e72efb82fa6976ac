"""A pre-pass over the object graph's pickle opcodes: resources bounded before they are spent.

The audit (:func:`devpersist._graph.audit`) runs the stream through CPython's C
unpickler, which trusts the stream's own numbers: ``LONG_BINPUT 2**30`` makes it grow
its memo table to 2**30 slots (16 GiB) for a 5-byte opcode, a set of integers that are
equal modulo 2**61 - 1 (they share a ``hash()``) takes quadratic time to fill, and a
megabyte of ``EMPTY_SET`` opcodes builds a million sets. This module walks the opcodes
first, without building anything, with an abstract stack that knows only what each
item is (a number and its value, text, a container, or something a call returns), and
refuses a stream that would break one of the limits below (``ResourceLimitError``,
naming the limit).

Two implementations give the same verdicts, exception classes and messages: the walker
below (the reference: table-driven, about 1 µs per opcode) and ``devpersist._opscan``,
the same walk in C (``_opscan.c``), an optional extension that ``pip install`` builds
where a C compiler exists. :func:`precheck` uses the compiled one when it was built,
unless the environment variable ``DEVPERSIST_PURE_PYTHON`` is set (to anything but
``0``) when this module is first imported; :data:`IMPLEMENTATIONS` names those
available (the tests run both).

Hash floods. A set or dict whose keys share one ``hash()`` fills in quadratic time.
``str`` and ``bytes`` hashes are randomised per process (SipHash, ``PYTHONHASHSEED``),
so a file cannot choose colliding ones; a tuple holding one is as unpredictable. The
hashes of ``int``, ``float``, ``bool``, ``None`` and tuples of them are fixed
functions of the value that anyone can invert (integers are reduced modulo 2**61 - 1;
a tuple's hash is an invertible mix of its items' hashes), so the walker computes them
and refuses a container holding more than :data:`MAX_SHARED_HASH` distinct such values
with one hash (a real model has at most a handful of equal-hash values in one list:
``-1`` and ``-2`` share one). Objects that calls return (numpy scalars, ``Decimal``,
``Fraction``) have value-derived hashes the walker cannot compute: a set or dict may
hold at most :data:`MAX_OPAQUE_KEYS` of them as keys, and so may a list or tuple passed
directly to a call (``collections.Counter(list)`` hashes its argument).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from typing import Any

from ._exceptions import FormatError, IntegrityError, ResourceLimitError

#: Objects (containers and call results) a stream may create: at least this many...
MIN_OBJECT_BUDGET = 100_000
#: ...and otherwise one per this many bytes of stream (a 500-tree forest creates one
#: per 17 bytes; a flood of 1-byte ``EMPTY_SET`` opcodes one per byte). Sets, frozensets
#: and dicts count twice (they are about four times the size of a list).
BYTES_PER_OBJECT = 8
#: Distinct numeric keys (int, float, bool, tuples of them) one container may hold with
#: the same ``hash()``.
MAX_SHARED_HASH = 8
#: Keys of a set or dict (and items of a list or tuple passed to a call) whose hash the
#: walker cannot compute: objects a call returned.
MAX_OPAQUE_KEYS = 1_000
#: The longest chain of nested tuples (hashing one recurses in C).
MAX_TUPLE_DEPTH = 200


class _Opaque:
    """Something whose hash the walker cannot compute (a call's result, a global)."""

    __slots__ = ()


class _Text:
    """A str or bytes: its hash is randomised per process."""

    __slots__ = ()


OPAQUE: _Opaque = _Opaque()
TEXT: _Text = _Text()


class _Big:
    """An integer of more than 8 bytes (``LONG1``/``LONG4``), with its hash and token
    computed once: both take time linear in its size, and the memo may hand the same
    integer to thousands of containers for 2 bytes each."""

    __slots__ = ("hash", "token")

    def __init__(self, value: int) -> None:
        self.hash = hash(value)
        self.token = hex(value)


class _Box:
    """A container or call result on the abstract stack, with what was put in it."""

    __slots__ = ("buckets", "depth", "hash", "keyed", "kids", "kind", "opaque", "token")

    def __init__(self, kind: str, keyed: bool = False) -> None:
        self.kind = kind
        self.keyed = keyed  # its items are hashed (set, frozenset, dict keys)
        self.opaque = 0
        self.buckets: dict[int, Any] | None = None
        # a tuple of numbers: a str naming its value (equal values, equal tokens) and
        # ``hash`` its hash(); a tuple holding text: TEXT; anything else: None
        self.token: str | _Text | None = None
        self.hash = 0
        self.depth = 1
        self.kids: tuple[_Box, ...] = ()  # a short tuple's containers (call arguments)


def _limit(name: str, message: str) -> ResourceLimitError:
    return ResourceLimitError(f"the object graph {message} (limit {name})")


def _add(box: _Box, item: Any, keyed: bool) -> None:
    """Account for ``item`` going into ``box``: the hash-flood guard."""
    tp = type(item)
    if tp is float:
        if item != item:  # NaN: hash() is the object's address, like text unpredictable
            return
        h, token = hash(item), item.hex()
    elif tp is int or tp is bool:
        h, token = hash(item), hex(item)
    elif tp is _Big:
        h, token = item.hash, item.token
    elif tp is _Box and type(item.token) is str:
        h, token = item.hash, item.token
    elif item is None or item is TEXT or (tp is _Box and item.token is TEXT):
        return
    else:
        if keyed:
            box.opaque += 1
            if box.opaque > MAX_OPAQUE_KEYS:
                raise _limit(
                    "MAX_OPAQUE_KEYS",
                    f"puts more than {MAX_OPAQUE_KEYS} computed keys in one set or dict",
                )
        else:
            box.opaque += 1
        return
    buckets = box.buckets
    if buckets is None:
        buckets = box.buckets = {}
    # keys are hash values (distinct ints hash to themselves: no collisions here), and
    # the tokens are str (randomised hashes)
    seen = buckets.get(h)
    if seen is None:
        buckets[h] = token
    elif type(seen) is str:
        if seen != token:
            buckets[h] = {seen, token}
    else:
        seen.add(token)
        if len(seen) > MAX_SHARED_HASH:
            raise _limit(
                "MAX_SHARED_HASH",
                f"puts more than {MAX_SHARED_HASH} distinct numbers with one hash value in "
                "one container (a hash-collision flood)",
            )


# CPython's tuple hash (Objects/tupleobject.c, xxHash-based, 64-bit builds): a tuple's
# hash from its items' hashes, so that a tuple of tuples is hashed in one pass over its
# own items (hashing the nested value afresh doubled the work per level of sharing)
_M64 = 2**64 - 1
_XXPRIME_1 = 11400714785074694791
_XXPRIME_2 = 14029467366897019727
_XXPRIME_5 = 2870177450012600261


def tuple_hash(hashes: list[int]) -> int:
    """``hash(t)`` for a tuple ``t`` whose items hash to ``hashes`` (64-bit CPython)."""
    acc = _XXPRIME_5
    for lane in hashes:
        acc = (acc + (lane & _M64) * _XXPRIME_2) & _M64
        acc = ((acc << 31) | (acc >> 33)) & _M64
        acc = (acc * _XXPRIME_1) & _M64
    acc = (acc + (len(hashes) ^ (_XXPRIME_5 ^ 3527539))) & _M64
    if acc == _M64:
        return 1546275796
    return acc - 2**64 if acc >= 2**63 else acc


def _tuple(items: list[Any], interned: dict[tuple[str, ...], str]) -> _Box:
    box = _Box("tuple")
    tokens: list[str] = []  # what repr() would tell apart, without repr()'s int limit
    hashes: list[int] = []
    numeric, text = True, False
    depth = 0
    for item in items:
        _add(box, item, False)
        tp = type(item)
        if tp is _Box:
            if item.depth > depth:
                depth = item.depth
            if type(item.token) is str:
                tokens.append(item.token)
                hashes.append(item.hash)
            elif item.token is TEXT:
                text, numeric = True, False
            else:
                numeric = False
        elif item is TEXT or (tp is float and item != item):  # text, NaN
            text, numeric = True, False
        elif tp is int or tp is float:
            tokens.append(hex(item) if tp is int else item.hex())
            hashes.append(hash(item))
        elif tp is _Big:
            tokens.append(item.token)
            hashes.append(item.hash)
        elif tp is bool or item is None:
            tokens.append(repr(item))
            hashes.append(hash(item))
        else:
            numeric = False
    box.depth = depth + 1
    if len(items) <= 4:
        box.kids = tuple(item for item in items if type(item) is _Box)
    if box.depth > MAX_TUPLE_DEPTH:
        raise _limit("MAX_TUPLE_DEPTH", f"nests tuples deeper than {MAX_TUPLE_DEPTH} levels")
    if text:
        box.token = TEXT
    elif numeric:
        # one token per distinct value: nested tuples are named by their tokens, so
        # comparing two values never walks them
        key = tuple(tokens)
        token = interned.get(key)
        if token is None:
            token = interned[key] = f"t{len(interned)}"
        box.token = token
        box.hash = tuple_hash(hashes)
    return box


# Opcode argument readers: how many bytes follow the opcode byte, and how to read them.
# kind: 0 none; 1 fixed-size (n bytes, struct code); 2 length-prefixed (n-byte length);
# 3 newline-terminated; 4 two newline-terminated strings.
_ARGS: dict[int, tuple[int, int, str]] = {}


def _arg(codes: bytes, kind: int, size: int = 0, fmt: str = "") -> None:
    for code in codes:
        _ARGS[code] = (kind, size, fmt)


_arg(b"NM\x88\x89]ael)t\x85\x86\x87}dsu\x8f\x90\x910(12\x94\x93Rbo\x81\x92.Q\x97\x98", 0)
_arg(b"K\x82hq\x80", 1, 1, "<B")
_arg(b"M\x83", 1, 2, "<H")
_arg(b"J\x84", 1, 4, "<i")
_arg(b"jr", 1, 4, "<I")
_arg(b"G", 1, 8, ">d")
_arg(b"\x95", 1, 8, "<Q")
_arg(b"\x8aUC\x8c", 2, 1, "<B")
_arg(b"\x8bTBX", 2, 4, "<I")
_arg(b"\x8e\x96\x8d", 2, 8, "<Q")
_arg(b"ILSFVgpP", 3)
_arg(b"ci", 4)

_KINDS = bytes(_ARGS[c][0] if c in _ARGS else 255 for c in range(256))
_TEXT_OPS = frozenset(b"UC\x8cTBX\x8e\x96\x8dSV")
_SIZED = {code: struct.Struct(fmt) for code, (kind, _, fmt) in _ARGS.items() if fmt}


def precheck_python(data: bytes | memoryview) -> None:
    """The reference walker of :func:`precheck`, in Python.

    Walk the opcodes of a pickle stream and refuse it before it is unpickled if it
    breaks a resource limit, or if it is not a well-formed protocol <= 5 stream.

    Raises
    ------
    ResourceLimitError
        A limit of this module, named in the message.
    IntegrityError
        The stream is malformed (unknown opcode, argument past the end, stack misuse).
    """
    view = bytes(data)
    end = len(view)
    budget = max(MIN_OBJECT_BUDGET, end // BYTES_PER_OBJECT)
    spent = 0
    memo_size = 0
    memo: list[Any] = []
    stack: list[Any] = []
    interned: dict[tuple[str, ...], str] = {}
    marks: list[int] = []
    pos = 0
    args = _ARGS
    kinds = _KINDS
    sized = _SIZED
    try:
        while pos < end:
            code = view[pos]
            kind = kinds[code]
            pos += 1
            arg: Any = None
            if not kind:
                pass
            elif kind == 255:
                raise IntegrityError(
                    f"the object graph has an unknown opcode {code:#04x} at {pos - 1}"
                )
            elif kind == 1:
                size = args[code][1]
                if pos + size > end:
                    raise IntegrityError("the object graph's stream ends inside an opcode")
                arg = sized[code].unpack_from(view, pos)[0]
                pos += size
            elif kind == 2:
                size = args[code][1]
                if pos + size > end:
                    raise IntegrityError("the object graph's stream ends inside an opcode")
                length = sized[code].unpack_from(view, pos)[0]
                pos += size
                if length > end - pos:
                    raise IntegrityError("an opcode's argument runs past the object graph's end")
                if code in (0x8A, 0x8B):  # LONG1, LONG4
                    arg = int.from_bytes(view[pos : pos + length], "little", signed=True)
                    if length > 8:
                        arg = _Big(arg)
                pos += length
            elif kind >= 3:
                for _ in range(kind - 2):
                    nl = view.find(b"\n", pos)
                    if nl < 0:
                        raise IntegrityError("the object graph's stream ends inside an opcode")
                    arg = view[pos:nl]
                    pos = nl + 1

            # ---- stack effects, most frequent opcodes first
            if code == 0x68 or code == 0x6A or code == 0x67:  # BINGET, LONG_BINGET, GET
                if code == 0x67:
                    arg = _decimal(arg)
                if not 0 <= arg < memo_size:
                    raise IntegrityError(f"the object graph reads memo entry {arg}, never stored")
                stack.append(memo[arg])
            elif code == 0x94:  # MEMOIZE
                memo.append(stack[-1])
                memo_size += 1
            elif code in (0x71, 0x72, 0x70):  # BINPUT, LONG_BINPUT, PUT
                if code == 0x70:
                    arg = _decimal(arg)
                if arg > memo_size:
                    raise _limit(
                        "MEMO_IN_ORDER",
                        f"stores memo entry {arg} while only {memo_size} exist (pickle numbers "
                        "them in order)",
                    )
                if arg == memo_size:
                    memo.append(stack[-1])
                    memo_size += 1
                else:
                    memo[arg] = stack[-1]
            elif code == 0x4B or code == 0x4D or code == 0x4A or code == 0x47:
                stack.append(arg)  # BININT1, BININT2, BININT, BINFLOAT
            elif code == 0x8A or code == 0x8B:  # LONG1, LONG4
                stack.append(arg)
            elif code in _TEXT_OPS:
                stack.append(TEXT)
            elif code == 0x4E:  # NONE
                stack.append(None)
            elif code == 0x30:  # POP
                if stack and (not marks or marks[-1] < len(stack)):
                    stack.pop()
                else:
                    marks.pop()
            elif code == 0x29:  # EMPTY_TUPLE
                stack.append(_tuple([], interned))
            elif code == 0x5D:  # EMPTY_LIST
                stack.append(_Box("list"))
                spent += 1
                if spent > budget:
                    raise _over_budget(budget, end)
            elif code == 0x7D or code == 0x8F:  # EMPTY_DICT, EMPTY_SET
                stack.append(_Box("dict" if code == 0x7D else "set", keyed=True))
                spent += 2
                if spent > budget:
                    raise _over_budget(budget, end)
            elif code == 0x88 or code == 0x89:
                stack.append(code == 0x88)
            elif code == 0x28:  # MARK
                marks.append(len(stack))
            elif code == 0x51:  # BINPERSID
                stack[-1] = OPAQUE
            elif code == 0x75 or code == 0x73:  # SETITEMS, SETITEM
                if code == 0x75:
                    start = marks.pop()
                else:
                    start = len(stack) - 2
                    if start < 1:
                        raise IndexError
                items = stack[start:]
                del stack[start:]
                target = stack[-1]
                if len(items) % 2:
                    raise IntegrityError("SETITEMS with an odd number of items")
                if type(target) is _Box:
                    for key in items[::2]:
                        _add(target, key, True)
            elif code == 0x65 or code == 0x61 or code == 0x90:  # APPENDS, APPEND, ADDITEMS
                if code == 0x61:
                    start = len(stack) - 1
                    if start < 1:
                        raise IndexError
                else:
                    start = marks.pop()
                items = stack[start:]
                del stack[start:]
                target = stack[-1]
                if type(target) is _Box:
                    keyed = code == 0x90 or target.keyed
                    for item in items:
                        _add(target, item, keyed)
            elif code in (0x85, 0x86, 0x87, 0x74):  # TUPLE1, TUPLE2, TUPLE3, TUPLE
                if code == 0x74:
                    start = marks.pop()
                else:
                    start = len(stack) - (code - 0x84)
                    if start < 0:
                        raise IndexError
                box = _tuple(stack[start:], interned)
                del stack[start:]
                stack.append(box)
                spent += 1
                if spent > budget:
                    raise _over_budget(budget, end)
            elif code == 0x62:  # BUILD: the state goes into the object on the stack
                stack.pop()
                if not stack:
                    raise IndexError
            elif code == 0x52 or code == 0x81:  # REDUCE, NEWOBJ: callable/class and args
                call_args = stack.pop()
                _check_call_args_box(call_args)
                stack[-1] = _Box("object")
                spent += 1
                if spent > budget:
                    raise _over_budget(budget, end)
            elif code == 0x92:  # NEWOBJ_EX
                stack.pop()
                call_args = stack.pop()
                _check_call_args_box(call_args)
                stack[-1] = _Box("object")
                spent += 1
                if spent > budget:
                    raise _over_budget(budget, end)
            elif code == 0x93:  # STACK_GLOBAL
                stack.pop()
                stack[-1] = OPAQUE
            elif code == 0x63 or code == 0x82 or code == 0x83 or code == 0x84:
                stack.append(OPAQUE)  # GLOBAL, EXT1/2/4
            elif code == 0x95:  # FRAME
                if arg > end - pos:
                    raise IntegrityError("a FRAME runs past the object graph's end")
            elif code == 0x80:  # PROTO
                if arg > 5:
                    raise IntegrityError(f"pickle protocol {arg} is newer than 5")
            elif code == 0x2E:  # STOP
                if not stack:
                    raise IndexError
                return
            elif code == 0x31:  # POP_MARK
                del stack[marks.pop() :]
            elif code == 0x32:  # DUP
                stack.append(stack[-1])
            elif code == 0x6C or code == 0x64 or code == 0x91:  # LIST, DICT, FROZENSET
                start = marks.pop()
                items = stack[start:]
                del stack[start:]
                if code == 0x6C:
                    box = _Box("list")
                    spent += 1
                    if spent > budget:
                        raise _over_budget(budget, end)
                else:
                    box = _Box("dict" if code == 0x64 else "frozenset", keyed=True)
                    spent += 2
                    if spent > budget:
                        raise _over_budget(budget, end)
                    if code == 0x64 and len(items) % 2:
                        raise IntegrityError("DICT with an odd number of items")
                for item in items[::2] if code == 0x64 else items:
                    _add(box, item, True if code != 0x6C else False)
                stack.append(box)
            elif code == 0x49 or code == 0x4C or code == 0x46:  # INT, LONG, FLOAT (text)
                # never written by protocol 2+ picklers; their parsing (C strtol, base 0)
                # is not worth imitating: a number whose hash is unknown
                stack.append(OPAQUE)
            elif code == 0x50:  # PERSID
                stack.append(OPAQUE)
            elif code == 0x69:  # INST
                del stack[marks.pop() :]
                stack.append(_Box("object"))
                spent += 1
                if spent > budget:
                    raise _over_budget(budget, end)
            elif code == 0x6F:  # OBJ
                start = marks.pop()
                if start >= len(stack):
                    raise IndexError
                del stack[start:]
                stack.append(_Box("object"))
                spent += 1
                if spent > budget:
                    raise _over_budget(budget, end)
            elif code == 0x97 or code == 0x98:  # NEXT_BUFFER, READONLY_BUFFER
                raise IntegrityError("the object graph uses out-of-band buffers")
            else:  # pragma: no cover - every code in _ARGS is handled above
                raise IntegrityError(f"unhandled opcode {code:#04x}")
    except IndexError:
        raise IntegrityError("the object graph's stream misuses its stack") from None
    raise IntegrityError("the object graph's stream has no STOP opcode")


def _check_call_args_box(args: Any) -> None:
    """A list or tuple handed straight to a call (``Counter(items)``) may be hashed."""
    if type(args) is not _Box:
        return
    for box in (args, *args.kids):
        if box.opaque > MAX_OPAQUE_KEYS:
            raise _limit(
                "MAX_OPAQUE_KEYS",
                f"passes more than {MAX_OPAQUE_KEYS} computed values in one container to a call",
            )


def _over_budget(budget: int, end: int) -> ResourceLimitError:
    return _limit(
        "MIN_OBJECT_BUDGET/BYTES_PER_OBJECT",
        f"creates more than {budget} objects for a {end}-byte stream",
    )


def _decimal(text: bytes) -> int:
    try:
        return int(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise FormatError("malformed memo index in the object graph") from None


def _compiled() -> Callable[[bytes | memoryview], None] | None:
    """The compiled walker, bound to this module's errors and limits, or None where it
    was not built (no C compiler at install time) or the environment forbids it."""
    if os.environ.get("DEVPERSIST_PURE_PYTHON", "") not in ("", "0"):
        return None
    try:
        from . import _opscan  # type: ignore[attr-defined]
    except ImportError:
        return None
    _opscan.bind(
        IntegrityError, FormatError, ResourceLimitError, MIN_OBJECT_BUDGET,
        BYTES_PER_OBJECT, MAX_SHARED_HASH, MAX_OPAQUE_KEYS, MAX_TUPLE_DEPTH,
    )  # fmt: skip
    walker: Callable[[bytes | memoryview], None] = _opscan.precheck
    return walker


_C_WALKER = _compiled()
#: The pre-pass implementations available in this process, by name ("python" always;
#: "c" where the extension was built and ``DEVPERSIST_PURE_PYTHON`` is not set).
IMPLEMENTATIONS: dict[str, Callable[[bytes | memoryview], None]] = {"python": precheck_python}
if _C_WALKER is not None:
    IMPLEMENTATIONS["c"] = _C_WALKER


def precheck(data: bytes | memoryview) -> None:
    """Walk the opcodes of a pickle stream and refuse it before it is unpickled if it
    breaks a resource limit, or if it is not a well-formed protocol <= 5 stream.

    The compiled walker runs where it was built, else :func:`precheck_python`; both
    give the same verdicts and messages.

    Parameters
    ----------
    data : bytes or memoryview
        The object graph's pickle stream.

    Raises
    ------
    ResourceLimitError
        A limit of this module, named in the message.
    IntegrityError
        The stream is malformed (unknown opcode, argument past the end, stack misuse).
    FormatError
        A text memo index (``GET``/``PUT``) is not a decimal number.
    """
    if _C_WALKER is not None:
        _C_WALKER(data)
    else:
        precheck_python(data)
