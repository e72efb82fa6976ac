"""Long-running coverage-guided fuzzer of devpersist's readers (atheris / libFuzzer).

Usage (from the repository root, with the ``fuzz`` extra installed)::

    PYTHONPATH=$PWD python tests/security/fuzz_long.py [CORPUS_DIR] [libFuzzer flags...]

``CORPUS_DIR`` defaults to ``fuzz-out/corpus``; it is seeded with valid files and hostile
ones (see ``_fuzz.seeds``) when empty, and libFuzzer adds every input that reaches new
code. Findings (an exception that is not a devpersist error, a hang past ``-timeout``
seconds, memory past ``-rss_limit_mb``) are written as ``fuzz-out/crash-*``,
``timeout-*`` or ``oom-*``; reproduce one with ``python tests/security/fuzz_long.py
fuzz-out/crash-XXXX`` and turn it into a test in ``tests/security/test_fuzz.py``.
Defaults: ``-timeout=20 -rss_limit_mb=4096 -max_len=1048576
-artifact_prefix=fuzz-out/``; pass ``-runs=N`` or ``-max_total_time=S`` to stop, and
``-print_final_stats=1`` for the execution count.

``DEVPERSIST_FUZZ_TARGET=prepass`` fuzzes the opcode pre-pass alone instead: each
input is a pickle stream given to both walkers (``devpersist._opcodes.IMPLEMENTATIONS``),
and a finding is a verdict they disagree on (accepted, or the exception's class and
message) or an exception that is not a devpersist error. The corpus is seeded with the
object graphs of the seed containers. Build the C walker with AddressSanitizer to check
its memory accesses too (``CFLAGS="-fsanitize=address,undefined" python setup.py
build_ext --inplace``, then run with ``LD_PRELOAD=$(gcc -print-file-name=libasan.so)``
and ``ASAN_OPTIONS=detect_leaks=0``).

Half of the mutations are structure-aware (``_fuzz.mutate``): the manifest, the pickle
stream or an array is mutated inside the container and sealed again, so that the
mutation gets past the checksums; the other half are libFuzzer's own byte mutations.
"""

from __future__ import annotations

import hashlib
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import atheris  # noqa: E402

with atheris.instrument_imports(include=["devpersist"]):
    import devpersist

import _fuzz  # noqa: E402

PREPASS = os.environ.get("DEVPERSIST_FUZZ_TARGET") == "prepass"


def _verdict(walk, data: bytes) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    try:
        walk(data)
    except devpersist.DevpersistError as exc:
        return type(exc).__name__, str(exc)
    return "accepted", ""


def prepass_target(data: bytes) -> None:
    from devpersist._opcodes import IMPLEMENTATIONS

    verdicts = {name: _verdict(walk, data) for name, walk in IMPLEMENTATIONS.items()}
    if len(set(verdicts.values())) > 1:
        raise AssertionError(f"the pre-pass walkers disagree: {verdicts}")


def _graph_of(seed: bytes) -> bytes:
    import _spec_writer as W

    try:
        return W.unseal(seed)[1]
    except Exception:
        return seed


def test_one_input(data: bytes) -> None:
    if PREPASS:
        prepass_target(data)
    else:
        _fuzz.target(data)


def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
    rnd = random.Random(seed)
    if PREPASS:
        return atheris.Mutate(data, max_size)
    if rnd.randrange(2):
        out = _fuzz.mutate(data, rnd, lambda b: atheris.Mutate(b, max(2 * len(b), 64)))
    else:
        out = atheris.Mutate(data, max_size)
    return out[:max_size]


def main() -> None:
    args = sys.argv[1:]
    positional = [a for a in args if not a.startswith("-")]
    flags = [a for a in args if a.startswith("-")]
    if not positional:
        positional = [os.path.join("fuzz-out", "corpus")]
    os.makedirs("fuzz-out", exist_ok=True)
    corpus = positional[0]
    if not os.path.isfile(corpus):  # a directory: seed it (a file: reproduce it)
        os.makedirs(corpus, exist_ok=True)
        if not os.listdir(corpus):
            for seed in _fuzz.seeds():
                seed = _graph_of(seed) if PREPASS else seed
                name = hashlib.sha1(seed).hexdigest()
                with open(os.path.join(corpus, name), "wb") as f:
                    f.write(seed)
    defaults = {
        "-timeout": "20",
        "-rss_limit_mb": "4096",
        "-max_len": "1048576",
        "-artifact_prefix": "fuzz-out/",
    }
    for flag, value in defaults.items():
        if not any(a.startswith(flag + "=") for a in flags):
            flags.append(f"{flag}={value}")
    atheris.Setup([sys.argv[0], *flags, *positional], test_one_input,
                  custom_mutator=custom_mutator)  # fmt: skip
    atheris.Fuzz()


if __name__ == "__main__":
    main()
