"""The opcode pre-pass accepts whatever pickle writes for plain data, and refuses only
what breaks a limit (its limits are tested with hostile streams in test_resources).

Every test runs both walkers (``walker`` fixture: the Python reference and the compiled
``devpersist._opscan``, which is skipped only where it was not built, and never in CI);
``test_both_walkers_agree`` feeds both the same random, mutated and truncated streams
and compares their verdicts: accepted, or the exception's class and message.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys

import _spec_writer as W
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devpersist import DevpersistError, IntegrityError, ResourceLimitError
from devpersist._opcodes import IMPLEMENTATIONS, MAX_SHARED_HASH, tuple_hash

WALKERS = ["python", "c"]


def _require(name: str):  # type: ignore[no-untyped-def]
    if name not in IMPLEMENTATIONS:
        if os.environ.get("CI"):  # CI must build it: a missing build fails there
            pytest.fail("the compiled pre-pass (devpersist._opscan) was not built in CI")
        pytest.skip("devpersist._opscan was not built (no C compiler at install time)")
    return IMPLEMENTATIONS[name]


@pytest.fixture(params=WALKERS, scope="module")
def walker(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    return _require(request.param)


@pytest.fixture(scope="module")
def compiled():  # type: ignore[no-untyped-def]
    return _require("c")


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
def test_what_pickle_writes_passes(walker, value: object) -> None:  # type: ignore[no-untyped-def]
    precheck = walker
    for protocol in (2, 5):
        precheck(pickle.dumps(value, protocol=protocol))
    shared = [value, value]  # memo GETs
    precheck(pickle.dumps(shared, protocol=5))


def test_legitimate_equal_hashes_pass(walker) -> None:  # type: ignore[no-untyped-def]
    precheck = walker
    # distinct values that share a hash do occur (-1 and -2; x and x + 2**61 - 1), a few
    M = 2**61 - 1
    keys = [-1, -2] + [5 + i * M for i in range(MAX_SHARED_HASH - 2)]
    precheck(pickle.dumps(set(keys), protocol=5))
    precheck(pickle.dumps(dict.fromkeys(keys), protocol=5))
    with pytest.raises(ResourceLimitError, match="MAX_SHARED_HASH"):
        precheck(pickle.dumps(set(keys + [5 + i * M for i in range(MAX_SHARED_HASH - 2, 9)])))


def test_a_large_legitimate_graph_passes(walker) -> None:  # type: ignore[no-untyped-def]
    precheck = walker
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
def test_malformed_streams_are_integrity_errors(walker, stream: bytes) -> None:  # type: ignore[no-untyped-def]
    precheck = walker
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


def test_shared_nested_tuples_cost_linear_time(walker) -> None:  # type: ignore[no-untyped-def]
    # ((t, t), (t, t))...: 40 levels of DUP + TUPLE2 are 80 bytes; hashing the value of
    # each level afresh doubled the work per level (12 s at 22 levels, forever at 40)
    import time

    stream = W.PROTO5 + b"K\x01\x85" + b"2\x86" * 40 + W.NONE + b"\x86" + W.STOP
    start = time.perf_counter()
    walker(stream)
    assert time.perf_counter() - start < 1.0


def test_a_huge_integer_in_a_tuple_key_is_walked(walker) -> None:  # type: ignore[no-untyped-def]
    # repr() of an int over 4300 digits raises ValueError: the walker must not use it
    value = {(10**5000, 1): None, (10**5000 + 1, 1): None}
    walker(pickle.dumps(value, protocol=5))


numeric = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False)),
    lambda c: st.lists(c, max_size=5).map(tuple),
    max_leaves=12,
)  # fmt: skip


@settings(max_examples=100, deadline=None)
@given(value=st.lists(numeric, max_size=6).map(tuple))
def test_tuple_hash_is_cpythons(value: tuple) -> None:  # type: ignore[type-arg]
    assert tuple_hash([hash(item) for item in value]) == hash(value)


# ---- the two walkers agree ------------------------------------------------------------

M61 = 2**61 - 1


def _long(n: int) -> bytes:
    body = n.to_bytes((n.bit_length() + 8) // 8 or 1, "little", signed=True)
    return (b"\x8a" + bytes([len(body)]) if len(body) < 256 else b"\x8b"
            + len(body).to_bytes(4, "little")) + body  # fmt: skip


def _float(x: float) -> bytes:
    import struct

    return b"G" + struct.pack(">d", x)


# opcodes with well-formed arguments, so that random sequences reach the stack logic
numbers = st.sampled_from(
    [b"K\x01", b"K\xff", b"M\x01\x01", b"J\xff\xff\xff\xff", b"J\x01\x00\x00\x00",
     _long(0), _long(1), _long(-1), _long(2**63), _long(-(2**63)), _long(2**64 + 1),
     _long(1 + M61), _long(1 + 2 * M61), _long(-1 - M61), _long(10**40), b"\x8a\x02\x01\x00",
     _float(1.0), _float(-0.0), _float(0.0), _float(float("nan")), _float(float("inf")),
     _float(1.5), b"\x88", b"\x89", b"N"]
)  # fmt: skip
colliding = st.integers(2, 12).map(
    lambda n: b"(" + b"".join(_long(7 + i * M61) for i in range(n))
)  # a MARK and n numbers with one hash: followed by a container opcode below
others = st.sampled_from(
    [b"]", b"}", b"\x8f", b"(", b")", b"t", b"\x85", b"\x86", b"\x87", b"a", b"e", b"\x90",
     b"s", b"u", b"d", b"l", b"\x91", b"0", b"1", b"2", b"\x94", b"h\x00", b"h\x01",
     b"j\x02\x00\x00\x00", b"q\x00", b"q\x05", b"r\x00\x00\x00\x40", b"g0\n", b"g-1\n",
     b"g 1_0\n", b"gx\n", b"g\xff\n", b"p0\n", b"p-1\n", b"p-9\n", b"p99\n", b"p\xe9\n",
     b"cmod\nname\n", b"\x93", b"R", b"\x81", b"\x92", b"b", b"o", b"imod\nname\n", b"Q",
     b"Pid\n", b"X\x01\x00\x00\x00a", b"\x8c\x01a", b"C\x00", b"Vx\n", b"S'x'\n", b"I1\n",
     b"\x95\x01\x00\x00\x00\x00\x00\x00\x00", b"\x95\xff\x00\x00\x00\x00\x00\x00\x00",
     b"\x80\x05", b"\x80\x07", b".", b"\x97", b"\x82\x01", b"\xff", b"X\xff\xff\xff\xff",
     b"(o", b"(t", b"(l", b"(d", b"(\x91", b"(u", b"(e", b"(\x90", b"(1", b"(0", b"((",
     b"(imod\nname\n", b"2\x86", b"2t", b"))", b"]2"]
)  # fmt: skip
soup = st.lists(st.one_of(numbers, others, colliding), max_size=60).map(b"".join)


def _verdict(walk, stream: bytes) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    try:
        walk(stream)
    except DevpersistError as exc:  # anything else fails the test
        return type(exc).__name__, str(exc)
    return "accepted", ""


def _graphs() -> list[bytes]:
    """The object graphs of a few fitted models, as devpersist writes them."""
    if not hasattr(_graphs, "cache"):
        import numpy as np
        from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
        from sklearn.linear_model import Ridge

        import devpersist

        X = np.random.default_rng(0).normal(size=(60, 4))
        y = (X[:, 0] > 0).astype(int)
        models = [Ridge().fit(X, y), RandomForestClassifier(3, max_depth=3).fit(X, y),
                  HistGradientBoostingClassifier(max_iter=3).fit(X, y)]  # fmt: skip
        _graphs.cache = [W.unseal(devpersist.dumps(m))[1] for m in models]  # type: ignore[attr-defined]
    return _graphs.cache  # type: ignore[attr-defined,no-any-return]


@st.composite
def mutated_graphs(draw: st.DrawFn) -> bytes:
    graph = bytearray(draw(st.sampled_from(_graphs())))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(graph)))
        how = draw(st.integers(0, 4))
        if how == 0 and at < len(graph):  # a byte changed
            graph[at] = draw(st.integers(0, 255))
        elif how == 1:  # opcodes inserted
            graph[at:at] = draw(st.one_of(numbers, others, colliding))
        elif how == 2:  # a run deleted
            del graph[at : at + draw(st.integers(1, 16))]
        elif how == 3:  # a run repeated
            graph[at:at] = graph[at : at + draw(st.integers(1, 64))]
        else:  # truncated
            del graph[at:]
    return bytes(graph)


streams = st.one_of(
    st.binary(max_size=64),
    soup.map(lambda body: W.PROTO5 + body + W.STOP),
    soup,
    mutated_graphs(),
)


@settings(max_examples=600, deadline=None)
@given(stream=streams)
def test_both_walkers_agree(compiled, stream: bytes) -> None:  # type: ignore[no-untyped-def]
    expected = _verdict(IMPLEMENTATIONS["python"], stream)
    assert _verdict(compiled, stream) == expected
    assert _verdict(compiled, memoryview(bytearray(stream))) == expected


def test_real_graphs_pass_both_walkers(walker) -> None:  # type: ignore[no-untyped-def]
    for graph in _graphs():
        walker(graph)
        for cut in range(0, len(graph), max(1, len(graph) // 25)):  # truncations
            with pytest.raises(IntegrityError):
                walker(graph[:cut])


def test_the_environment_forces_the_python_walker() -> None:
    code = "import devpersist._opcodes as o; print(sorted(o.IMPLEMENTATIONS))"
    env = {**os.environ, "DEVPERSIST_PURE_PYTHON": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout.split()  # fmt: skip
    assert out == ["['python']"]


@pytest.mark.parametrize(
    "items",
    [
        [(True,)] + [(1 + j * M61,) for j in range(1, 9)],  # bool lanes hash like 1
        [(1.0,)] + [(1 + j * M61,) for j in range(1, 9)],  # and so do floats
        [(None, 1 + j * M61) for j in range(9)],  # None's lane: its id-based hash
        [((1 + j * M61,), 2) for j in range(9)],  # a nested tuple's lane
    ],
)
def test_colliding_tuples_are_counted(walker, items: list[tuple]) -> None:  # type: ignore[no-untyped-def, type-arg]
    # distinct tuples whose items share hashes share a hash: 8 of them pass, 9 do not
    walker(pickle.dumps(set(items[:8]), protocol=5))
    walker(pickle.dumps(dict.fromkeys(items[:8]), protocol=5))
    with pytest.raises(ResourceLimitError, match="MAX_SHARED_HASH"):
        walker(pickle.dumps(set(items), protocol=5))


def test_tuples_with_different_hashes_are_not_counted_together(walker) -> None:  # type: ignore[no-untyped-def]
    # hash(None) is not hash(0): two groups of 4 and 5 colliding tuples, none over 8
    items = [(0, 1 + j * M61) for j in range(1, 5)] + [(None, 1 + j * M61) for j in range(1, 6)]
    walker(pickle.dumps(set(items), protocol=5))


def test_the_c_source_compiles_without_warnings(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import shutil
    import sysconfig
    from pathlib import Path

    cc = shutil.which(os.environ.get("CC", "cc"))
    if cc is None:
        pytest.skip("no C compiler")
    source = Path(__file__).parents[2] / "devpersist" / "_opscan.c"
    include = sysconfig.get_paths()["include"]
    flags = ["-Wall", "-Wextra", "-Werror", "-Wshadow", "-fsyntax-only"]
    done = subprocess.run([cc, *flags, f"-I{include}", str(source)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_a_big_integer_fetched_many_times_costs_linear_time(walker) -> None:  # type: ignore[no-untyped-def]
    # a 256 kB integer stored once and appended 20 000 times (2 bytes each): hashing
    # and naming it afresh on every append took minutes
    import time

    big = (1 << (8 * 256 * 1024 - 2)) + 12345
    body = big.to_bytes(256 * 1024, "little", signed=True)
    stream = (W.PROTO5 + W.EMPTY_LIST + b"\x8b" + len(body).to_bytes(4, "little") + body
              + W.MEMOIZE + W.POP + (b"h\x00a") * 20_000 + W.STOP)  # fmt: skip
    start = time.perf_counter()
    walker(stream)
    assert time.perf_counter() - start < 2.0
