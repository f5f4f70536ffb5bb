"""Optimizer updates, in place on flat parameter vectors of n = 1e5, 1e6 and 1.6e7.

Memory-bound: Adam moves 28 B/param in float32 (read p, g, m, v; write p, m, v),
RMSprop/momentum 20 B, SGD 12 B (twice that in float64, benchmarked at 1e6 only).
"""
import numpy as np

from .common import (BACKENDS, DTYPES, N_STATES, OPTIMIZERS, Benchmark, R, get_kernels,
                     optimizer_call, optimizer_data, rel_error, sync, to_backend)

SIZES = [100_000, 1_000_000, 16_000_000]


class OptimizerUpdate(Benchmark):
    params = [BACKENDS, OPTIMIZERS, SIZES]
    param_names = ["backend", "optimizer", "n_params"]
    timeout = 180
    dtype = "float32"

    def setup(self, backend, name, n):
        self.K = get_kernels(backend)
        self.backend = backend
        arrays = to_backend(backend, *optimizer_data(n, self.dtype, N_STATES[name]))
        self.update = optimizer_call(self.K, name, arrays)
        self.time_update(backend, name, n)  # compile before timing

    def time_update(self, backend, name, n):
        self.update()
        sync(self.backend)


class OptimizerUpdateFloat64(OptimizerUpdate):
    """float64 at 1e6 parameters only, to keep the suite short."""
    params = [BACKENDS, OPTIMIZERS, [1_000_000]]
    dtype = "float64"


class OptimizerAccuracy(Benchmark):
    """Largest relative error of param and state after one update, 1e5 parameters."""
    params = [BACKENDS, OPTIMIZERS, DTYPES]
    param_names = ["backend", "optimizer", "dtype"]

    def setup(self, backend, name, dtype):
        self.K = get_kernels(backend)
        self.host = optimizer_data(100_000, dtype, N_STATES[name])

    def track_rel_error(self, backend, name, dtype):
        ref = [a.astype(np.float64) for a in self.host]
        got = list(to_backend(backend, *[a.copy() for a in self.host]))
        optimizer_call(R, name, ref)()
        optimizer_call(self.K, name, got)()
        return max(rel_error(g, r) for g, r in zip(got, ref))
    track_rel_error.unit = "max relative error vs float64 reference"
