import os

# scikit-learn's array API dispatch needs scipy's, which scipy reads once at import:
# set it before anything imports scipy (scikit-learn's own test suite does the same).
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
