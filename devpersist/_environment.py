"""What made a file: library versions and the platform, recorded in the manifest.

Writing records :func:`environment` (and the devices' names, :func:`cpu_name` for the
host); loading compares the recorded versions with this process's (:func:`mismatches`,
by :data:`POLICY`) and validates the section (:func:`validate_environment`). Everything
here is computed once per process: versions come from the imported module's
``__version__`` where that is the release (checked by a test), else from the installed
distribution's metadata (about 3 ms each to parse); the CPU's name from
``/proc/cpuinfo`` (``platform.processor()`` spawns ``uname -p``, 7-14 ms).
"""

from __future__ import annotations

import platform
import sys
from functools import cache, lru_cache
from importlib import metadata
from typing import Any

from .arrays import distributions

#: distribution name -> the module that tells whether it is in use in this process,
#: besides the array libraries (the registry lists those: ``arrays.distributions()``)
OTHER_PACKAGES = {
    "scipy": "scipy",
    "scikit-learn": "sklearn",
    "scikit-learn-intelex": "sklearnex",
    "daal": "daal4py",
    "array-api-compat": "array_api_compat",
    "pandas": "pandas",
}
#: Distributions whose module's ``__version__`` is the release metadata reports
#: (sklearnex's is not: it says 2199.9.9 on release builds; CuPy's distribution is
#: named per CUDA version).
DUNDER_VERSION = frozenset(
    "numpy scipy scikit-learn torch array-api-compat array-api-strict pandas jax".split()
)


def packages() -> dict[str, str]:
    """``{distribution: module}`` of every package whose version a file records."""
    return {**distributions(), **OTHER_PACKAGES}


@cache
def _version(dist: str) -> str | None:
    module = sys.modules.get(packages().get(dist, "")) if dist in DUNDER_VERSION else None
    version = getattr(module, "__version__", None)
    if version is not None:
        return str(version)
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


_cache: dict[frozenset[str], dict[str, Any]] = {}


def environment() -> dict[str, Any]:
    """Versions of the packages loaded in this process (looked up once each)."""
    table = packages()
    loaded = frozenset(m for m in table.values() if m in sys.modules)
    cached = _cache.get(loaded)
    if cached is None:
        cached = _cache[loaded] = _environment(table)
    return cached


def _environment(table: dict[str, str]) -> dict[str, Any]:
    from ._version import __version__

    packages = {"devpersist": __version__}
    for dist, module in table.items():
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


def validate_environment(env: Any) -> None:
    """The recorded environment is data we act on (version policy): check its shape."""
    from ._exceptions import FormatError

    if not isinstance(env, dict) or set(env) - {"python", "platform", "packages", "devices"}:
        raise FormatError("the manifest's environment has unknown or malformed fields")
    for key in ("python", "platform"):
        if key in env and not (isinstance(env[key], str) and len(env[key]) <= 256):
            raise FormatError(f"the manifest's environment {key} must be a short string")
    for key in ("packages", "devices"):
        section = env.get(key, {})
        if not isinstance(section, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and len(k) <= 256 and len(v) <= 256
            for k, v in section.items()
        ):
            raise FormatError(f"the manifest's environment {key} must map short strings to strings")


# --------------------------------------------------------------------------- policy

#: distribution -> rule: "same" (equal versions), "minor" (same major, same or higher
#: minor), "major" (same major). scikit-learn-intelex's documented rules, plus numpy's ABI.
POLICY = {
    "scikit-learn": "same",
    "scikit-learn-intelex": "same",
    "daal": "minor",
    "python": "minor",
    "numpy": "major",
}
_ADVICE = {
    "same": "install the saved version",
    "minor": "use the same major version with the same or a higher minor version",
    "major": "use the same major version",
}


class VersionMismatchWarning(UserWarning):
    """The file was written with library versions this environment may not load right."""


def _parts(version: str) -> tuple[int, ...]:
    out = []
    for piece in version.replace("+", ".").split("."):
        digits = "".join(ch for ch in piece if ch.isdigit()) if piece[:1].isdigit() else ""
        if not digits:
            break
        out.append(int(digits))
    return tuple(out)


def _compatible(rule: str, saved: str, current: str) -> bool:
    if rule == "same":
        return saved == current
    s, c = _parts(saved), _parts(current)
    if not s or not c or s[0] != c[0]:
        return False
    if rule == "minor":
        return c[1:2] >= s[1:2]
    return True


def current_version(dist: str) -> str | None:
    if dist == "python":
        return platform.python_version()
    return _version(dist)


_mismatch_cache: dict[Any, list[tuple[str, str, str, str]]] = {}


def mismatches(recorded: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """``(package, saved, current, advice)`` for each version outside the policy."""
    key = (recorded.get("python"), tuple(sorted(recorded.get("packages", {}).items())))
    rows = _mismatch_cache.get(key)
    if rows is None:
        rows = _mismatches(recorded)
        if len(_mismatch_cache) < 256:
            _mismatch_cache[key] = rows
    return list(rows)


def _mismatches(recorded: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    saved_versions = {"python": recorded.get("python"), **recorded.get("packages", {})}
    rows = []
    for dist, rule in POLICY.items():
        saved = saved_versions.get(dist)
        if not isinstance(saved, str):
            continue
        current = current_version(dist)
        if current is None:
            rows.append((dist, saved, "not installed", f"install {dist}=={saved}"))
        elif not _compatible(rule, saved, current):
            rows.append((dist, saved, current, _ADVICE[rule]))
    return rows


def mismatch_table(rows: list[tuple[str, str, str, str]]) -> str:
    header = ("package", "saved", "current", "what to do")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    lines = [
        "  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()
        for row in [header, *rows]
    ]
    return "\n".join(lines)


@cache
def cpu_name() -> str:
    """The host CPU's model name, recorded as the name of the ``cpu`` device.

    ``/proc/cpuinfo`` where it names the model (Linux); else ``platform.processor()``,
    which spawns ``uname -p`` on some systems, so it is asked only then; else the machine
    type. Once per process.
    """
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    if name:
                        return name
    except OSError:
        pass
    return platform.processor() or platform.machine()
