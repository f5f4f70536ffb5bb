"""Shared machinery of the CUDA backend: arrays in and out, launch sizes, matrix
products, the dropout switch and the order-fixed column reductions.

m = batch size (rows), n = features (columns), c = row chunks of REDUCTION_CHUNK rows.

Host in, host out: a public function given NumPy arrays copies them to the device and
returns NumPy arrays; given device arrays (numba, or anything with
``__cuda_array_interface__`` such as CuPy) it returns numba device arrays and never
leaves the device.
"""
from __future__ import annotations

import threading
import warnings
from typing import Any, Protocol, Union

import numpy as np
from numba import cuda, uint64
from numpy.typing import ArrayLike, NDArray

from .. import config
from .._validation import check_keep_prob, check_key
# The formulas are scalar @njit(inline="always") functions written with math.*: the CUDA
# target compiles them too, so every backend computes each element the same way.
from ..formulas import ACTIVATION_CODES, dropout, is_kept
from ..reference.activations import check_activation
from ..rng import keep_threshold

SIMULATOR = config.CUDA_SIMULATOR

# At most this many blocks per launch; kernels grid-stride over what is left, so the
# results never depend on it (tests patch it small).
MAX_BLOCKS = 4096

_CUPY = []  # [module or None] once looked up


def _cupy():
    """CuPy for cuBLAS, imported at the first product (None under the simulator or when
    missing: the products then run in NumPy on host copies, with one warning on a GPU)."""
    if not _CUPY:
        module = None
        if not SIMULATOR:
            try:
                import cupy as module
            except Exception:  # pragma: no cover - depends on the machine
                warnings.warn("CuPy is not installed: fastdnn.cuda computes matrix products "
                              "on the host (slow); pip install 'fastdnn[cuda]'", stacklevel=3)
        _CUPY.append(module)
    return _CUPY[0]


# ----------------------------------------------------------------------------- arrays

class DeviceArray(Protocol):
    """An array in GPU memory: numba's device arrays, CuPy's, any CUDA array interface."""

    @property
    def __cuda_array_interface__(self) -> dict[str, Any]: ...


#: What the public functions take and give: NumPy arrays (copied to the device; results
#: come back as NumPy arrays) or device arrays (results stay there as numba's).
HostOrDevice = Union[NDArray[np.floating], DeviceArray]


def is_device_array(x: object) -> bool:
    """Whether ``x`` is an array on the device rather than a NumPy array.

    Parameters
    ----------
    x : object
        Anything.

    Returns
    -------
    bool
        True for numba device arrays and any object exposing the CUDA array interface
        (under the simulator: its fake device arrays).
    """
    if isinstance(x, np.ndarray):
        return False
    return hasattr(x, "__cuda_array_interface__") or (SIMULATOR and hasattr(x, "copy_to_host"))


def to_device(x: ArrayLike | DeviceArray | None) -> DeviceArray | None:
    """A numba device array for ``x``: device arrays pass through (no copy).

    Parameters
    ----------
    x : array_like, device array or None
        Host data is copied to the device (made C-contiguous first); other device
        arrays (CuPy's) are wrapped without a copy.

    Returns
    -------
    numba device array or None
        None for None.
    """
    if x is None:
        return None
    if is_device_array(x):
        return x if hasattr(x, "copy_to_host") else cuda.as_cuda_array(x)
    return cuda.to_device(np.ascontiguousarray(x))


def to_host(x: ArrayLike | DeviceArray) -> NDArray[Any]:
    """A NumPy array for a device or host array.

    Parameters
    ----------
    x : array_like or device array
        Device arrays are copied to the host; host data is passed to np.asarray.

    Returns
    -------
    numpy.ndarray
    """
    return x.copy_to_host() if is_device_array(x) else np.asarray(x)


# Temporaries of one call (row-chunk partial sums, batch statistics) come from a small
# per-thread cache instead of a fresh allocation each call: numba allocates with
# cuMemAlloc and frees in batches with cuMemFree, which waits for the GPU. Reuse is safe
# because every launch goes to the default stream: the next call that takes a buffer
# writes it only after the kernels that read it have run. Results handed to a caller
# never come from here.
SCRATCH_ENTRIES = 64
_SCRATCH = threading.local()


def scratch(tag, shape, dtype):
    """A reusable device buffer for the temporary ``tag`` of one call (see above)."""
    cache = getattr(_SCRATCH, "cache", None)
    if cache is None:
        cache = _SCRATCH.cache = {}
    key = (tag, tuple(shape) if isinstance(shape, tuple) else (shape,), np.dtype(dtype).str)
    a = cache.pop(key, None)
    if a is None:
        a = cuda.device_array(shape, dtype=dtype)
        if len(cache) >= SCRATCH_ENTRIES:   # drop the least recently used
            cache.pop(next(iter(cache)))
    cache[key] = a
    return a


def zeros(shape, dtype):
    """A device array of zeros, filled on the device (no host buffer, no copy)."""
    return full(shape, dtype, 0)


def full(shape, dtype, value):
    """A device array of ``value``, filled on the device (no host buffer, no copy)."""
    a = cuda.device_array(shape, dtype=dtype)
    f = flat(a)
    _fill[launch(f.shape[0])](f, np.dtype(dtype).type(value))
    return a


def zeros_like(x: HostOrDevice) -> HostOrDevice:
    """Zeros shaped like ``x``: a device array for a device ``x``, else a NumPy array.

    Parameters
    ----------
    x : numpy.ndarray or device array
        Gives the shape, the dtype and where the result lives.

    Returns
    -------
    numpy.ndarray or numba device array
        Zeros of x's shape and dtype (filled on the device for a device ``x``).
    """
    if not is_device_array(x):
        return np.zeros_like(x)
    return zeros(tuple(x.shape), x.dtype)


def check_array(name, x, ndim=None, dtype=None, shape=None):
    """Argument check for host and device arrays, naming the argument."""
    if not (isinstance(x, np.ndarray) or is_device_array(x)):
        raise TypeError(f"{name} must be a NumPy or CUDA device array, got {type(x).__name__}")
    if np.dtype(x.dtype).type not in (np.float32, np.float64):
        raise TypeError(f"{name} must have dtype float32 or float64, got {x.dtype}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {tuple(x.shape)}")
    if shape is not None and tuple(x.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(x.shape)}")
    if x.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(x.shape)}")
    if dtype is not None and np.dtype(x.dtype) != np.dtype(dtype):
        raise TypeError(f"{name} has dtype {x.dtype} but the other operands are {np.dtype(dtype)}")
    return x


class Call:
    """One public call: decides host or device mode from its first array argument,
    hands out device buffers and returns results the way the caller gave them."""

    def __init__(self, primary):
        self.host = not is_device_array(primary)

    def buffer(self, out, shape, dtype, name="out"):
        """A device buffer for a result: the caller's device ``out``, or a new one."""
        if out is not None:
            if tuple(out.shape) != tuple(shape):
                raise ValueError(f"{name} has shape {tuple(out.shape)}, expected {tuple(shape)}")
            if np.dtype(out.dtype) != np.dtype(dtype):
                raise TypeError(f"{name} has dtype {out.dtype}, expected {np.dtype(dtype)}")
            if is_device_array(out):
                return to_device(out)
        return cuda.device_array(shape, dtype=dtype)

    def result(self, dev, out=None):
        """``dev`` as the caller wants it: copied into a host ``out``, or as a host array
        in host mode, else the device array itself."""
        if out is not None and not is_device_array(out):
            out[...] = dev.copy_to_host()
            return out
        if out is not None:
            return out
        return dev.copy_to_host() if self.host else dev

    def write_back(self, host_array, dev):
        """After an in-place update of a host argument's device copy, copy it back."""
        if not is_device_array(host_array):
            host_array[...] = dev.copy_to_host()


def scalar(value, dtype):
    """A kernel scalar in the arrays' dtype, so float32 kernels compute in float32."""
    return np.dtype(dtype).type(value)


def dropout_args(keep_prob, key, dtype):
    """(use_dropout, key, threshold, keep_prob in ``dtype``): the kernels' dropout arguments."""
    keep_prob = check_keep_prob("keep_prob", keep_prob)
    return (keep_prob < 1.0, np.uint64(check_key("key", key)),
            np.uint64(keep_threshold(keep_prob)), scalar(keep_prob, dtype))


def activation_code(activation):
    return ACTIVATION_CODES[check_activation(activation)]


# ----------------------------------------------------------------------------- launch

def launch(n_items):
    """(blocks, threads) for a grid-stride kernel over ``n_items``; reads
    config.THREADS_PER_BLOCK at launch time."""
    threads = int(config.THREADS_PER_BLOCK)
    blocks = max(1, min(MAX_BLOCKS, (n_items + threads - 1) // threads))
    return blocks, threads


def n_chunks(m):
    return (m + config.REDUCTION_CHUNK - 1) // config.REDUCTION_CHUNK


# ----------------------------------------------------------------------------- gemm

def gemm(A, B, out, transA=False, transB=False, alpha=1.0, beta=0.0):
    """out = alpha * op(A) @ op(B) + beta * out on device arrays (2-D).

    cuBLAS through CuPy (zero-copy views of the numba arrays) when CuPy is present;
    otherwise, under the simulator or without CuPy, NumPy on host copies.
    """
    cp = _cupy()
    if cp is not None:
        a, b, o = cp.asarray(A), cp.asarray(B), cp.asarray(out)
        a = a.T if transA else a
        b = b.T if transB else b
        if beta == 0:
            cp.matmul(a, b, out=o)
            if alpha != 1:
                o *= alpha
        else:
            o *= beta
            o += alpha * (a @ b)
        return out
    a, b = to_host(A), to_host(B)
    a = a.T if transA else a
    b = b.T if transB else b
    r = a @ b
    if alpha != 1:
        r = r * r.dtype.type(alpha)
    if beta != 0:
        r = r + r.dtype.type(beta) * to_host(out)
    out.copy_to_device(np.ascontiguousarray(r.astype(out.dtype, copy=False)))
    return out


# ----------------------------------------------------------------------------- dropout
# The kernels' dropout arguments switch it off as a whole (use_dropout False) rather
# than with keep_prob 1, so a layer without dropout hashes nothing. The formulas
# themselves (activate, activation_grad, ...) are imported from fastdnn.formulas by the
# kernel modules: there are no CUDA twins of them.

@cuda.jit(device=True, inline=True)
def kept(use_dropout, key, index, threshold):
    """Dropout keep bit of element ``index`` (always kept when dropout is off)."""
    if not use_dropout:
        return True
    return is_kept(key, uint64(index), threshold)


@cuda.jit(device=True, inline=True)
def apply_dropout(x, use_dropout, key, index, threshold, keep_prob):
    """formulas.dropout of element ``index``: x / keep_prob if kept, else x * 0 (as the
    reference); x itself when dropout is off."""
    if not use_dropout:
        return x
    return dropout(x, is_kept(key, uint64(index), threshold), keep_prob)


# ----------------------------------------------------------------------------- reductions

@cuda.jit
def _chunk_sums(A, B, center, mode, chunk, partial):
    """partial[c, j] = sum over rows of chunk c of f(A[i, j]); one thread per (c, j).

    mode 0: A;  mode 1: A * B;  mode 2: (A - center[j])**2.
    Rows are summed in order, so each partial is independent of the launch geometry.
    """
    m, n = A.shape
    total = partial.shape[0] * n
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for t in range(start, total, stride):
        c = t // n
        j = t - c * n
        i0 = c * chunk
        i1 = min(i0 + chunk, m)
        if mode == 1:
            s = A[i0, j] * B[i0, j]
            for i in range(i0 + 1, i1):
                s += A[i, j] * B[i, j]
        elif mode == 2:
            d = A[i0, j] - center[j]
            s = d * d
            for i in range(i0 + 1, i1):
                d = A[i, j] - center[j]
                s += d * d
        else:
            s = A[i0, j]
            for i in range(i0 + 1, i1):
                s += A[i, j]
        partial[c, j] = s


@cuda.jit
def _merge_chunks(partial, divisor, out):
    """out[j] = (sum over c of partial[c, j], in order) / divisor; one thread per j."""
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for j in range(start, out.shape[0], stride):
        s = partial[0, j]
        for c in range(1, partial.shape[0]):
            s += partial[c, j]
        out[j] = s / divisor


def column_sums(A, out, B=None, center=None, mode=0, divisor=1):
    """out[j] = sum_i f(A[i, j]) / divisor (see _chunk_sums), deterministic and
    independent of the thread count: fixed chunks of rows, merged in order."""
    m, n = A.shape
    c = n_chunks(m)
    partial = scratch("column_sums", (c, n), A.dtype)
    dummy = A if B is None else B
    ctr = out if center is None else center
    _chunk_sums[launch(c * n)](A, dummy, ctr, mode, config.REDUCTION_CHUNK, partial)
    _merge_chunks[launch(n)](partial, scalar(divisor, A.dtype), out)
    return out


@cuda.jit
def _fill(x, value):
    """x[:] = value on a flat array; grid-stride."""
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for i in range(start, x.shape[0], stride):
        x[i] = value


@cuda.jit
def _axpy(y, a, x):
    """y += a * x on flat arrays; grid-stride over elements."""
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for i in range(start, y.shape[0], stride):
        y[i] += a * x[i]


def axpy(y, a, x):
    yf, xf = flat(y), flat(x)
    _axpy[launch(yf.shape[0])](yf, scalar(a, y.dtype), xf)
    return y


def flat(x):
    """A 1-D view of a contiguous device array."""
    return x.reshape(x.size)


@cuda.jit
def _scale(y, a, x):
    """y = a * x on flat arrays; grid-stride over elements."""
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for i in range(start, y.shape[0], stride):
        y[i] = a * x[i]
