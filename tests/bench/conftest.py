"""Micro-benchmarks of the hot kernels (pytest-benchmark), skipped in the normal run.

Run them with:  pytest tests/bench --benchmark-only
(needs the [bench] extra; --benchmark-only is pytest-benchmark's own flag).
"""
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(config, items):
    try:
        wanted = config.getoption("benchmark_only")
    except ValueError:  # pytest-benchmark is not installed: the modules skip themselves
        wanted = False
    if wanted:
        return
    skip = pytest.mark.skip(reason="micro-benchmark: run with pytest tests/bench --benchmark-only")
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(skip)


@pytest.fixture(params=["numpy", "cpu"])
def K(request):
    """The kernel module of each backend that can be imported here."""
    from fastdnn.backend import kernels
    try:
        module = kernels(request.param)
    except (ImportError, RuntimeError) as exc:
        pytest.skip(f"backend {request.param!r} unavailable: {exc}")
    return module


@pytest.fixture
def rng():
    return np.random.default_rng(0)
