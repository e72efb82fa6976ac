#!/usr/bin/env python
"""Does the read/hash overlap pay? Large loads and saves in many fresh processes.

    python benchmarks/bench_overlap.py                   # 88 MiB, 12 processes per mode
    python benchmarks/bench_overlap.py --mib 8,32,256    # several sizes (the threshold)
    python benchmarks/bench_overlap.py --quick           # smoke run: seconds

``devpersist._pipeline`` moves a large array either with a worker thread that reads
chunk i+1 while the caller hashes chunk i (the overlap), or serially, in
``SERIAL_CHUNK`` pieces each hashed right after it is read, while still in cache. Which
is faster can differ from one process to the next (thread placement, page faults into
fresh memory, other work on the machine), so every mode runs in ``--processes`` fresh
processes, interleaved in a shuffled order round by round, each doing ``--loads``
operations; the report gives min / median / max across processes, not only one median.

Modes (each into freshly allocated memory, as a load does):

- ``raw read``: ``readinto`` of the bytes, no checksum (the floor);
- ``read then hash``: the whole read, then one xxh3 pass (the thread-off path before);
- ``read_hashed serial`` / ``read_hashed overlap``: the pipeline forced either way;
- ``load auto`` / ``load serial`` / ``load overlap``: ``devpersist.load(path)`` of a dict
  holding one array, with the pipeline's own choice and forced either way;
- ``load page-aligned`` (and ``... no bounce``): the same array stored at a file offset
  that is a multiple of 4 KiB, where a numpy array (16 bytes into its page) is a
  short-distance copy for the kernel, with the pipeline's bounce buffer (and without);
- ``pickle.load``: the same dict, pickled with protocol 5;
- ``dump serial`` / ``dump overlap``: ``devpersist.dump`` to an open file (no fsync).

Prints a Markdown table on stdout; ``--json`` keeps the raw timings.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import random
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

MiB = 2**20
LOAD_MODES = (
    "raw read",
    "read then hash",
    "read_hashed serial",
    "read_hashed overlap",
    "load auto",
    "load serial",
    "load overlap",
    "load page-aligned",
    "load page-aligned no bounce",
    "pickle.load",
)
SAVE_MODES = ("dump serial", "dump overlap")
MODES = LOAD_MODES + SAVE_MODES


# --------------------------------------------------------------------------- child


def _force(mode: str) -> None:
    """Force the pipeline's choice for ``mode`` (serial / overlap), else leave it."""
    from devpersist import _pipeline

    if mode.endswith("no bounce"):
        _pipeline.BOUNCE_MIN_BYTES = 1 << 62
    if mode.endswith("serial"):
        _pipeline.PIPELINE_BYTES = 1 << 62
    elif mode.endswith("overlap"):
        _pipeline.PIPELINE_BYTES = 0
        _pipeline.MIN_CORES = 1
        _pipeline.idle_cores = lambda: float("inf")  # type: ignore[assignment]


def child(mode: str, files: dict[str, str], loads: int, cpus: int = 0) -> list[float]:
    """Run ``mode`` ``loads`` times in this fresh process; seconds per operation."""
    import gc

    if cpus:  # as a process limited to that many cores (a container, taskset) would be
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:cpus])

    import numpy as np
    import xxhash

    import devpersist
    from devpersist import _pipeline

    try:  # a file saved where scikit-learn was imported imports it on load: not I/O
        import sklearn  # noqa: F401
    except ImportError:
        pass
    _force(mode)
    # the raw modes read the array's bytes where the load does, at the same alignment
    entry = devpersist.info(files["dvp"])["arrays"][0]
    nbytes, at = entry["length"], entry["offset"]
    raw = open(files["dvp"], "rb")

    def readinto(offset: int, out: memoryview) -> None:
        raw.seek(offset)
        view, got = out.cast("B"), 0
        while got < view.nbytes:
            n = raw.readinto(view[got:])
            if not n:
                raise OSError("short file")
            got += n

    def op() -> Any:
        if mode.startswith("dump"):
            with open(files["out"], "wb") as f:
                devpersist.dump(payload, f)
            return None
        if mode.startswith("load page-aligned"):
            return devpersist.load(files["aligned"])
        if mode.startswith("load"):
            return devpersist.load(files["dvp"])
        if mode == "pickle.load":
            with open(files["pkl"], "rb") as f:
                return pickle.load(f)
        out = np.empty(nbytes, np.uint8)  # fresh memory, as a load allocates
        if mode == "raw read":
            readinto(at, out.data)
        elif mode == "read then hash":
            readinto(at, out.data)
            xxhash.xxh3_64_intdigest(out)
        else:
            with _pipeline.Worker() as worker:
                _pipeline.read_hashed(readinto, at, out.data, worker)
        return out

    payload = None
    if mode.startswith("dump"):
        payload = devpersist.load(files["dvp"])
    times = []
    for _ in range(loads):
        gc.collect()
        start = time.perf_counter()
        result = op()
        times.append(time.perf_counter() - start)
        del result
    raw.close()
    return times


# --------------------------------------------------------------------------- parent


def make_files(directory: str, mib: int) -> dict[str, str]:
    """One float64 array of ``mib`` MiB: a devpersist file (the array at an offset that is
    not a multiple of 4 KiB), another with the array at such an offset, a pickle."""
    import numpy as np

    import devpersist

    arr = np.random.default_rng(0).random(mib * MiB // 8)
    files = {
        "dvp": os.path.join(directory, f"a{mib}.dvp"),
        "aligned": os.path.join(directory, f"p{mib}.dvp"),
        "pkl": os.path.join(directory, f"a{mib}.pkl"),
        "out": os.path.join(directory, f"out{mib}.dvp"),
    }
    devpersist.dump({"w": arr}, files["dvp"])
    if devpersist.info(files["dvp"])["arrays"][0]["offset"] % 4096 == 0:
        devpersist.dump({"w": arr, "pad": "x" * 64}, files["dvp"])
    pad = 300  # a string in the graph before the array moves it along
    for _ in range(16):
        devpersist.dump({"pad": "x" * pad, "w": arr}, files["aligned"])
        offset = devpersist.info(files["aligned"])["arrays"][0]["offset"]
        if offset % 4096 == 0:
            break
        pad += (4096 - offset % 4096) % 4096
    else:
        raise RuntimeError("could not place the array at a page-aligned offset")
    with open(files["pkl"], "wb") as f:
        pickle.dump({"w": arr}, f, protocol=5)
    return files


def run_child(mode: str, files: dict[str, str], loads: int, cpus: int = 0) -> list[float]:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", mode, json.dumps(files)]
    cmd += ["--loads", str(loads), "--cpus", str(cpus)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode:
        raise RuntimeError(f"{mode}: child failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def measure(
    mib: int,
    directory: str,
    processes: int,
    loads: int,
    modes: tuple[str, ...],
    seed: int = 0,
    cpus: int = 0,
) -> dict[str, list[list[float]]]:
    """mode -> one list of seconds per fresh process; rounds interleave the modes."""
    from _util import log

    files = make_files(directory, mib)
    rng = random.Random(seed)
    out: dict[str, list[list[float]]] = {m: [] for m in modes}
    try:
        for r in range(processes):
            order = list(modes)
            rng.shuffle(order)
            log(f"  {mib} MiB: round {r + 1}/{processes}")
            for mode in order:
                out[mode].append(run_child(mode, files, loads, cpus))
    finally:
        for path in files.values():
            if os.path.exists(path):
                os.remove(path)
    return out


def summary(per_process: list[list[float]]) -> dict[str, float]:
    """Across processes: first operation and per-process median, min / median / max."""
    firsts = [t[0] for t in per_process]
    medians = [statistics.median(t) for t in per_process]
    return {
        "first_min": min(firsts),
        "first_med": statistics.median(firsts),
        "first_max": max(firsts),
        "proc_min": min(medians),
        "proc_med": statistics.median(medians),
        "proc_max": max(medians),
        # a process is "slow" when its median is over twice the fastest process's
        "slow": sum(m > 2 * min(medians) for m in medians),
    }


def markdown(mib: int, results: dict[str, list[list[float]]], loads: int) -> str:
    from _util import md_table

    nbytes = mib * MiB
    ref = summary(results["raw read"])["proc_med"] if "raw read" in results else None
    rows = []
    for mode, per_process in results.items():
        s = summary(per_process)
        rows.append(
            [
                mode,
                f"{s['first_min'] * 1e3:.1f} / {s['first_med'] * 1e3:.1f} / "
                f"{s['first_max'] * 1e3:.1f}",
                f"{s['proc_min'] * 1e3:.1f} / {s['proc_med'] * 1e3:.1f} / "
                f"{s['proc_max'] * 1e3:.1f}",
                f"{nbytes / s['proc_med'] / 1e9:.2f}",
                f"{s['proc_med'] / ref:.2f}x" if ref else "n/a",
                f"{s['slow']} of {len(per_process)}",
            ]
        )
    header = [
        "mode",
        "first op, ms (min / median / max)",
        f"per-process median of {loads}, ms (min / median / max)",
        "GB/s (median)",
        "time / raw read",
        "slow processes (> 2x the best)",
    ]
    return f"**{mib} MiB**\n\n" + md_table(header, rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", default="88", help="sizes in MiB, comma-separated (88)")
    parser.add_argument("--processes", type=int, default=12, help="fresh processes per mode")
    parser.add_argument("--loads", type=int, default=5, help="operations per process")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated modes")
    parser.add_argument(
        "--dir", default=None, help="where the files go (default /dev/shm, else the temp dir)"
    )
    parser.add_argument(
        "--cpus", type=int, default=0, help="limit each process to this many cores (0: all)"
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 8 MiB, 2 x 2")
    parser.add_argument("--json", metavar="PATH", help="also write the raw timings")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "FILES"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child[0], json.loads(args.child[1]), args.loads, args.cpus)))
        return 0
    if args.quick:
        args.mib, args.processes, args.loads = "8", 2, 2
    modes = tuple(m.strip() for m in args.modes.split(",") if m.strip())
    unknown = set(modes) - set(MODES)
    if unknown:
        parser.error(f"unknown modes: {sorted(unknown)}; known: {', '.join(MODES)}")
    base = args.dir or ("/dev/shm" if os.path.isdir("/dev/shm") else None)
    from _util import load_average_line, machine_info, machine_markdown

    load_before = os.getloadavg()
    out = ["# Read/hash overlap across fresh processes\n", machine_markdown(machine_info())]
    out.append(
        f"\nCommand: `python benchmarks/bench_overlap.py {' '.join(sys.argv[1:])}`; files in "
        f"`{base or tempfile.gettempdir()}` (hot in the page cache); {args.processes} fresh "
        f"processes per mode, {args.loads} operations each"
        + (f", each limited to {args.cpus} core(s)" if args.cpus else "")
        + ".\n"
    )
    raw: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="devpersist-overlap-", dir=base) as directory:
        for mib in (int(x) for x in args.mib.split(",")):
            results = measure(mib, directory, args.processes, args.loads, modes, cpus=args.cpus)
            raw[str(mib)] = results
            out.append(markdown(mib, results, args.loads) + "\n")
    load_after = os.getloadavg()
    out.append(load_average_line(load_before, load_after))
    print("\n".join(out))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(raw, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
