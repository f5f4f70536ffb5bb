"""Compiled code is cached on disk: a second process compiles nothing.

The engine's work items are compiled on their own and called through symbols
(fastdnn.engine._link); a process that loads their callers from the cache must load
them first, which this checks too (a missing symbol would abort the process).
"""
import json
import os
import subprocess
import sys

import pytest

from fastdnn import config

# One training step and a prediction of a small model with every kind of layer (dense,
# BatchNorm with ReLU and dropout, softmax loss, Adam); prints the qualified names of
# the Numba functions it had to compile rather than load from the cache.
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
model.predict(X)
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


@pytest.mark.skipif(not config.CACHE or (os.cpu_count() or 1) < 2,
                    reason="needs the disk cache and two cores")
def test_cold_first_step_compiles_half_of_the_items_in_a_helper(tmp_path):
    """With an empty cache the backward items (weight_grad, input_grad, update_layer,
    optimize) are compiled by a helper process while this one compiles the forward
    ones; this process then loads them from the cache, and marks the set compiled."""
    env = dict(NUMBA_CACHE_DIR=str(tmp_path))
    compiled = _compiled_in_new_process(**env)
    assert "forward_hidden" in compiled
    assert not {"weight_grad", "input_grad", "update_layer", "optimize"} & set(compiled)
    markers = [n for _, _, files in os.walk(tmp_path) for n in files
               if n.startswith("fastdnn-ahead-")]
    assert len(markers) == 1
    assert _compiled_in_new_process(**env) == []   # warm: no helper, nothing compiled


def test_compile_ahead_memo_tells_apart_what_numba_types_tell_apart():
    """The cheap key that skips a set already compiled differs wherever numba.typeof
    differs (dtype, ndim, layout, read-only, nesting), so no new signature is skipped."""
    import numpy as np
    from numba import typeof

    from fastdnn.engine._link import _type_facts
    a = np.zeros((4, 6), np.float32)
    read_only = a.copy()
    read_only.flags.writeable = False
    variants = [a, a.astype(np.float64), a.ravel(), a[:, ::2], np.asfortranarray(a),
                read_only, (a, 0), (a, (a, 0)), (a, 0.5), (a, np.float32(0.5)),
                (a, 2**63)]
    facts = [_type_facts(v) for v in variants]
    types_ = [typeof(v) for v in variants]
    for i in range(len(variants)):
        for j in range(i):
            assert (facts[i] == facts[j]) == (types_[i] == types_[j]), (i, j)
    assert _type_facts(a.copy()) == _type_facts(a)   # same types, same key


def test_compile_helper_never_runs_code_from_the_working_directory(tmp_path, monkeypatch):
    """A module in the user's working directory named like one the helper imports
    (numba.py) is not imported by the helper process (#15)."""
    from fastdnn.engine import _link
    marker = tmp_path / "ran"
    (tmp_path / "numba.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    (tmp_path / "fastdnn.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    monkeypatch.chdir(tmp_path)
    assert _link._Helper([]).wait()      # it ran (imported the real numba) and succeeded
    assert not marker.exists()
