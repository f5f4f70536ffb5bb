import os

import numpy as np
import pytest

# No compile-ahead helper processes in the suite (tests/test_kernel_cache.py turns it on
# where it tests it): each model configuration's first step would start one.
os.environ.setdefault("FASTDNN_COMPILE_AHEAD", "0")

# The CUDA simulator suite runs in its own process (scripts/test.sh).
collect_ignore = [] if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" else ["cuda"]


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
