"""Helpers shared by the CPU kernels: argument-to-kernel conversions, output buffers,
the cheap finite check.

m = batch size, n = layer width.
"""
import functools
import os
import threading
import warnings

import numba
import numpy as np
from numba import njit, prange

from .. import config
from .._cache import harden_cache, harden_caches
from .._validation import check_keep_prob, check_key, finite_checks_on
from ..config import CACHE
from ..formulas import ACTIVATION_CODES
from ..rng import keep_threshold
from ._blas import owns_threads


def _openblas_spins(forced=config.SPIN_GUARD_SETTING,
                    timeout=config.OPENBLAS_THREAD_TIMEOUT,
                    blas_threads=config.OPENBLAS_NUM_THREADS):
    """True when NumPy's BLAS is an OpenBLAS whose idle workers busy-wait after each call.

    OpenBLAS keeps its worker threads spinning ~0.1 s after every GEMM (2**28 ticks)
    unless OPENBLAS_THREAD_TIMEOUT was set before NumPy loaded it. A parallel Numba kernel
    launched in that window fights the spinning workers for the cores (kernels/handoff.py:
    a GEMM plus its 2-thread epilogue took 3.6x the sum of the two alone). The variable
    cannot be changed once NumPy is imported, so this is decided once, at import.
    """
    if forced in ("0", "1"):
        return forced == "1"
    if timeout.isdigit() and 0 < int(timeout) <= 12:  # spins 2**timeout ticks at most
        return False
    if blas_threads == "1":
        return False
    try:
        blas = np.__config__.CONFIG["Build Dependencies"]["blas"]["name"]
    except Exception:  # pragma: no cover - unusual NumPy builds
        return False
    return "openblas" in str(blas).lower()


# When True, the CPU kernels run on the calling thread only (numba.set_num_threads(1)
# for the duration of the call): the calling thread has its core to itself while
# OpenBLAS's workers spin on the others, so nothing stalls. Measured on the 2-core
# machine (kernels/handoff.py, kernels/mlp_step.py, float32 784-512-256-10 step with
# BN, ReLU, dropout and Adam): parallel kernels next to spinning OpenBLAS made the step
# 1.3-4.5x slower than the NumPy reference; with this guard the step is 2.4x (batch 256) and 2.9x
# (batch 1024) faster than the NumPy reference, while OPENBLAS_THREAD_TIMEOUT=4 with
# parallel kernels reached only 1.4x and 1.8x (the GEMMs dominate, and parked OpenBLAS
# workers must be woken for every GEMM). So the guard is on whenever NumPy's OpenBLAS is
# multi-threaded, unless the user set OPENBLAS_THREAD_TIMEOUT (<= 12) or one BLAS
# thread; FASTDNN_SPIN_GUARD=0/1 forces the choice. Results are the same bits either way.
# Inside _blas.owned_threads() nothing spins (fastdnn runs the products itself, NumPy's
# OpenBLAS at one thread), so kernels run on all threads there.
SPIN_GUARD = _openblas_spins()


def launch(kernel, *args):
    """Call a parallel kernel, on the calling thread alone while SPIN_GUARD is on."""
    if not _fork_watched:
        try:
            return _launch(kernel, *args)
        finally:
            _watch_fork()
    return _launch(kernel, *args)


def _launch(kernel, *args):
    if not SPIN_GUARD or owns_threads():
        return kernel(*args)
    threads = numba.get_num_threads()
    if threads == 1:
        return kernel(*args)
    numba.set_num_threads(1)
    try:
        return kernel(*args)
    finally:
        numba.set_num_threads(threads)


_fork_watched = []   # the threading layer, once the first parallel kernel ran
_fork_lock = threading.Lock()


def _watch_fork():
    """After the first parallel kernel: when Numba runs them on GNU OpenMP, a later
    fork() gets its child terminated by OpenMP ("fork() called from a process already
    using GNU OpenMP"); say why, and what to do, in the parent before it forks. The
    engine's own thread pool (fit, predict) does not use OpenMP and forks safely."""
    try:
        layer = numba.threading_layer()
    except ValueError:   # no parallel region has run yet
        return
    with _fork_lock:
        if _fork_watched:
            return
        _fork_watched.append(layer)
        if layer == "omp" and hasattr(os, "register_at_fork"):
            os.register_at_fork(before=_warn_before_fork)


def _warn_before_fork():
    warnings.warn(
        "fork() after fastdnn.cpu's parallel kernels ran on Numba's OpenMP threading "
        "layer: GNU OpenMP terminates the child process. Start processes with "
        "multiprocessing.get_context('spawn'), or set NUMBA_THREADING_LAYER=workqueue "
        "(or tbb) before the first kernel runs", RuntimeWarning, stacklevel=2)


def specialised(factory):
    """Memoise a kernel factory whose arguments (an activation code, a dropout flag) are
    compile-time constants of the kernel it returns.

    Each compiled kernel then holds one activation's loop and one dropout path instead of
    every branch: the cold first training step compiles about a third less code. Numba's
    cache keys a closure's kernel by the values it closes over, so each variant is cached
    on its own. The kernels' disk caches are hardened (fastdnn._cache).
    """
    @functools.cache
    @functools.wraps(factory)
    def hardened_factory(*args, **kwargs):
        return harden_cache(factory(*args, **kwargs))
    return hardened_factory


def activation_code(activation):
    """The integer code of an activation name (see fastdnn.formulas.ACTIVATION_CODES)."""
    try:
        return ACTIVATION_CODES[activation]
    except (KeyError, TypeError):
        raise ValueError(f"activation must be one of {sorted(ACTIVATION_CODES)}, "
                         f"got {activation!r}") from None


def dropout_args(keep_prob, key, dtype):
    """(apply, key, threshold, keep_prob) as the kernels take them: uint64s and keep_prob
    in ``dtype`` (kept units are divided by it, as in the reference)."""
    keep_prob = check_keep_prob("keep_prob", keep_prob)
    apply = keep_prob < 1.0
    return (apply, np.uint64(check_key("key", key)), np.uint64(keep_threshold(keep_prob)),
            dtype.type(keep_prob))


def buffer(name, buf, shape, dtype):
    """``buf`` checked to be a writable C-contiguous array of ``shape`` and ``dtype``, or a
    new empty one when ``buf`` is None."""
    if buf is None:
        return np.empty(shape, dtype=dtype)
    if not isinstance(buf, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array, got {type(buf).__name__}")
    if buf.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {buf.shape}")
    if buf.dtype != dtype:
        raise TypeError(f"{name} must have dtype {np.dtype(dtype)}, got {buf.dtype}")
    if not buf.flags.c_contiguous or not buf.flags.writeable:
        raise ValueError(f"{name} must be a writable C-contiguous array")
    return buf


def contiguous(x):
    """``x`` itself when C-contiguous, else a C-contiguous copy (kernels take C layout only,
    which keeps one compiled specialisation per dtype)."""
    return x if x.flags.c_contiguous else np.ascontiguousarray(x)


def reusable(x, dtype):
    """True when ``x`` can serve as an output buffer of ``dtype`` (C-contiguous, writable)."""
    return x.dtype == dtype and x.flags.c_contiguous and x.flags.writeable


@njit(cache=CACHE, error_model="numpy", nogil=True)
def holds_nonfinite(x):
    """Whether the 1-D array x holds a NaN or inf (v - v is 0 for finite v, NaN
    otherwise). The integer OR reduction vectorises where a float sum may not be
    reordered, but only in a loop of its own, not inlined in a prange body: 80 us against
    520 us on 1e6 float32 (one thread; summing x * 0: 13 ms on 1.6e7)."""
    bad = 0
    for j in range(x.shape[0]):
        v = x[j]
        bad |= v - v != 0
    return bad != 0


@njit(parallel=True, cache=CACHE, error_model="numpy")
def _nonfinite_count(x):
    # chunks of the flat x that hold a NaN or inf, in parallel
    n = x.shape[0]
    count = 0
    for c in prange((n + _FINITE_CHUNK - 1) // _FINITE_CHUNK):
        count += holds_nonfinite(x[c * _FINITE_CHUNK:min(n, (c + 1) * _FINITE_CHUNK)])
    return count


_FINITE_CHUNK = 16384


def check_finite(name, x):
    """Raise ValueError naming ``x`` if it holds NaN or inf; skipped when
    fastdnn.config.CHECK_FINITE is False."""
    if not finite_checks_on():
        return x
    if launch(_nonfinite_count, contiguous(x).reshape(-1)) != 0:
        bad = np.argwhere(~np.isfinite(x))[0]
        raise ValueError(
            f"{name} contains NaN or inf (first at index {tuple(int(i) for i in bad)}); "
            "set fastdnn.config.CHECK_FINITE = False to skip this check")
    return x


harden_caches(__name__)
