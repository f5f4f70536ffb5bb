"""Compile every kernel for the argument types the public functions really launch it with.

The simulator runs kernels as Python, so a launch whose argument types the CUDA target
would reject (say a 2-D placeholder where a kernel indexes a 1-D array, even in a branch
never taken) passes here. This test records the numba type of every argument of every
launch made by a sweep of public calls, then compiles each distinct signature to PTX in
a subprocess without the simulator. Skipped where numba-cuda or NVVM/NVRTC is missing.
"""
import importlib
import importlib.util
import os
import pickle
import subprocess
import sys
import textwrap

import numba
import numpy as np
import pytest

from fastdnn import config, reference as R
import fastdnn.cuda as fc

MODULES = ["fastdnn.cuda._device", "fastdnn.cuda.activations", "fastdnn.cuda.dense",
           "fastdnn.cuda.batchnorm", "fastdnn.cuda.losses", "fastdnn.cuda.optim",
           "fastdnn.cuda.engine"]

COMPILE = textwrap.dedent("""
    import importlib, pickle, sys, types
    import numba.cuda.dispatcher as dispatcher
    from numba.cuda import compile_ptx
    from numba.cuda.cudadrv.error import CudaSupportError
    try:   # a device for formulas.leaky_slope's @overload (see tests/test_cuda_compile.py)
        dispatcher.get_current_device()
    except CudaSupportError:
        dispatcher.get_current_device = lambda: types.SimpleNamespace(
            compute_capability=(8, 0))
    failures = []
    for module, name, sig in pickle.load(open(sys.argv[1], "rb")):
        fn = getattr(importlib.import_module(module), name).py_func
        try:
            compile_ptx(fn, sig, cc=(8, 0))
        except Exception as exc:
            failures.append(f"{module}.{name}{sig}: {type(exc).__name__}: "
                            f"{str(exc).splitlines()[0][:300]}")
    print("\\n".join(failures))
    sys.exit(1 if failures else 0)
""")


def _arg_type(a):
    if hasattr(a, "_ary"):  # the simulator's device array
        return numba.typeof(a._ary)
    return numba.typeof(a)


@pytest.fixture
def recorded(monkeypatch):
    seen = set()

    class Recorder:
        def __init__(self, module, name, kernel):
            self.module, self.name, self.kernel = module, name, kernel

        def __getitem__(self, config_):
            launch = self.kernel[config_]

            def run(*args):
                seen.add((self.module, self.name, tuple(_arg_type(a) for a in args)))
                return launch(*args)
            return run

    for module in MODULES:
        mod = importlib.import_module(module)
        for name, value in list(vars(mod).items()):
            if type(value).__name__ == "FakeCUDAKernel" and not value._device:
                monkeypatch.setattr(mod, name, Recorder(module, name, value))
    monkeypatch.setattr(config, "THREADS_PER_BLOCK", 32)
    return seen


def _sweep(rng, dtype):
    m, n_in, n = 5, 4, 3
    X = rng.standard_normal((m, n_in)).astype(dtype)
    W = rng.standard_normal((n, n_in)).astype(dtype)
    b = rng.standard_normal(n).astype(dtype)
    for bias in (b, None):
        for kp in (1.0, 0.5):
            out, act = fc.dense_forward(X, W, bias, "relu", kp, 3)
            fc.dense_backward(out.copy(), X, W, act, "relu", kp, 3, lambd=0.1,
                              with_bias=bias is not None)
    g, be = np.ones(n, dtype), np.zeros(n, dtype)
    rm, rv = np.zeros(n, dtype), np.ones(n, dtype)
    for training in (True, False):
        res = fc.batchnorm_activation_forward(out, g, be, rm, rv, 0.9, 1e-5, training,
                                              "tanh", 0.8, 5)
        fc.batchnorm_forward(out, g, be, rm, rv, training=training)
    fc.batchnorm_activation_backward(out.copy(), res[1], *fc.batchnorm_activation_forward(
        out, g, be, rm, rv)[2:], g, "tanh", 0.8, 5)
    fc.batchnorm_backward(out.copy(), out, g, g)
    Y = R.one_hot(np.arange(m) % n, n, dtype)
    fc.softmax_cross_entropy(out, Y)
    fc.softmax_cross_entropy(out, np.arange(m) % n)
    fc.sigmoid_cross_entropy(out, Y)
    fc.mean_squared_error(out, Y)
    fc.softmax(out), fc.log_softmax(out), fc.sigmoid(out), fc.l2_grad(out, 0.1, 5)
    fc.activation_forward(out, "tanh"), fc.activation_backward(out, out, "tanh")
    fc.dropout_forward(out, 0.5, 1), fc.dropout_mask((m, n), 0.5, 1)
    p, gr = X.copy(), X.copy()
    fc.sgd_update(p, gr, 0.1)
    fc.momentum_update(p, gr, X.copy(), 0.1)
    fc.nesterov_update(p, gr, X.copy(), 0.1)
    fc.rmsprop_update(p, gr, np.abs(X), 0.1)
    fc.adam_update(p, gr, X.copy(), np.abs(X), 1, 0.1)
    fc.adamw_update(p, gr, X.copy(), np.abs(X), 1, 0.1)
    fc.zeros_like(fc.to_device(X))
    # the device-resident model engine (fastdnn.cuda.engine), each output and L2 on/off
    import fastdnn
    targets = {"softmax": np.arange(m) % 2, "sigmoid": (X[:, :2] > 0).astype(dtype),
               "identity": X[:, :2]}
    for output, l2 in (("softmax", 0.1), ("sigmoid", 0.0), ("identity", 0.1)):
        model = fastdnn.MLP([n_in, 3, 2], output=output, batchnorm=True, keep_prob=0.8,
                            l2=l2, dtype=np.dtype(dtype).name, backend="cuda", seed=0)
        augment = fastdnn.Augment((2, 2), flip=True, shift=1, noise=0.1) \
            if output == "softmax" else None
        model.fit(X, targets[output], epochs=1, batch_size=3, verbose=0, augment=augment)


def test_every_launch_signature_compiles(recorded, tmp_path, rng):
    if importlib.util.find_spec("numba_cuda") is None:
        pytest.skip("needs the numba-cuda package for compile_ptx")
    for dtype in (np.float32, np.float64):
        _sweep(rng, dtype)
    launched = {(mod, name) for mod, name, _ in recorded}
    every = {(m, n) for m in MODULES for n, v in vars(importlib.import_module(m)).items()
             if type(v).__name__ in ("FakeCUDAKernel", "Recorder")
             and not getattr(getattr(v, "kernel", v), "_device", True)}
    assert every <= launched, f"kernels never launched by the sweep: {every - launched}"
    path = tmp_path / "signatures.pkl"
    path.write_bytes(pickle.dumps(sorted(recorded, key=str)))
    script = tmp_path / "compile.py"
    script.write_text(COMPILE)
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    proc = subprocess.run([sys.executable, str(script), str(path)], env=env,
                          capture_output=True, text=True, timeout=300)
    if proc.returncode and ("nvrtc" in proc.stderr.lower() or "nvvm" in proc.stderr.lower()):
        pytest.skip("the CUDA toolkit libraries (NVVM/NVRTC) are missing")
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
