"""Every resource a hostile file can make the reader spend is bounded before it is spent.

Each case is a file written by the independent writer (``_spec_writer``) that cost
gigabytes, tens of seconds, a numpy ``ValueError`` or a segfault before the limits
existed. All run in one child process (``_child.py``) that measures the time and the
growth of peak memory of every call (limits far above a quiet machine's, far below
what the cases cost before), under an audit hook and a canary file.
"""

from __future__ import annotations

from pathlib import Path

import _spec_writer as W
from _harness import Case, problems, run_cases

MiB = 2**20
M61 = 2**61 - 1  # integers equal modulo this share a hash()
GRAPH = ("loads", "untrusted")  # verify audits as get_untrusted_types does


def _colliding(n: int) -> list[bytes]:
    return [W.integer(1 + i * M61) for i in range(n)]


def _cases() -> list[tuple[Case, str, float, int]]:
    """(case, expected error, most seconds, most traced bytes) per case."""
    manifest_flood = b'{"x":[' + b",".join([b"{}"] * (6 * MiB)) + b"]}"  # 12 MiB of {}
    cases = [
        # the C unpickler grew its memo to the index: 1.19 GiB for 2**26
        (Case("memo LONG_BINPUT 2**26", W.hostile(W.EMPTY_LIST, W.long_put(2**26)), GRAPH,
              True), "ResourceLimitError", 5, 32 * MiB),
        # 40 000 integers sharing a hash: 17 s to fill a set or a dict
        (Case("hash flood set", W.hostile(W.EMPTY_SET, W.MARK, *_colliding(40_000), W.ADDITEMS),
              GRAPH, True), "ResourceLimitError", 5, 64 * MiB),
        (Case("hash flood dict", W.hostile(W.EMPTY_DICT, W.MARK,
              *[k + W.NONE for k in _colliding(40_000)], W.SETITEMS), GRAPH, True),
         "ResourceLimitError", 5, 64 * MiB),
        (Case("hash flood frozenset", W.hostile(W.MARK, *_colliding(40_000), W.FROZENSET),
              GRAPH, True), "ResourceLimitError", 5, 64 * MiB),
        (Case("hash flood tuple keys", W.hostile(W.EMPTY_DICT, W.MARK,
              *[k + b"\x85" + W.NONE for k in _colliding(40_000)], W.SETITEMS), GRAPH, True),
         "ResourceLimitError", 5, 64 * MiB),
        (Case("hash flood Counter(list)", W.hostile(
            W.call(W.global_("collections", "Counter"),
                   W.EMPTY_LIST + W.MARK + b"".join(_colliding(40_000)) + W.APPENDS)),
              GRAPH, True), "ResourceLimitError", 5, 64 * MiB),
        # 4 MB of EMPTY_SET: 25 s and 1.73 GiB
        (Case("EMPTY_SET flood", W.hostile(W.MARK, W.EMPTY_SET * 4_000_000, W.LIST), GRAPH,
              True), "ResourceLimitError", 20, 128 * MiB),
        (Case("EMPTY_LIST flood", W.hostile(W.MARK, W.EMPTY_LIST * 4_000_000, W.LIST), GRAPH,
              True), "ResourceLimitError", 20, 128 * MiB),
        # a million nested tuples as a dict key: hashing one recursed until the C stack
        # overflowed (a segfault)
        (Case("deep tuple key", W.hostile(W.EMPTY_DICT, W.NONE, b"\x85" * 1_000_000, W.NONE,
              W.SETITEM), GRAPH, True), "ResourceLimitError", 10, 64 * MiB),
        # 12 MiB of "{}" in the manifest: about 0.5 GiB and seconds, in info() too
        (Case("manifest of {}", W.seal(W.stream(W.NONE), raw_manifest=manifest_flood),
              ("loads", "info", "cli_info"), True), "ResourceLimitError", 10, 64 * MiB),
        # numpy's ValueError from empty_host
        (Case("shape [0, 2**48, 2**48]", W.seal(W.stream(W.pid(0)),
              [W.Blob(b"", dtype="<f8", shape=[0, 2**48, 2**48])]), GRAPH, True),
         "ResourceLimitError", 5, 16 * MiB),
        # loaded: 2**96 elements of 0 bytes
        (Case("V0 of 2**96 elements", W.seal(W.stream(W.pid(0)),
              [W.Blob(b"", dtype="|V0", shape=[2**48, 2**48])]), GRAPH, True),
         "ResourceLimitError", 5, 16 * MiB),
    ]  # fmt: skip
    return cases


def test_every_resource_is_bounded(tmp_path: Path) -> None:
    table = _cases()
    cases = [c for c, *_ in table]
    outcome = run_cases(tmp_path, cases, timeout=400)
    found = problems(outcome, cases)
    for case, error, seconds, peak in table:
        for reader in case.readers:
            row = outcome.rows.get((case.name, reader))
            if row is None:
                continue
            where = f"{case.name}/{reader}"
            if reader.startswith("cli"):
                if row.get("rc") != 3 or "limit" not in row.get("err", ""):
                    found.append(f"{where}: exit {row.get('rc')}, {row.get('err')!r}")
            elif row.get("error") != error:
                found.append(f"{where}: {row.get('error', 'no error')} instead of {error}")
            if row["seconds"] > seconds:
                found.append(f"{where}: {row['seconds']:.1f} s (at most {seconds})")
            if row.get("peak", 0) > peak:
                found.append(
                    f"{where}: peak memory grew {row['peak'] / MiB:.0f} MiB (at most {peak / MiB:.0f})"
                )
            if "limit" not in row.get("message", "limit"):
                found.append(f"{where}: the message does not name the limit: {row['message']}")
    assert not found, "\n".join(found)
