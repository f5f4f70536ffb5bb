import os

import numpy as np
import pytest


# The CUDA simulator suite runs in its own process (scripts/test.sh).
collect_ignore = [] if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" else ["cuda"]


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture
def pyplot():
    """matplotlib.pyplot on the Agg backend (skips without matplotlib); closes the
    figures after the test."""
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    yield plt
    plt.close("all")
