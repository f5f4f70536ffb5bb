"""Softmax cross-entropy on integer labels: loss and dZ = (softmax(Z) - Y) / m.

m = batch size, k = 10 classes.
"""
import numpy as np

from .common import (BACKENDS, BATCHES, DTYPES, Benchmark, R, empty_like, get_kernels,
                     rel_error, rng, sync, to_backend)

K_CLASSES = 10


def logits(m, dtype):
    r = rng(0)
    return (3 * r.standard_normal((m, K_CLASSES))).astype(dtype), r.integers(0, K_CLASSES, m)


class SoftmaxCrossEntropy(Benchmark):
    params = [BACKENDS, BATCHES, DTYPES]
    param_names = ["backend", "batch", "dtype"]

    def setup(self, backend, m, dtype):
        self.K = get_kernels(backend)
        self.backend = backend
        Z, y = logits(m, dtype)
        self.Z, self.y = to_backend(backend, Z, y)
        self.dZ = empty_like(backend, Z)
        self.time_softmax_cross_entropy(backend, m, dtype)

    def time_softmax_cross_entropy(self, backend, m, dtype):
        self.K.softmax_cross_entropy(self.Z, self.y, dZ_out=self.dZ)
        sync(self.backend)


class SoftmaxCrossEntropyAccuracy(Benchmark):
    """Largest relative error of the loss and dZ against the float64 reference, batch 256."""
    params = [BACKENDS, DTYPES]
    param_names = ["backend", "dtype"]

    def setup(self, backend, dtype):
        self.K = get_kernels(backend)
        self.Z, self.y = logits(256, dtype)

    def track_rel_error(self, backend, dtype):
        loss_ref, dZ_ref = R.softmax_cross_entropy(self.Z.astype(np.float64), self.y)
        loss, dZ = self.K.softmax_cross_entropy(*to_backend(backend, self.Z, self.y))
        return max(abs(float(loss) - loss_ref) / abs(loss_ref), rel_error(dZ, dZ_ref))
    track_rel_error.unit = "max relative error vs float64 reference"
