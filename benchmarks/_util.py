"""Helpers for the benchmarks: machine description, timing, memory, markdown tables."""

from __future__ import annotations

import gc
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import timeit
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import Any

MiB = 2**20
GB = 1e9  # throughput is reported in decimal GB/s (1e9 bytes per second)

LIBRARIES = (
    "devpersist",
    "numpy",
    "scikit-learn",
    "joblib",
    "skops",
    "safetensors",
    "torch",
    "xxhash",
    "zstandard",
    "lz4",
    "psutil",
)


# --------------------------------------------------------------------------- machine


def _cpu_model() -> str:
    """The CPU's model name, from ``/proc/cpuinfo`` (Linux), else ``platform``."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git_revision() -> str:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "devpersist"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if not rev:
        return "unknown"
    return rev + (" + uncommitted changes to devpersist/" if dirty else "")


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _physical_cores() -> int | str:
    try:
        import psutil

        return int(psutil.cpu_count(logical=False) or 0) or "unknown"
    except ImportError:
        pass
    try:  # distinct (physical id, core id) pairs in /proc/cpuinfo
        cores, phys = set(), "0"
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "physical id":
                    phys = value.strip()
                elif key.strip() == "core id":
                    cores.add((phys, value.strip()))
        return len(cores) or "unknown"
    except OSError:
        return "unknown"


def _ram_gib() -> float | str:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return "unknown"


def machine_info() -> dict[str, Any]:
    logical = os.cpu_count()
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        usable = logical
    return {
        "cpu": _cpu_model(),
        "cores_physical": _physical_cores(),
        "cores_logical": logical,
        "cores_usable": usable,
        "ram_gib": _ram_gib(),
        "os": f"{platform.system()} {platform.release()} ({platform.machine()})",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "versions": {name: _version(name) for name in LIBRARIES},
        "devpersist_git": _git_revision(),
    }


def machine_markdown(info: dict[str, Any]) -> str:
    lines = [
        f"- CPU: {info['cpu']}, {info['cores_physical']} physical / "
        f"{info['cores_logical']} logical cores ({info['cores_usable']} usable by this process)",
        f"- RAM: {info['ram_gib']} GiB",
        f"- OS: {info['os']}",
        f"- Python: {info['python']}",
        "- Libraries: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()),
        f"- devpersist source: git {info['devpersist_git']}",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- timing


def time_per_op(fn: Callable[[], Any], repeat: int, min_seconds: float) -> list[float]:
    """Seconds per call of ``fn``, one figure per repeat (``timeit.repeat``).

    The number of calls per repeat is chosen so that a repeat lasts ``min_seconds`` at
    least (the idea of ``Timer.autorange``, with a configurable floor).
    """
    timer = timeit.Timer(fn)
    number = 1
    while True:
        elapsed = timer.timeit(number)
        if elapsed >= min_seconds:
            break
        number = max(number * 2, int(number * min_seconds / max(elapsed, 1e-9) * 1.1))
    times = timer.repeat(repeat=repeat, number=number)
    return [t / number for t in times]


def time_interleaved(
    fns: dict[str, Callable[[], Any]], repeat: int, min_seconds: float, budget_s: float
) -> dict[str, list[float]]:
    """Seconds per call of each of ``fns``, ``repeat`` samples each, taken in rounds.

    Each round takes one sample of every function in turn, so that drift on a busy
    machine (other processes, frequency changes) is shared rather than landing on one
    tool. A sample runs enough calls to last ``min_seconds``; a function whose one call
    is slow gets fewer samples (at least 3) so that it spends about ``budget_s`` in all.
    """
    numbers: dict[str, int] = {}
    samples: dict[str, int] = {}
    for name, fn in fns.items():
        timer = timeit.Timer(fn)
        number = 1
        while True:
            elapsed = timer.timeit(number)  # also a warm-up
            if elapsed >= min_seconds:
                break
            number = max(number * 2, int(number * min_seconds / max(elapsed, 1e-9) * 1.1))
        numbers[name] = number
        samples[name] = max(3, min(repeat, int(budget_s / max(elapsed, 1e-9))))
    out: dict[str, list[float]] = {name: [] for name in fns}
    for r in range(max(samples.values(), default=0)):
        for name, fn in fns.items():
            if r < samples[name]:
                out[name].append(timeit.Timer(fn).timeit(numbers[name]) / numbers[name])
    return out


def time_once(fn: Callable[[], Any], before: Callable[[], Any] | None = None) -> float:
    """Wall seconds of one call of ``fn``; ``before`` runs untimed first.

    The cyclic garbage collector is off while timing, as in ``timeit``.
    """
    if before is not None:
        before()
    enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start
    finally:
        if enabled:
            gc.enable()


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


# --------------------------------------------------------------------------- memory


def _proc_status(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    return None


def reset_peak_rss() -> bool:
    """Reset the process's peak RSS to its current RSS (Linux >= 4.0); True on success.

    Needed because ``ru_maxrss`` survives fork and exec on Linux: a child started by a
    big parent reports the parent's peak until it exceeds it.
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return _proc_status("VmHWM") is not None


def current_rss_bytes() -> int:
    """The process's resident set size now (``/proc/self/statm``, else psutil)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import psutil

        return int(psutil.Process().memory_info().rss)


def peak_rss_bytes() -> int:
    """The process's peak resident set size (``VmHWM``, else ``ru_maxrss``)."""
    hwm = _proc_status("VmHWM")
    if hwm is not None:
        return hwm
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # KiB on Linux


def page_aligned_empty(nbytes: int) -> Any:
    """A fresh uint8 numpy array of ``nbytes`` starting on a 4 KiB boundary.

    A reference read must not land in the kernel's slow case: a copy whose destination
    lies 1 to 63 bytes after its source modulo 4 KiB runs at a third of the speed on
    CPUs whose ``rep movsb`` stalls on 4K aliasing (see ``devpersist._pipeline``), and
    a plain ``np.empty`` of a large size starts 16 bytes into a page.
    """
    import numpy as np

    raw = np.empty(nbytes + 4096, dtype=np.uint8)
    start = -raw.ctypes.data % 4096
    return raw[start : start + nbytes]


# --------------------------------------------------------------------------- output


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]], align: str | None = None) -> str:
    """A markdown table; ``align`` is one character per column, 'l' or 'r'."""
    align = align or "l" + "r" * (len(header) - 1)
    sep = ["---:" if a == "r" else "---" for a in align]
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join(sep) + " |"]
    for row in rows:
        out.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(out)


def fmt_us(seconds: float) -> str:
    us = seconds * 1e6
    if us >= 100:
        return f"{us:,.0f}"
    return f"{us:.1f}"


def fmt_ratio(x: float) -> str:
    return f"{x:.2f}x"


_T0 = time.perf_counter()


def log(*args: Any) -> None:
    """Progress on stderr, with the seconds since start."""
    print(f"[{time.perf_counter() - _T0:6.1f} s]", *args, file=sys.stderr, flush=True)


def load_average_line(before: Sequence[float], after: Sequence[float]) -> str:
    """The report's last words: the machine's load average (1, 5, 15 min) around the run,
    so that a reader can tell a quiet run from a busy one."""
    return (
        "Load average (1, 5, 15 min) before: "
        + ", ".join(f"{x:.2f}" for x in before)
        + "; after: "
        + ", ".join(f"{x:.2f}" for x in after)
        + "."
    )
