import os

import numpy as np
import pytest


# The CUDA simulator suite runs in its own process (scripts/test.sh).
collect_ignore = [] if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" else ["cuda"]


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
