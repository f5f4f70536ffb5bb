"""BatchNorm fused with ReLU and dropout: forward (training mode) and backward.

m = batch size, n = 512 features (the first hidden layer of the MNIST MLP).
"""
import numpy as np

from .common import (BACKENDS, BATCHES, DTYPES, KEY, Benchmark, R, batchnorm_data,
                     copy_into, empty_like, get_kernels, rel_error, sync, to_backend)

N, KEEP = 512, 0.8
HYPER = (0.9, 1e-5, True, "relu", KEEP, KEY)  # momentum, eps, training, activation, ...


class BatchnormForward(Benchmark):
    params = [BACKENDS, BATCHES, DTYPES]
    param_names = ["backend", "batch", "dtype"]

    def setup(self, backend, m, dtype):
        self.K = get_kernels(backend)
        self.backend = backend
        host = batchnorm_data(m, N, dtype)
        self.args = to_backend(backend, *host[:5])
        Z, gamma = host[0], host[1]
        self.outs = dict(out=empty_like(backend, Z), act_out=empty_like(backend, Z),
                         x_hat_out=empty_like(backend, Z),
                         inv_std_out=empty_like(backend, gamma))
        self.time_batchnorm_activation_forward(backend, m, dtype)

    def time_batchnorm_activation_forward(self, backend, m, dtype):
        self.K.batchnorm_activation_forward(*self.args, *HYPER, **self.outs)
        sync(self.backend)


class BatchnormBackward(Benchmark):
    """Each timed call first restores d_out (backward may overwrite it): one m x n copy."""
    params = [BACKENDS, BATCHES, DTYPES]
    param_names = ["backend", "batch", "dtype"]

    def setup(self, backend, m, dtype):
        self.K = get_kernels(backend)
        self.backend = backend
        Z, gamma, beta, rm, rv, d_out = batchnorm_data(m, N, dtype)
        _, act, x_hat, inv_std = R.batchnorm_activation_forward(Z, gamma, beta, rm, rv, *HYPER)
        self.d0, self.act, self.x_hat, self.inv_std, self.gamma = to_backend(
            backend, d_out, act, x_hat, inv_std, gamma)
        self.d = empty_like(backend, d_out)
        self.outs = dict(dZ_out=empty_like(backend, Z), dgamma_out=empty_like(backend, gamma),
                         dbeta_out=empty_like(backend, gamma))
        self.time_batchnorm_activation_backward(backend, m, dtype)

    def time_batchnorm_activation_backward(self, backend, m, dtype):
        copy_into(self.d, self.d0)
        self.K.batchnorm_activation_backward(self.d, self.act, self.x_hat, self.inv_std,
                                             self.gamma, "relu", KEEP, KEY, **self.outs)
        sync(self.backend)


class BatchnormAccuracy(Benchmark):
    """Largest relative error of every output against the float64 reference, batch 256."""
    params = [BACKENDS, DTYPES]
    param_names = ["backend", "dtype"]
    unit = "max relative error vs float64 reference"

    def setup(self, backend, dtype):
        self.K = get_kernels(backend)
        self.backend = backend
        self.host = batchnorm_data(256, N, dtype)
        self.ref = [a.astype(np.float64) for a in self.host]

    def track_forward_rel_error(self, backend, dtype):
        ref = R.batchnorm_activation_forward(*self.ref[:5], *HYPER)
        args = to_backend(backend, *[a.copy() for a in self.host[:5]])
        got = self.K.batchnorm_activation_forward(*args, *HYPER)
        errors = [rel_error(g, r) for g, r in zip(got, ref)]
        errors += [rel_error(args[3], self.ref[3]), rel_error(args[4], self.ref[4])]
        return max(errors)  # outputs and the updated running statistics
    track_forward_rel_error.unit = unit

    def track_backward_rel_error(self, backend, dtype):
        Z, gamma, beta, rm, rv, d_out = self.ref
        _, act, x_hat, inv_std = R.batchnorm_activation_forward(Z, gamma, beta, rm, rv, *HYPER)
        ref = R.batchnorm_activation_backward(d_out, act, x_hat, inv_std, gamma, "relu",
                                              KEEP, KEY)
        dtype_args = [a.astype(dtype) for a in (d_out, act, x_hat, inv_std, gamma)]
        got = self.K.batchnorm_activation_backward(*to_backend(backend, *dtype_args), "relu",
                                                   KEEP, KEY)
        return max(rel_error(g, r) for g, r in zip(got, ref))
    track_backward_rel_error.unit = unit
