"""What the fuzzers share: seed files, the target, and a structure-aware mutation.

The target hands one input to ``loads``, ``info`` and ``verify``; anything but a
devpersist error (or success) is a finding: a numpy ``ValueError``, a ``RecursionError``,
a crash, a hang (the fuzzer's timeout) or a memory blow-up (its RSS limit).

A byte-level mutation of a container almost always breaks a checksum, so the fuzzers
also mutate *inside* the container: the manifest's JSON (as text or as values), the
pickle stream, or an array's bytes, and then seal it again with the independent writer
(:mod:`_spec_writer`), so that every checksum and offset is right and the mutation
reaches the manifest validation, the opcode pre-pass, the audit and the loader.
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Callable
from typing import Any

import _spec_writer as W


def seeds() -> list[bytes]:
    """Valid files of every shape the loader knows, and a few hostile ones."""
    import numpy as np

    import devpersist

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 4))
    y = (X[:, 0] > 0).astype(np.int64)
    out: list[bytes] = []

    def add(obj: Any, **kw: Any) -> None:
        out.append(devpersist.dumps(obj, **kw))

    add({"x": np.arange(3, dtype="<i4")})
    add([1, 2.5, "a", b"b", None, True, (1, 2), {3}, frozenset({4})])
    add({"s": np.zeros(2, dtype=[("a", "<i4"), ("b", "<f8", (2,))])})
    add({"big": np.linspace(0, 1, 5000)}, compress="zlib")
    add({"half": np.linspace(0, 1, 16)}, precision="float16")
    add({"obj": np.array(["a", None, 3], dtype=object)})
    add({"masked": np.ma.masked_array([1.0, 2.0], mask=[False, True])})
    add({"f": np.arange(6.0).reshape(2, 3).T.copy(order="F"), "b": np.array([True])})
    try:
        from sklearn.linear_model import LogisticRegression
        from sklearn.neighbors import KNeighborsClassifier
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from sklearn.tree import DecisionTreeClassifier
    except ImportError:  # pragma: no cover - scikit-learn is a test dependency
        pass
    else:
        add(make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y))
        add(DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y))
        add(KNeighborsClassifier(n_neighbors=3).fit(X, y))
    out.extend(hostile_seeds())
    return out


def hostile_seeds() -> list[bytes]:
    """A few streams that probe the limits, written by hand."""
    M = 2**61 - 1
    return [
        W.file_of(W.EMPTY_LIST, W.long_put(2**20)),
        W.file_of(W.EMPTY_SET, W.MARK, *[W.integer(1 + i * M) for i in range(12)], W.ADDITEMS),
        W.file_of(W.MARK, W.EMPTY_SET * 64, W.LIST),
        W.file_of(W.call(W.global_("os", "system"), W.text("true"))),
        W.seal(W.stream(W.pid(0)), [W.Blob(b"", dtype="<f8", shape=[0, 2**40])]),
    ]


def target(data: bytes) -> None:
    """One execution: every public reader on ``data``; only devpersist errors pass."""
    import devpersist

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for reader in (devpersist.info, devpersist.verify, _loads):
            try:
                reader(data)
            except devpersist.DevpersistError:
                pass


def _loads(data: bytes) -> Any:
    import devpersist

    return devpersist.loads(data, restore_config=False)


# --------------------------------------------------------------------------- mutation


def mutate(data: bytes, rnd: random.Random, bytes_mutator: Callable[[bytes], bytes]) -> bytes:
    """One structure-aware mutation of a container, sealed again.

    ``bytes_mutator`` mutates a byte string (atheris' libFuzzer mutator, or a plain
    random one); the choice of what to mutate is ``rnd``'s. An input that is not a
    container the writer can take apart gets a byte mutation.
    """
    try:
        return _mutate(data, rnd, bytes_mutator)
    except Exception:
        return bytes_mutator(data)


def _mutate(data: bytes, rnd: random.Random, bytes_mutator: Callable[[bytes], bytes]) -> bytes:
    manifest, graph, blobs = W.unseal(data)
    if not isinstance(manifest, dict):
        raise ValueError("not a manifest")
    choice = rnd.randrange(6)
    if choice == 0:  # the pickle stream
        return W.reseal(manifest, bytes_mutator(graph), blobs)
    if choice == 1 and blobs:  # one array's bytes
        i = rnd.randrange(len(blobs))
        blobs = [*blobs[:i], bytes_mutator(blobs[i]), *blobs[i + 1 :]]
        return W.reseal(manifest, graph, blobs)
    if choice == 2:  # the manifest's text: any JSON, valid or not, correctly sealed
        body = W.reseal(manifest, graph, blobs)
        return _with_manifest(body, bytes_mutator(W.manifest_bytes(body)))
    if choice == 3:  # one value in the manifest, offsets and checksums recomputed after
        _mutate_value(manifest, rnd)
        return W.reseal(manifest, graph, blobs)
    if choice == 4:  # one value, sealed as is (offsets may now disagree)
        _mutate_value(manifest, rnd)
        version = 2 if manifest.get("format_version") == 2 else 1
        return W.seal(graph, [W.Blob(b) for b in blobs], manifest=manifest, version=version)
    return bytes_mutator(data)  # raw bytes: checksums and the exact-length rule


def _with_manifest(data: bytes, raw: bytes) -> bytes:
    """``data`` with its manifest bytes replaced and the trailer made to match."""
    return W.with_raw_manifest(data, raw)


_VALUES: list[Any] = [
    0, -1, 1, 2**31, 2**48, 2**63, 2**64 + 1, -(2**62), 1.5, float("1e308"), True, None, "",
    "\x1b[31m", "<f8", "f8", "=f8", "|V0", "|V8", "<U3", "|S0", ">c16", "<M8[ns]",
    "float8", "float16", "bfloat16", "zstd", "lz4", "zlib", "lzma", "torch", "numpy",
    "C", "F", "cpu", "cuda:0", [], {}, [0], [2**48, 2**48], [0, 2**48, 2**48], [[1]],
    [["a", "<f8"]], [["a", "|V0", [2**40]]], ["builtins", "eval"], {"precision": "float8"},
]  # fmt: skip


def _mutate_value(node: Any, rnd: random.Random, depth: int = 0) -> None:
    """Replace, delete or add one value somewhere in a JSON tree (in place)."""
    if isinstance(node, dict) and node:
        key = rnd.choice(list(node))
        action = rnd.randrange(4)
        if action == 0 or depth > 6 or not isinstance(node[key], (dict, list)):
            if action == 1:
                del node[key]
            elif action == 2:
                node[rnd.choice(["meta", "cast", "precision", "dtype", "x", key])] = rnd.choice(
                    _VALUES
                )
            else:
                node[key] = rnd.choice(_VALUES)
            return
        _mutate_value(node[key], rnd, depth + 1)
    elif isinstance(node, list) and node:
        i = rnd.randrange(len(node))
        if rnd.randrange(3) == 0 or not isinstance(node[i], (dict, list)):
            if rnd.randrange(4) == 0:
                node.append(rnd.choice(_VALUES))
            else:
                node[i] = rnd.choice(_VALUES)
            return
        _mutate_value(node[i], rnd, depth + 1)


def random_bytes_mutator(rnd: random.Random) -> Callable[[bytes], bytes]:
    """A plain byte mutator (flip, insert, delete, duplicate, splice in an opcode)."""
    opcodes = b"()]}.\x8f\x90\x91\x94aestuRb\x81\x85\x86\x87hjqrKJM\x8a\x8cXN\x93Q"

    def mutate_bytes(data: bytes) -> bytes:
        buf = bytearray(data)
        for _ in range(rnd.randrange(1, 4)):
            op = rnd.randrange(5)
            pos = rnd.randrange(len(buf) + 1)
            if op == 0 and buf:
                buf[min(pos, len(buf) - 1)] ^= 1 << rnd.randrange(8)
            elif op == 1:
                buf[pos:pos] = bytes([rnd.choice(opcodes)])
            elif op == 2 and buf:
                del buf[pos : pos + rnd.randrange(1, 9)]
            elif op == 3 and buf:
                start = rnd.randrange(len(buf))
                buf[pos:pos] = buf[start : start + rnd.randrange(1, 33)]
            else:
                buf[pos:pos] = rnd.randbytes(rnd.randrange(1, 9))
        return bytes(buf)

    return mutate_bytes
