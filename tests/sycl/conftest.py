"""The SYCL suite's setup: a real SYCL device without a GPU (README, "SYCL tests").

``intel-opencl-rt`` installs Intel's OpenCL CPU runtime into the environment's ``lib/``,
but the OpenCL loader only finds it through ``OCL_ICD_FILENAMES`` and ``OCL_ICD_VENDORS``.
They are set here, from ``sys.prefix``, before anything imports dpctl (the loader reads
them when SYCL first lists its platforms), so nobody has to set them by hand; serving
processes the tests start inherit them, and a kernel cache for the session (below). Where the runtime is not installed (the main test
environment) nothing is set and every test here skips.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

_RUNTIME = Path(sys.prefix) / "lib" / "libintelocl.so"
if _RUNTIME.exists() and "dpctl" not in sys.modules:
    os.environ.setdefault("OCL_ICD_FILENAMES", str(_RUNTIME))
    os.environ.setdefault("OCL_ICD_VENDORS", str(Path(sys.prefix) / "etc" / "OpenCL" / "vendors"))
    # Each kernel's first use on the OpenCL CPU device compiles it (JIT: about 1 s for
    # PCA, 6-9 s for a random forest). The SYCL runtime's kernel cache, in a folder made
    # for this session and removed after it (so every run starts cold), lets the
    # serving processes reuse what the fitting compiled instead of compiling it again.
    if "SYCL_CACHE_DIR" not in os.environ:
        _JIT_CACHE = tempfile.mkdtemp(prefix="devpersist-sycl-kernels-")
        atexit.register(shutil.rmtree, _JIT_CACHE, ignore_errors=True)
        os.environ["SYCL_CACHE_DIR"] = _JIT_CACHE
        os.environ.setdefault("SYCL_CACHE_PERSISTENT", "1")

sys.path.insert(0, str(Path(__file__).parent))  # _sycl_cases, shared with the serving child
sys.path.append(str(Path(__file__).parent.parent))  # tests/_repack


@pytest.fixture(scope="session")
def sycl() -> Any:
    """dpnp on a SYCL device, and sklearnex with oneDAL's DPC++ backend; skips without."""
    dpnp = pytest.importorskip("dpnp")
    dpctl = pytest.importorskip("dpctl")
    if not dpctl.get_devices():
        pytest.skip("no SYCL device (is intel-opencl-rt installed?)")
    return dpnp


@pytest.fixture(scope="session")
def sklearnex_dpc(sycl: Any) -> Any:
    sklearnex = pytest.importorskip("sklearnex")
    import onedal

    if getattr(onedal, "_dpc_backend", None) is None:
        pytest.skip("this sklearnex has no DPC++ backend (install scikit-learn-intelex-gpu)")
    return sklearnex
