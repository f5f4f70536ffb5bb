"""Defaults in one place: dtypes, kernel flags, CUDA launch sizes, environment variables."""
import os

DEFAULT_DTYPE = "float32"
DTYPES = ("float32", "float64")

# Numba: fastmath would let LLVM reorder sums, which breaks the bit-for-bit agreement
# between thread counts and backends that the tests demand, so it stays off.
FASTMATH = False
CACHE = os.environ.get("FASTDNN_NO_CACHE", "") == ""

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
