"""What a file records about the process that wrote it (``_environment``)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from importlib import metadata

import pytest

from devpersist import _environment


@pytest.mark.parametrize("dist", sorted(_environment.DUNDER_VERSION))
def test_fast_versions_equal_the_installed_metadata(dist):
    module = _environment.packages()[dist]
    pytest.importorskip(module)
    try:
        expected = metadata.version(dist)
    except metadata.PackageNotFoundError:
        pytest.skip(f"{dist} is importable but not installed as a distribution")
    _environment._version.cache_clear()
    assert _environment._version(dist) == expected


def test_the_array_libraries_come_from_the_registry():
    from devpersist.arrays import distributions

    table = _environment.packages()
    assert {"numpy": "numpy", "torch": "torch", "array-api-strict": "array_api_strict"}.items() <= (
        table.items()
    )
    assert distributions().items() <= table.items()


def test_first_dump_spawns_no_process():
    # platform.processor() runs ``uname -p`` in a subprocess (7-14 ms on a cold start)
    code = textwrap.dedent(
        """
        import subprocess
        calls = []
        real = subprocess.Popen.__init__
        def spy(self, args, *a, **k):
            calls.append(args)
            return real(self, args, *a, **k)
        subprocess.Popen.__init__ = spy
        import numpy as np
        import devpersist
        from devpersist._environment import cpu_name
        devpersist.loads(devpersist.dumps({"x": np.arange(3)}))
        assert cpu_name()
        print(calls)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
