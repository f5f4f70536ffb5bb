"""BatchNorm fused with ReLU and dropout: forward (training mode) and backward.

m = batch size, n = 512 features (the first hidden layer of the MNIST MLP).
"""
import numpy as np

from .common import (BACKENDS, BATCHES, DTYPES, KEY, Benchmark, R, batchnorm_data,
                     copy_into, empty_like, get_kernels, rel_error, sync, to_backend)

N, KEEP = 512, 0.8


class BatchnormForward(Benchmark):
    params = [BACKENDS, BATCHES, DTYPES]
    param_names = ["backend", "batch", "dtype"]

    def setup(self, backend, m, dtype):
        self.K = get_kernels(backend)
        self.backend = backend
        self.host = batchnorm_data(m, N, dtype)
        self.args = to_backend(backend, *self.host[:5])
        Z, gamma = self.host[0], self.host[1]
        self.outs = dict(out=empty_like(backend, Z), act_out=empty_like(backend, Z),
                         x_hat_out=empty_like(backend, Z),
                         inv_std_out=empty_like(backend, gamma))
        self.time_batchnorm_activation_forward(backend, m, dtype)

    def time_batchnorm_activation_forward(self, backend, m, dtype):
        self.K.batchnorm_activation_forward(*self.args, 0.9, 1e-5, True, "relu", KEEP, KEY,
                                            **self.outs)
        sync(self.backend)

    def track_rel_error(self, backend, m, dtype):
        host = [a.astype(np.float64) for a in self.host[:5]]
        ref = R.batchnorm_activation_forward(*host, 0.9, 1e-5, True, "relu", KEEP, KEY)
        args = to_backend(backend, *self.host[:5])
        got = self.K.batchnorm_activation_forward(*args, 0.9, 1e-5, True, "relu", KEEP, KEY)
        errors = [rel_error(g, r) for g, r in zip(got, ref)]
        errors += [rel_error(args[3], host[3]), rel_error(args[4], host[4])]  # running stats
        return max(errors)
    track_rel_error.unit = "max relative error vs float64 reference"


class BatchnormBackward(Benchmark):
    """Each timed call first restores d_out (backward may overwrite it): one m x n copy."""
    params = [BACKENDS, BATCHES, DTYPES]
    param_names = ["backend", "batch", "dtype"]

    def setup(self, backend, m, dtype):
        self.K = get_kernels(backend)
        self.backend = backend
        Z, gamma, beta, rm, rv, d_out = batchnorm_data(m, N, dtype)
        _, act, x_hat, inv_std = R.batchnorm_activation_forward(
            Z, gamma, beta, rm, rv, 0.9, 1e-5, True, "relu", KEEP, KEY)
        self.host = (d_out, act, x_hat, inv_std, gamma)
        self.d0, self.act, self.x_hat, self.inv_std, self.gamma = to_backend(
            backend, *self.host)
        self.d = empty_like(backend, d_out)
        self.outs = dict(dZ_out=empty_like(backend, Z), dgamma_out=empty_like(backend, gamma),
                         dbeta_out=empty_like(backend, gamma))
        self.time_batchnorm_activation_backward(backend, m, dtype)

    def time_batchnorm_activation_backward(self, backend, m, dtype):
        copy_into(self.d, self.d0)
        self.K.batchnorm_activation_backward(self.d, self.act, self.x_hat, self.inv_std,
                                             self.gamma, "relu", KEEP, KEY, **self.outs)
        sync(self.backend)

    def track_rel_error(self, backend, m, dtype):
        host = [a.astype(np.float64) for a in self.host]
        ref = R.batchnorm_activation_backward(*host, "relu", KEEP, KEY)
        d = to_backend(backend, self.host[0].copy())
        got = self.K.batchnorm_activation_backward(d, self.act, self.x_hat, self.inv_std,
                                                   self.gamma, "relu", KEEP, KEY)
        return max(rel_error(g, r) for g, r in zip(got, ref))
    track_rel_error.unit = "max relative error vs float64 reference"
