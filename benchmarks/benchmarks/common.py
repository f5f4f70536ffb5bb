"""Seeded data factories and backend helpers shared by the asv benchmarks.

m = batch size, n_in, n_out = layer widths, n = parameter count, k = classes.
Every factory takes a seed, so each benchmark sees the same data on every run.
"""
import os
import sys

# fastdnn before NumPy, as a user script would: the package may tune the BLAS's threads
# (OPENBLAS_THREAD_TIMEOUT) only while NumPy is not loaded yet.
try:
    import fastdnn  # noqa: F401
except ImportError:  # a plain clone run with `asv run --python=same`: use the checkout
    sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
    import fastdnn  # noqa: F401

import numpy as np  # noqa: E402

from fastdnn import reference as R  # noqa: E402
from fastdnn.rng import dropout_key  # noqa: E402

BACKENDS = ["numpy", "cpu", "cuda"]
DTYPES = ["float32", "float64"]
BATCHES = [64, 256, 1024]
NETWORK = [784, 512, 256, 10]  # MNIST-sized MLP
KEY = dropout_key(0, 1, 0)


class Benchmark:
    """Fast profile shared by every class: one process, a few calibrated samples.

    asv times ``number`` calls per sample (calibrated to ``sample_time``, 50 ms), takes
    up to ``repeat`` samples within ``max_time``, after ``warmup_time`` of untimed calls.
    The busy warm-up matters on small VMs: idle OpenBLAS threads spin ~0.1 s after a
    GEMM and a vCPU that slept wakes slowly, so the first calls of a fresh process are
    much slower than the steady state.
    """
    rounds = 1
    repeat = (1, 5, 1.0)  # (min samples, max samples, max seconds)
    number = 0  # calibrate
    sample_time = 0.05
    min_run_count = 1
    warmup_time = 0.2
    timeout = 120


def get_kernels(backend):
    """The kernel module of ``backend``; NotImplementedError (asv: skipped) if unusable."""
    from fastdnn.backend import kernels
    try:
        return kernels(backend)
    except (ImportError, RuntimeError) as exc:
        raise NotImplementedError(f"backend {backend!r} unavailable: {exc}") from exc


def to_backend(backend, *arrays):
    """The arrays where ``backend`` computes: NumPy arrays, or CUDA device arrays."""
    if backend != "cuda":
        return arrays if len(arrays) > 1 else arrays[0]
    from numba import cuda
    out = tuple(cuda.to_device(np.ascontiguousarray(a)) for a in arrays)
    return out if len(out) > 1 else out[0]


def sync(backend):
    """Wait for queued GPU work so that a timing covers it (no-op on the CPU)."""
    if backend == "cuda":
        from numba import cuda
        cuda.synchronize()


def to_host(x):
    """A NumPy copy of a NumPy, Numba device or CuPy array."""
    if hasattr(x, "copy_to_host"):
        return x.copy_to_host()
    if hasattr(x, "get"):
        return x.get()
    return np.asarray(x)


def empty_like(backend, a):
    """An uninitialised output buffer shaped like ``a`` on ``backend``."""
    if backend == "cuda":
        from numba import cuda
        return cuda.device_array(a.shape, a.dtype)
    return np.empty_like(a)


def copy_into(dst, src):
    """dst[...] = src on the host or between two device arrays."""
    if hasattr(dst, "copy_to_device"):
        dst.copy_to_device(src)
    else:
        np.copyto(dst, src)


def rel_error(got, ref):
    """max |got - ref| / max |ref|, in float64 (0 when both are zero)."""
    got = to_host(got).astype(np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    scale = np.max(np.abs(ref))
    return float(np.max(np.abs(got - ref)) / scale) if scale else float(np.max(np.abs(got)))


def rng(seed=0):
    return np.random.default_rng(seed)


def dense_data(m, n_in, n_out, dtype, seed=0):
    """X (m, n_in), He-scaled W (n_out, n_in), b (n_out,), d_out (m, n_out)."""
    r = rng(seed)
    X = r.standard_normal((m, n_in)).astype(dtype)
    W = (r.standard_normal((n_out, n_in)) * np.sqrt(2.0 / n_in)).astype(dtype)
    b = (0.1 * r.standard_normal(n_out)).astype(dtype)
    d_out = (r.standard_normal((m, n_out)) / m).astype(dtype)
    return X, W, b, d_out


def batchnorm_data(m, n, dtype, seed=0):
    """Z (m, n), gamma, beta, running_mean, running_var (n,), d_out (m, n)."""
    r = rng(seed)
    Z = (2.0 + 3.0 * r.standard_normal((m, n))).astype(dtype)
    gamma = (1.0 + 0.1 * r.standard_normal(n)).astype(dtype)
    beta = (0.1 * r.standard_normal(n)).astype(dtype)
    running_mean = np.zeros(n, dtype)
    running_var = np.ones(n, dtype)
    d_out = (r.standard_normal((m, n)) / m).astype(dtype)
    return Z, gamma, beta, running_mean, running_var, d_out


def classification_data(m, n_features, k, dtype, seed=0):
    """X (m, n_features) and integer labels (m,) in [0, k), learnable by an MLP."""
    r = rng(seed)
    X = r.standard_normal((m, n_features)).astype(dtype)
    W = r.standard_normal((n_features, k))
    y = np.argmax(X @ W + 0.5 * r.standard_normal((m, k)), axis=1).astype(np.int64)
    return X, y


OPTIMIZERS = ["sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw"]
N_STATES = {"sgd": 0, "momentum": 1, "nesterov": 1, "rmsprop": 1, "adam": 2, "adamw": 2}


def optimizer_data(n, dtype, n_states, seed=0):
    """param, grad (n,) and ``n_states`` state vectors in a valid (non-negative v) state."""
    r, scalar = rng(seed), np.dtype(dtype).type  # uniform draws: fast at 1.6e7
    param = r.random(n, dtype=dtype) - scalar(0.5)
    grad = (r.random(n, dtype=dtype) - scalar(0.5)) * scalar(0.02)
    states = [r.random(n, dtype=dtype) * scalar(1e-4)
              for _ in range(n_states)]  # >= 0: RMSprop's and Adam's squared averages
    return [param, grad] + states


def optimizer_call(K, name, arrays):
    """A zero-argument call of ``K.<name>_update`` on ``arrays`` (lr etc. fixed, step 10)."""
    update = getattr(K, f"{name}_update")
    if name in ("adam", "adamw"):
        return lambda: update(*arrays, 10, 1e-3)
    return lambda: update(*arrays, 1e-3)


def mlp_or_skip():
    """fastdnn.MLP and fastdnn.optim, or NotImplementedError while the model is absent."""
    MLP = getattr(fastdnn, "MLP", None)
    optim = getattr(fastdnn, "optim", None)
    if MLP is None or optim is None:
        try:
            from fastdnn.model import MLP  # noqa: F811
            from fastdnn import optim  # noqa: F811
        except ImportError as exc:
            raise NotImplementedError(f"fastdnn.MLP unavailable: {exc}") from exc
    return MLP, optim


