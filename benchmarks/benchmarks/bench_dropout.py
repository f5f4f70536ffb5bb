"""Inverted dropout with counter-based masks: forward and backward (mask regenerated).

m = batch size, n = 512 units.
"""
import numpy as np

from .common import (BACKENDS, BATCHES, DTYPES, KEY, Benchmark, R, empty_like,
                     get_kernels, rel_error, rng, sync, to_backend)

N, KEEP = 512, 0.8


class Dropout(Benchmark):
    params = [BACKENDS, BATCHES, DTYPES]
    param_names = ["backend", "batch", "dtype"]

    def setup(self, backend, m, dtype):
        self.K = get_kernels(backend)
        self.backend = backend
        self.host = rng(0).standard_normal((m, N)).astype(dtype)
        self.A = to_backend(backend, self.host)
        self.out = empty_like(backend, self.host)
        self.time_dropout_forward(backend, m, dtype)
        self.time_dropout_backward(backend, m, dtype)

    def time_dropout_forward(self, backend, m, dtype):
        self.K.dropout_forward(self.A, KEEP, KEY, out=self.out)
        sync(self.backend)

    def time_dropout_backward(self, backend, m, dtype):
        self.K.dropout_backward(self.A, KEEP, KEY, out=self.out)
        sync(self.backend)


class DropoutAccuracy(Benchmark):
    """Largest relative error against the float64 reference, batch 256 (masks must match)."""
    params = [BACKENDS, DTYPES]
    param_names = ["backend", "dtype"]

    def setup(self, backend, dtype):
        self.K = get_kernels(backend)
        self.host = rng(0).standard_normal((256, N)).astype(dtype)

    def track_rel_error(self, backend, dtype):
        ref = R.dropout_forward(self.host.astype(np.float64), KEEP, KEY)
        return rel_error(self.K.dropout_forward(to_backend(backend, self.host), KEEP, KEY), ref)
    track_rel_error.unit = "max relative error vs float64 reference"
