"""Corrupted valid files: every bit flip and truncation, and fuzzed edits, are rejected.

Only devpersist errors may escape; the audit hook records no event meanwhile.
"""

from __future__ import annotations

import functools
import io
import warnings
from collections.abc import Callable

import _hostile as H
import hypothesis
import hypothesis.strategies as st
import pytest
from _guard import Guard, Snapshot, armed
from hostile_cases.build import ridge_file, small_dict_file, tree_file

import devpersist
from devpersist import DevpersistError, IntegrityError, NotDevpersistError


def _outcome(data: bytes, via: str = "bytes") -> str | None:
    """None when ``data`` is rejected with a devpersist error; else what happened."""
    try:
        if via == "bytes":
            devpersist.loads(data)
        else:
            devpersist.load(io.BytesIO(data))
    except DevpersistError:
        return None
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return "loaded"


@pytest.mark.parametrize("maker", [small_dict_file, ridge_file])
def test_every_bit_flip_is_detected(maker: Callable[[], bytes], guard: Guard):
    data = maker()
    assert _outcome(data) == "loaded"
    failures = []
    with armed() as events:
        for position in range(len(data)):
            for bit in range(8):
                mutated = bytearray(data)
                mutated[position] ^= 1 << bit
                outcome = _outcome(bytes(mutated))
                if outcome is not None:
                    failures.append((position, bit, outcome))
    guard.events += events
    assert not failures, f"{len(failures)} flips not rejected, first: {failures[:5]}"
    guard.verify()


@pytest.mark.parametrize("via", ["bytes", "file"])
@pytest.mark.parametrize("maker", [small_dict_file, ridge_file])
def test_every_truncation_is_detected(maker: Callable[[], bytes], via: str, guard: Guard):
    data = maker()
    failures = []
    with armed() as events:
        for length in range(len(data)):
            outcome = _outcome(data[:length], via)
            if outcome is not None:
                failures.append((length, outcome))
    guard.events += events
    assert not failures, f"{len(failures)} truncations not rejected, first: {failures[:5]}"
    guard.verify()


def test_truncated_files_say_so():
    data = small_dict_file()
    with pytest.raises(NotDevpersistError, match="empty"):
        devpersist.loads(b"")
    for length in (1, 8, 15, 16, 100, len(data) - 1):
        with pytest.raises(IntegrityError):
            devpersist.loads(data[:length])


_FUZZ = hypothesis.settings(
    max_examples=200,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(hypothesis.HealthCheck),
)


@functools.cache
def _seeds() -> list[bytes]:
    return [
        small_dict_file(),
        ridge_file(),
        tree_file(),
        devpersist.dumps(["text", 1, 2.5, None, (True, b"raw")]),
    ]


_edit = st.tuples(
    st.sampled_from(["flip", "set", "insert", "delete", "truncate"]),
    st.floats(min_value=0, max_value=1, exclude_max=True),
    st.integers(min_value=0, max_value=255),
    st.binary(min_size=1, max_size=8),
)


Edit = tuple[str, float, int, bytes]


def _apply(data: bytes, edits: list[Edit]) -> bytes:
    out = bytearray(data)
    for kind, where, value, blob in edits:
        if not out:
            break
        pos = int(where * len(out))
        if kind == "flip":
            out[pos] ^= 1 << (value % 8)
        elif kind == "set":
            out[pos] = value
        elif kind == "insert":
            out[pos:pos] = blob
        elif kind == "delete":
            del out[pos : pos + 1 + value % 16]
        else:
            del out[pos:]
    return bytes(out)


@_FUZZ
@hypothesis.given(seed=st.integers(0, 3), edits=st.lists(_edit, min_size=1, max_size=6))
def test_fuzz_file_bytes(seed: int, edits: list[Edit]):
    original = _seeds()[seed]
    data = _apply(original, edits)
    with armed() as events:
        outcome = _outcome(data)
    assert not events
    if data == original:
        assert outcome == "loaded"
    else:
        assert outcome is None, outcome


@_FUZZ
@hypothesis.given(seed=st.integers(0, 3), edits=st.lists(_edit, min_size=1, max_size=4))
def test_fuzz_object_graph_inside_a_valid_container(seed: int, edits: list[Edit]):
    """Mutate only the pickle stream and re-wrap it (checksums, true globals), so every
    mutation reaches the audit and the construction: only devpersist errors may escape."""
    original = _seeds()[seed]
    graph = _apply(H.parse(original).graph, edits)
    data = H.with_graph(original, graph)
    before = Snapshot.take()
    with armed() as events, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. a mutated _sklearn_version warns, not an escape
        outcome = _outcome(data)
    assert not events
    assert outcome in (None, "loaded"), outcome
    assert not before.changes_and_restore()
