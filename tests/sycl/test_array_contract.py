"""The array-handler contract of tests/test_arrays.py, run for dpnp on the SYCL device.

tests/test_arrays.py's own ``TestDpnp`` skips where dpnp is missing and, outside this
folder, finds no SYCL device (conftest.py here makes the OpenCL CPU device visible).
"""

from __future__ import annotations

import pytest
from test_arrays import ArrayContract, DpnpLib


class TestDpnpOnSycl(ArrayContract):
    @pytest.fixture
    def lib(self, sycl):
        return DpnpLib(sycl)
