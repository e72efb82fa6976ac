"""A serving process for the SYCL suite: ``python _sycl_serve.py JOB.json``.

It behaves like a real server: imports scikit-learn before devpersist, loads every file
of the job with each of the job's load options (``loads``: ``{mode: options}``; one
process serves several modes, so the SYCL device's kernels are compiled once), and
computes every output from a worker thread (scikit-learn's configuration is
thread-local). With ``"block": true`` dpnp and dpctl cannot be imported at all. Writes
``RESULT.json`` (per mode and file: warnings, configuration, each output's type, dtype,
shape, device and USM type, or the error) and one ``MODE-NAME.npz`` of output values per
mode and file, next to the job.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any


class _Blocked:
    """A meta path finder that makes the named top-level packages unimportable."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name.partition(".")[0] in self.names:
            raise ImportError(f"{name} is blocked in this serving process")


def main(job_path: str) -> None:
    job = json.loads(Path(job_path).read_text())
    if job.get("block"):
        sys.meta_path.insert(0, _Blocked(("dpnp", "dpctl")))
    start = time.perf_counter()
    import warnings
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np
    import sklearn  # noqa: F401  (a real server imports its libraries before devpersist)
    from _sycl_cases import describe, host_values, outputs

    import devpersist

    X = np.load(job["X"])
    if job["input"] == "dpnp":
        import dpnp

        X = dpnp.asarray(X, device=job.get("input_device"))
    results: dict[str, dict[str, Any]] = {}
    pool = ThreadPoolExecutor(1)
    for mode, options in job["loads"].items():
        results[mode] = {}
        for name, file in job["files"].items():
            record: dict[str, Any] = {}
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    est = devpersist.load(file, **options)
                record["warnings"] = [[w.category.__name__, str(w.message)] for w in caught]
                record["config"] = getattr(est, "devpersist_config", None)
                got = pool.submit(outputs, est, X).result()
                record["outputs"] = {k: describe(v) for k, v in got.items()}
                values = {k: host_values(v) for k, v in got.items()}
                np.savez(Path(job_path).parent / f"{mode}-{name}.npz", **values)
            except Exception as exc:
                record["error"] = f"{type(exc).__name__}: {exc}"[:2000]
            results[mode][name] = record
    report = {
        "results": results,
        "modules": sorted(m for m in ("dpnp", "dpctl") if m in sys.modules),
        "seconds": time.perf_counter() - start,
    }
    (Path(job_path).parent / "RESULT.json").write_text(json.dumps(report, default=str))


if __name__ == "__main__":
    main(sys.argv[1])
