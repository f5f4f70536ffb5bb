"""Compiled kernels are cached on disk: a second process compiles nothing; and a cold
first step has its backward kernels compiled by a helper process.

The kernels specialised per activation and dropout setting are closures
(fastdnn.cpu._common.specialised); Numba keys their cache entries by the values they
close over, and this checks that those entries are found again.
"""
import glob
import json
import os
import subprocess
import sys

import pytest

from fastdnn import config

# One training step of a small model using every kind of CPU kernel the step needs
# (dense, BatchNorm with ReLU and dropout, softmax loss, Adam); prints the qualified
# names of the Numba functions it had to compile rather than load from the cache.
_STEP = """
import json
import numpy as np
from numba.core import event
import fastdnn

compiled = []

class Recorder(event.Listener):
    def on_start(self, ev):
        compiled.append(ev.data["dispatcher"].py_func.__qualname__)

    def on_end(self, ev):
        pass

event.register("numba:compile", Recorder())
rng = np.random.default_rng(0)
X = rng.standard_normal((7, 5)).astype(np.float32)
y = rng.integers(0, 3, 7)
model = fastdnn.MLP([5, 4, 3], batchnorm=True, keep_prob=0.8, backend="cpu", seed=0)
model.train_step(X, y, fastdnn.Adam())
print(json.dumps(compiled))
"""


def _compiled_in_new_process(**env):
    done = subprocess.run([sys.executable, "-c", _STEP], capture_output=True, text=True,
                          check=True, timeout=300, env={**os.environ, **env})
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.skipif(not config.CACHE, reason="FASTDNN_NO_CACHE is set")
def test_second_process_compiles_nothing():
    _compiled_in_new_process()  # fills the cache where earlier tests have not
    assert _compiled_in_new_process() == []


@pytest.mark.skipif(not config.CACHE, reason="FASTDNN_NO_CACHE is set")
def test_cold_first_step_has_its_backward_compiled_by_a_helper(tmp_path):
    # an empty cache: this process compiles the forward kernels, the helper the backward
    # ones and Adam's, which this process then loads from the cache
    env = dict(NUMBA_CACHE_DIR=str(tmp_path), FASTDNN_COMPILE_AHEAD="1")
    compiled = _compiled_in_new_process(**env)
    assert "_train_forward.<locals>.kernel" in compiled
    backward = {"_backward.<locals>.kernel", "_backward_epilogue.<locals>.kernel", "_adam"}
    assert not backward & set(compiled)
    assert len(glob.glob(str(tmp_path / "**" / "fastdnn-compiled-*.marker"),
                         recursive=True)) == 1
    # warm now: no helper, nothing compiled
    assert _compiled_in_new_process(**env) == []
