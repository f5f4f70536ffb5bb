import os

import pytest

if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
    pytest.skip("CUDA simulator tests run with NUMBA_ENABLE_CUDASIM=1", allow_module_level=True)
