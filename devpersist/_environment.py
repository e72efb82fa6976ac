"""What made a file: library versions and the platform, recorded in the manifest."""

from __future__ import annotations

import platform
import sys
from functools import lru_cache
from importlib import metadata
from typing import Any

#: distribution name -> the module that tells whether it is in use in this process
PACKAGES = {
    "numpy": "numpy",
    "scipy": "scipy",
    "scikit-learn": "sklearn",
    "scikit-learn-intelex": "sklearnex",
    "daal": "daal4py",
    "torch": "torch",
    "cupy": "cupy",
    "array-api-compat": "array_api_compat",
    "array-api-strict": "array_api_strict",
    "jax": "jax",
    "dpnp": "dpnp",
    "pandas": "pandas",
}


@lru_cache(maxsize=None)
def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


_cache: dict[frozenset[str], dict[str, Any]] = {}


def environment() -> dict[str, Any]:
    """Versions of the packages loaded in this process (looked up once each)."""
    loaded = frozenset(m for m in PACKAGES.values() if m in sys.modules)
    cached = _cache.get(loaded)
    if cached is None:
        cached = _cache[loaded] = _environment()
    return cached


def _environment() -> dict[str, Any]:
    from ._version import __version__

    packages = {"devpersist": __version__}
    for dist, module in PACKAGES.items():
        if module in sys.modules:
            version = _version(dist)
            if version is not None:
                packages[dist] = version
    return {
        "python": platform.python_version(),
        "platform": _platform(),
        "packages": packages,
    }


@lru_cache(maxsize=1)
def _platform() -> str:
    return f"{platform.system()}-{platform.machine()}"
