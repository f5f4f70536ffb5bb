"""Dense layer forward (X @ W.T + b, ReLU, dropout) and backward (dX, dW, db).

m = batch size; the layer is 784 -> 512, the first layer of the MNIST MLP.
"""
import numpy as np

from .common import (BACKENDS, BATCHES, DTYPES, KEY, Benchmark, R, copy_into, dense_data,
                     empty_like, get_kernels, rel_error, sync, to_backend)

N_IN, N_OUT, KEEP = 784, 512, 0.8


class DenseForward(Benchmark):
    params = [BACKENDS, BATCHES, DTYPES]
    param_names = ["backend", "batch", "dtype"]

    def setup(self, backend, m, dtype):
        self.K = get_kernels(backend)
        self.backend = backend
        self.X, self.W, self.b, _ = to_backend(backend, *dense_data(m, N_IN, N_OUT, dtype))
        Z = np.empty((m, N_OUT), dtype)
        self.out, self.act = empty_like(backend, Z), empty_like(backend, Z)
        self.time_dense_forward(backend, m, dtype)  # compile before timing

    def time_dense_forward(self, backend, m, dtype):
        self.K.dense_forward(self.X, self.W, self.b, "relu", KEEP, KEY,
                             out=self.out, act_out=self.act)
        sync(self.backend)


class DenseBackward(Benchmark):
    """Each timed call first restores d_out (backward may overwrite it): one m x 512 copy."""
    params = [BACKENDS, BATCHES, DTYPES]
    param_names = ["backend", "batch", "dtype"]

    def setup(self, backend, m, dtype):
        self.K = get_kernels(backend)
        self.backend = backend
        X, W, b, d_out = dense_data(m, N_IN, N_OUT, dtype)
        _, act = R.dense_forward(X, W, b, "relu", KEEP, KEY)
        self.X, self.W, self.act, self.d0 = to_backend(backend, X, W, act, d_out)
        self.d = empty_like(backend, d_out)
        self.dX, self.dW = empty_like(backend, X), empty_like(backend, W)
        self.db, self.dZ = empty_like(backend, b), empty_like(backend, d_out)
        self.time_dense_backward(backend, m, dtype)

    def time_dense_backward(self, backend, m, dtype):
        copy_into(self.d, self.d0)
        self.K.dense_backward(self.d, self.X, self.W, self.act, "relu", KEEP, KEY, 1e-4,
                              dX_out=self.dX, dW_out=self.dW, db_out=self.db,
                              dZ_out=self.dZ)
        sync(self.backend)


class DenseAccuracy(Benchmark):
    """Largest relative error of every output against the float64 reference, batch 256."""
    params = [BACKENDS, DTYPES]
    param_names = ["backend", "dtype"]
    unit = "max relative error vs float64 reference"

    def setup(self, backend, dtype):
        self.K = get_kernels(backend)
        self.backend = backend
        self.host = dense_data(256, N_IN, N_OUT, dtype)
        self.ref = [a.astype(np.float64) for a in self.host]

    def track_forward_rel_error(self, backend, dtype):
        X, W, b, _ = self.ref
        ref = R.dense_forward(X, W, b, "relu", KEEP, KEY)
        got = self.K.dense_forward(*to_backend(backend, *self.host[:3]), "relu", KEEP, KEY)
        return max(rel_error(g, r) for g, r in zip(got, ref))
    track_forward_rel_error.unit = unit

    def track_backward_rel_error(self, backend, dtype):
        X, W, b, d_out = self.ref
        _, act = R.dense_forward(X, W, b, "relu", KEEP, KEY)
        ref = R.dense_backward(d_out, X, W, act, "relu", KEEP, KEY, 1e-4)
        args = to_backend(backend, self.host[3].copy(), self.host[0], self.host[1],
                          act.astype(dtype))
        got = self.K.dense_backward(*args, "relu", KEEP, KEY, 1e-4)
        return max(rel_error(g, r) for g, r in zip(got, ref))
    track_backward_rel_error.unit = unit
