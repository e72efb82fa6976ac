"""Short, bounded fuzzing runs for CI (the long run is ``fuzz_long.py``).

A structure-aware run (hypothesis drives ``_fuzz.mutate``: manifest values, manifest
text, the pickle stream, array bytes, each sealed again so the checksums hold) and, when
atheris is installed (the ``fuzz`` extra), a few seconds of coverage-guided fuzzing
in a child process. Any exception but a devpersist error fails the test.
"""

from __future__ import annotations

import functools
import os
import random
import subprocess
import sys
from pathlib import Path

import _fuzz
import _spec_writer as W
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

HERE = Path(__file__).resolve().parent


@functools.cache
def _seeds() -> tuple[bytes, ...]:
    return tuple(_fuzz.seeds())


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(index=st.integers(0, 10**6), seed=st.integers(0, 2**32 - 1), rounds=st.integers(1, 3))
def test_structure_aware_mutations(index: int, seed: int, rounds: int) -> None:
    seeds = _seeds()
    data = seeds[index % len(seeds)]
    rnd = random.Random(seed)
    for _ in range(rounds):
        data = _fuzz.mutate(data, rnd, _fuzz.random_bytes_mutator(rnd))
    _fuzz.target(data)


def test_mutations_reach_past_the_checksums() -> None:
    """The structure-aware mutator is only worth its name if its files get past the
    container checks: most mutated files must pass ``info``'s checksum tests."""
    import devpersist

    rnd = random.Random(0)
    seeds = _seeds()
    reached = 0
    for i in range(200):
        data = _fuzz.mutate(seeds[i % len(seeds)], rnd, _fuzz.random_bytes_mutator(rnd))
        try:
            devpersist.info(data)
            reached += 1
        except devpersist.IntegrityError as exc:
            reached += "checksum" not in str(exc)
        except devpersist.DevpersistError:
            reached += 1
    assert reached > 120, reached


def test_sealed_files_are_valid() -> None:
    """The independent writer's containers are the ones the spec describes."""
    import numpy as np

    import devpersist

    data = W.seal(W.stream(W.pid(0)), [W.Blob(np.arange(3, dtype="<i4").tobytes(), "<i4", [3])])
    out = devpersist.loads(data)
    assert out.dtype == np.dtype("<i4") and out.tolist() == [0, 1, 2]
    manifest, graph, blobs = W.unseal(devpersist.dumps({"a": np.arange(2.0)}))
    again = W.reseal(manifest, graph, blobs)
    assert devpersist.loads(again)["a"].tolist() == [0.0, 1.0]


def test_coverage_guided_short_run(tmp_path: Path) -> None:
    pytest.importorskip("atheris")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE.parents[1]), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.run(
        [sys.executable, str(HERE / "fuzz_long.py"), str(tmp_path / "corpus"),
         "-max_total_time=6", "-runs=20000", "-timeout=10", "-rss_limit_mb=3072",
         f"-artifact_prefix={tmp_path}/"],
        capture_output=True, text=True, timeout=240, cwd=tmp_path, env=env,
    )  # fmt: skip
    artifacts = [
        p.name for p in tmp_path.iterdir() if p.name.startswith(("crash-", "timeout-", "oom-"))
    ]
    assert proc.returncode == 0 and not artifacts, (artifacts, proc.stderr[-3000:])
    assert "Done" in proc.stderr, proc.stderr[-2000:]


FINDINGS = sorted((Path(__file__).parent / "findings").glob("*.dvp"))


@pytest.mark.parametrize("finding", FINDINGS, ids=lambda p: p.stem)
def test_fuzzer_findings_stay_fixed(finding: Path) -> None:
    """Each input the long fuzz run reported (``findings/``, named after the defect)
    now gives a devpersist error, or loads, in every reader."""
    _fuzz.target(finding.read_bytes())


def test_sealed_version_2_files_are_valid() -> None:
    """The independent writer's version 2 layout: a packed array and a blob."""
    import numpy as np

    import devpersist

    small, big = np.arange(3, dtype="<i4"), np.arange(9000, dtype="<f8")
    graph = W.stream(W.EMPTY_LIST, W.MARK, W.pid(0), W.pid(1), W.APPENDS)
    blobs = [W.Blob(small.tobytes(), "<i4", [3]), W.Blob(big.tobytes(), "<f8", [9000])]
    data = W.seal(graph, blobs, version=2)
    out = devpersist.loads(data)
    assert out[0].tolist() == [0, 1, 2] and out[1].tobytes() == big.tobytes()
    assert [a.get("packed", False) for a in devpersist.info(data)["arrays"]] == [True, False]
    manifest, graph_again, blob_bytes = W.unseal(data)
    assert graph_again == graph and blob_bytes == [b.data for b in blobs]
    assert W.reseal(manifest, graph, blob_bytes) == data
