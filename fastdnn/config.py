"""Defaults in one place: dtypes, kernel flags, CUDA launch sizes, environment variables."""
import os

DEFAULT_DTYPE = "float32"
DTYPES = ("float32", "float64")

# Numba: fastmath would let LLVM reorder sums, which breaks the bit-for-bit agreement
# between thread counts and backends that the tests demand, so it stays off.
FASTMATH = False
CACHE = os.environ.get("FASTDNN_NO_CACHE", "") == ""

# Options of compiled functions that only other compiled code calls: no CPython or C
# wrapper is built for them (about 0.1 s of compile time each).
INTERNAL = dict(cache=CACHE, nogil=True, error_model="numpy", no_cpython_wrapper=True,
                no_cfunc_wrapper=True)

# Rows per chunk in order-fixed reductions (dW, db, BatchNorm sums): results depend on
# this constant, never on the thread count.
REDUCTION_CHUNK = 64

# CUDA launch geometry; tests patch it small so several blocks and grid-stride loops run.
THREADS_PER_BLOCK = int(os.environ.get("FASTDNN_THREADS_PER_BLOCK", "256"))

# backend="cuda" models: fit keeps the training set on the GPU when it takes at most
# this fraction of the free device memory (else it copies each batch once).
CUDA_DATA_FRACTION = float(os.environ.get("FASTDNN_CUDA_DATA_FRACTION", "0.5"))

# Check batches for NaN/inf before training on them (one cheap pass); False skips it.
CHECK_FINITE = os.environ.get("FASTDNN_CHECK_FINITE", "1") != "0"

# The cpu engine trains on one thread while its runs measure that faster than the
# threads (a busy machine: fastdnn.engine.cpu.ThreadChoice); False keeps the threads.
ADAPT_THREADS = os.environ.get("FASTDNN_ADAPT_THREADS", "1") != "0"

# Where fastdnn keeps files it makes for itself (its private copy of NumPy's OpenBLAS):
# FASTDNN_CACHE_DIR, else $XDG_CACHE_HOME/fastdnn, else ~/.cache/fastdnn.
CACHE_DIR = os.environ.get("FASTDNN_CACHE_DIR") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
    "fastdnn")

# The per-kernel functions of fastdnn.cpu call NumPy's OpenBLAS through a compiled
# binding; FASTDNN_COMPILED_BLAS=0 makes them call np.dot instead.
COMPILED_BLAS = os.environ.get("FASTDNN_COMPILED_BLAS") != "0"

# What decides fastdnn.cpu._common.SPIN_GUARD: FASTDNN_SPIN_GUARD=0/1 forces it; else the
# OpenBLAS settings NumPy's BLAS read when it loaded.
SPIN_GUARD_SETTING = os.environ.get("FASTDNN_SPIN_GUARD", "")
OPENBLAS_THREAD_TIMEOUT = os.environ.get("OPENBLAS_THREAD_TIMEOUT", "")
OPENBLAS_NUM_THREADS = os.environ.get("OPENBLAS_NUM_THREADS", "")

# numba-cuda's simulator (tests), and a CUDA driver library named for numba-cuda.
CUDA_SIMULATOR = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
CUDA_DRIVER_GIVEN = bool(os.environ.get("NUMBA_CUDA_DRIVER"))

# The engine's products run on a private one-threaded copy of NumPy's OpenBLAS
# (fastdnn.engine.blas); FASTDNN_PRIVATE_BLAS=0 runs them on a plain compiled loop.
PRIVATE_BLAS = os.environ.get("FASTDNN_PRIVATE_BLAS", "1") != "0"


def _default_threads():
    for name in ("FASTDNN_NUM_THREADS", "NUMBA_NUM_THREADS"):
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


# Threads the engine trains and predicts on: FASTDNN_NUM_THREADS, else NUMBA_NUM_THREADS,
# else the cores this process may run on. fastdnn.threads(n) sets it for a block of code.
NUM_THREADS = _default_threads()
