"""The opcode pre-pass accepts whatever pickle writes for plain data, and refuses only
what breaks a limit (its limits are tested with hostile streams in test_resources)."""

from __future__ import annotations

import pickle

import _spec_writer as W
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devpersist import IntegrityError, ResourceLimitError
from devpersist._opcodes import MAX_SHARED_HASH, precheck, tuple_hash

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=5),
    st.binary(max_size=5),
)  # fmt: skip
hashables = st.recursive(
    scalars, lambda c: st.tuples(c, c) | st.frozensets(c, max_size=4), max_leaves=8
)
data = st.recursive(
    hashables,
    lambda c: st.lists(c, max_size=6) | st.dictionaries(hashables, c, max_size=6)
    | st.sets(hashables, max_size=6) | st.tuples(c, c, c),
    max_leaves=40,
)  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(value=data)
def test_what_pickle_writes_passes(value: object) -> None:
    for protocol in (2, 5):
        precheck(pickle.dumps(value, protocol=protocol))
    shared = [value, value]  # memo GETs
    precheck(pickle.dumps(shared, protocol=5))


def test_legitimate_equal_hashes_pass() -> None:
    # distinct values that share a hash do occur (-1 and -2; x and x + 2**61 - 1), a few
    M = 2**61 - 1
    keys = [-1, -2] + [5 + i * M for i in range(MAX_SHARED_HASH - 2)]
    precheck(pickle.dumps(set(keys), protocol=5))
    precheck(pickle.dumps(dict.fromkeys(keys), protocol=5))
    with pytest.raises(ResourceLimitError, match="MAX_SHARED_HASH"):
        precheck(pickle.dumps(set(keys + [5 + i * M for i in range(MAX_SHARED_HASH - 2, 9)])))


def test_a_large_legitimate_graph_passes() -> None:
    value = {"rows": [(i, float(i), str(i)) for i in range(30_000)], "ids": set(range(30_000))}
    precheck(pickle.dumps(value, protocol=5))


@pytest.mark.parametrize(
    "stream",
    [
        W.stream(W.EMPTY_LIST, W.get(0)),  # GET of an entry never stored
        W.PROTO5 + W.NONE,  # no STOP
        b"\x80\x06" + W.NONE + W.STOP,  # protocol 6
        W.stream(b"\xff"),  # unknown opcode
        W.stream(W.APPEND),  # empty stack
        W.stream(b"X\xff\xff\xff\x7f"),  # argument past the end
        W.stream(W.NONE, b"\x97"),  # out-of-band buffer
    ],
)
def test_malformed_streams_are_integrity_errors(stream: bytes) -> None:
    with pytest.raises(IntegrityError):
        precheck(stream)


def test_dump_refuses_what_no_reader_accepts(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    import devpersist

    keyed = {np.int64(i): i for i in range(1_500)}  # keys a call builds: hash unknown
    target = tmp_path / "m.dvp"
    with pytest.raises(devpersist.UnsupportedObjectError, match="MAX_OPAQUE_KEYS"):
        devpersist.dump(keyed, target)
    assert list(tmp_path.iterdir()) == []
    small = {np.int64(i): i for i in range(500)}
    assert devpersist.loads(devpersist.dumps(small)) == small


def test_shared_nested_tuples_cost_linear_time() -> None:
    # ((t, t), (t, t))...: 40 levels of DUP + TUPLE2 are 80 bytes; hashing the value of
    # each level afresh doubled the work per level (12 s at 22 levels, forever at 40)
    import time

    stream = W.PROTO5 + b"K\x01\x85" + b"2\x86" * 40 + W.NONE + b"\x86" + W.STOP
    start = time.perf_counter()
    precheck(stream)
    assert time.perf_counter() - start < 1.0


def test_a_huge_integer_in_a_tuple_key_is_walked() -> None:
    # repr() of an int over 4300 digits raises ValueError: the walker must not use it
    value = {(10**5000, 1): None, (10**5000 + 1, 1): None}
    precheck(pickle.dumps(value, protocol=5))


numeric = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False)),
    lambda c: st.lists(c, max_size=5).map(tuple),
    max_leaves=12,
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(value=st.lists(numeric, max_size=6).map(tuple))
def test_tuple_hash_is_cpythons(value: tuple) -> None:  # type: ignore[type-arg]
    assert tuple_hash([hash(item) for item in value]) == hash(value)
