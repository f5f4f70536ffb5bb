"""Dense layer forward (X @ W.T + b, ReLU, dropout) and backward (dX, dW, db).

m = batch size; the layer is 784 -> 512, the first layer of the MNIST MLP.
"""
import numpy as np

from .common import (BACKENDS, BATCHES, DTYPES, KEY, Benchmark, R, copy_into,
                     dense_data, empty_like, get_kernels, rel_error, sync, to_backend)

N_IN, N_OUT, KEEP = 784, 512, 0.8


class DenseForward(Benchmark):
    params = [BACKENDS, BATCHES, DTYPES]
    param_names = ["backend", "batch", "dtype"]

    def setup(self, backend, m, dtype):
        self.K = get_kernels(backend)
        self.backend = backend
        self.host = dense_data(m, N_IN, N_OUT, dtype)
        self.X, self.W, self.b, _ = to_backend(backend, *self.host)
        Z = np.empty((m, N_OUT), dtype)
        self.out, self.act = empty_like(backend, Z), empty_like(backend, Z)
        self.time_dense_forward(backend, m, dtype)  # compile before timing

    def time_dense_forward(self, backend, m, dtype):
        self.K.dense_forward(self.X, self.W, self.b, "relu", KEEP, KEY,
                             out=self.out, act_out=self.act)
        sync(self.backend)

    def track_rel_error(self, backend, m, dtype):
        X, W, b, _ = (a.astype(np.float64) for a in self.host)
        ref, _ = R.dense_forward(X, W, b, "relu", KEEP, KEY)
        got, _ = self.K.dense_forward(self.X, self.W, self.b, "relu", KEEP, KEY)
        return rel_error(got, ref)
    track_rel_error.unit = "max relative error vs float64 reference"


class DenseBackward(Benchmark):
    """Each timed call first restores d_out (backward may overwrite it): one m x 512 copy."""
    params = [BACKENDS, BATCHES, DTYPES]
    param_names = ["backend", "batch", "dtype"]

    def setup(self, backend, m, dtype):
        self.K = get_kernels(backend)
        self.backend = backend
        X, W, b, d_out = self.host = dense_data(m, N_IN, N_OUT, dtype)
        _, act = R.dense_forward(X, W, b, "relu", KEEP, KEY)
        self.host_act = act
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

    def track_rel_error(self, backend, m, dtype):
        X, W, _, d_out = (a.astype(np.float64) for a in self.host)
        act = self.host_act.astype(np.float64)
        ref = R.dense_backward(d_out, X, W, act, "relu", KEEP, KEY, 1e-4)
        d = to_backend(backend, self.host[3].copy())
        got = self.K.dense_backward(d, self.X, self.W, self.act, "relu", KEEP, KEY, 1e-4)
        return max(rel_error(g, r) for g, r in zip(got, ref))
    track_rel_error.unit = "max relative error vs float64 reference"
