"""Caviar on CUDA: K MLPs of one architecture trained together on the GPU.

K = models, m = batch size, n_l = width of layer l (n_0 inputs, n_L = k classes),
P = parameters per model, S = training steps over all epochs.

The layout of the CPU engine's stack (fastdnn.search.caviar._EngineStack): one flat
layer-major buffer W1 (K, n_1, n_0), b1 (K, n_1), W2 (K, n_2, n_1), ..., Adam's moments
and the gradient alike. Activations are kept transposed, (K, n_l, m), so that

- the first layer of all K models is ONE GEMM, Z1^T = W1_all (K n_1, n_0) @ X_b^T, and
  so is its weight gradient dW1_all = dZ1^T @ X_b (they share the batch);
- deeper layers are one batched GEMM each (W_l (K, n_out, n_in) @ A^T (K, n_in, m));

all through ``fastdnn.cuda._device.gemm`` / CuPy (cuBLAS; NumPy under the simulator).
Everything element-wise is a grid-stride numba-cuda kernel over all K models at once
(bias + activation + dropout, softmax cross-entropy and dZ, activation backward, the
bias sums, the L2 sums of squares and Adam with per-model hyperparameter arrays), so a
training step is a fixed handful of launches whatever K is. The activation, dropout and
Adam are fastdnn.formulas', as in the CPU engine (Adam with the same host-side scalars,
here computed per model on the device). Every reduction sums in a fixed order (one
thread per output, or fixed chunks merged in order): results do not depend on the
launch geometry. They match the CPU engines to rounding (cuBLAS sums in its own order;
exp, log and pow are the device's).
"""
import math

import numpy as np
from numba import cuda, uint64

from ..formulas import activate, activation_grad, adam_step, dropout, is_kept
from . import _device
from ._device import launch, to_host
from .engine import augment_batch

# Rows of the dev set evaluated per forward pass (bounds the scratch memory).
EVAL_ROWS = 4096
# Weights per partial sum of squares (the L2 term of the loss), merged in order.
SQ_CHUNK = 1024
# Adam's coupled decay on the biases (no L2) and its decoupled factor (plain Adam);
# float32, so that a float32 kernel stays float32 (as fastdnn.formulas' constants)
_ZERO = np.float32(0.0)
_ONE = np.float32(1.0)


# ----------------------------------------------------------------------------- kernels

@cuda.jit
def _gather(X, y, order, x0, Xb, yb):
    """Xb[i, :] = X[order[x0 + i], :] and yb[i] = y[order[x0 + i]] (the batch's rows);
    one thread per element of Xb."""
    m, n = Xb.shape
    for t in range(cuda.grid(1), m * n, cuda.gridsize(1)):
        i = t // n
        j = t - i * n
        Xb[i, j] = X[order[x0 + i], j]
        if j == 0:
            yb[i] = y[order[x0 + i]]


@cuda.jit
def _bias_activate(Z, params, b0, n, m, code, acts, outs, drop, keys, s, layer, th,
                   keep):
    """acts = activation(Z + b), outs = dropout(acts) for the dropout models (else a
    copy), on (K, n, m) flat buffers; one thread per element."""
    for t in range(cuda.grid(1), Z.shape[0], cuda.gridsize(1)):
        kj = t // m
        i = t - kj * m
        k = kj // n
        a = activate(Z[t] + params[b0 + kj], code)
        acts[t] = a
        if drop[k]:
            a = dropout(a, is_kept(keys[k, s, layer], uint64(i * n + (kj - k * n)), th[k]),
                        keep[k])
        outs[t] = a


@cuda.jit
def _softmax_loss(Z, params, b0, nk, m, y, x0, scale, dZ, row_loss, row_right):
    """Per model k and row i: logits Z[k, :, i] + b, cross-entropy to row_loss[k, i],
    1 if the argmax is right to row_right[k, i]; with scale > 0 also
    dZ = (softmax - one_hot) / scale. One thread per (k, i)."""
    K = row_loss.shape[0]
    for t in range(cuda.grid(1), K * m, cuda.gridsize(1)):
        k = t // m
        i = t - k * m
        base = k * nk * m + i
        b = b0 + k * nk
        zmax = Z[base] + params[b]
        best = 0
        for j in range(1, nk):
            z = Z[base + j * m] + params[b + j]
            if z > zmax:
                zmax = z
                best = j
        S = zmax * 0
        for j in range(nk):
            S += math.exp(Z[base + j * m] + params[b + j] - zmax)
        label = y[x0 + i]
        zl = Z[base + label * m] + params[b + label] - zmax
        row_loss[k, i] = -(zl - math.log(S))
        row_right[k, i] = 1 if best == label else 0
        if scale > 0:
            for j in range(nk):
                p = math.exp(Z[base + j * m] + params[b + j] - zmax) / S
                if j == label:
                    p = p - 1
                dZ[base + j * m] = p / scale


@cuda.jit
def _sum_rows(row_loss, row_right, m, loss, right):
    """loss[k] += sum_i row_loss[k, i] (in order), likewise right; one thread per k."""
    for k in range(cuda.grid(1), loss.shape[0], cuda.gridsize(1)):
        s = 0.0
        r = 0
        for i in range(m):
            s += row_loss[k, i]
            r += row_right[k, i]
        loss[k] += s
        right[k] += r


@cuda.jit
def _sq_chunks(params, cstart, cstride, clen, partial):
    """partial[k, c] = sum of squares (float64) of chunk c of model k's weights; chunk c
    starts at cstart[c] + k * cstride[c]. One thread per (k, c)."""
    K, C = partial.shape
    for t in range(cuda.grid(1), K * C, cuda.gridsize(1)):
        k = t // C
        c = t - k * C
        p0 = cstart[c] + k * cstride[c]
        s = 0.0
        for j in range(clen[c]):
            w = float(params[p0 + j])
            s += w * w
        partial[k, c] = s


@cuda.jit
def _add_l2_loss(partial, l2, loss):
    """loss[k] += l2[k] / 2 * sum_c partial[k, c] (in order); one thread per k."""
    for k in range(cuda.grid(1), loss.shape[0], cuda.gridsize(1)):
        if l2[k] > 0:
            s = 0.0
            for c in range(partial.shape[1]):
                s += partial[k, c]
            loss[k] += l2[k] / 2 * s


@cuda.jit
def _bias_grad(dZ, m, grads, b0):
    """grads[b0 + r] = sum_i dZ[r, i] (in order) for the (K n, m) flat dZ; one thread
    per row r = k n + j."""
    for r in range(cuda.grid(1), dZ.shape[0] // m, cuda.gridsize(1)):
        s = dZ[r * m]
        for i in range(1, m):
            s += dZ[r * m + i]
        grads[b0 + r] = s


@cuda.jit
def _hidden_backward(dA, acts, n, m, code, drop, keys, s, layer, th, keep):
    """dA = dropout'(dA) * activation'(acts) in place, on (K, n, m) flat buffers."""
    for t in range(cuda.grid(1), dA.shape[0], cuda.gridsize(1)):
        kj = t // m
        i = t - kj * m
        k = kj // n
        d = dA[t]
        if drop[k]:
            d = dropout(d, is_kept(keys[k, s, layer], uint64(i * n + (kj - k * n)), th[k]),
                        keep[k])
        dA[t] = d * activation_grad(acts[t], code)


@cuda.jit
def _adam_scalars(beta1, beta2, l2, lr, step, m, step_size, inv_sqrt_bc2, lam):
    """Per model, in float64 and stored in the dtype: Adam's step_size = lr / (1 -
    beta1^t) and inv_sqrt_bc2 = 1 / sqrt(1 - beta2^t) (the CPU engine's scalars), and the
    L2 factor l2 / m."""
    for k in range(cuda.grid(1), step_size.shape[0], cuda.gridsize(1)):
        step_size[k] = lr[k] / (1.0 - beta1[k] ** step)
        inv_sqrt_bc2[k] = 1.0 / math.sqrt(1.0 - beta2[k] ** step)
        lam[k] = l2[k] / m


@cuda.jit
def _adam(params, grads, m1, v1, seg_start, seg_size, b1, omb1, b2, omb2, step_size,
          inv_sqrt_bc2, eps, lam):
    """formulas.adam_step on the whole flat buffer, each element with its model's
    hyperparameters: segment q (W1, b1, W2, ...) holds K blocks of seg_size[q]; weight
    segments (even q) get the L2 gradient lam * p (adam_step's coupled decay). One
    thread per element."""
    n_seg = seg_size.shape[0]
    for t in range(cuda.grid(1), params.shape[0], cuda.gridsize(1)):
        q = 0
        while q + 1 < n_seg and t >= seg_start[q + 1]:
            q += 1
        k = (t - seg_start[q]) // seg_size[q]
        wd = lam[k] if q % 2 == 0 else _ZERO
        params[t], m1[t], v1[t] = adam_step(params[t], grads[t], m1[t], v1[t], step_size[k],
                                            b1[k], omb1[k], b2[k], omb2[k],
                                            inv_sqrt_bc2[k], eps[k], wd, _ONE)


# ----------------------------------------------------------------------------- driver

def _bmm(A, B, out, transA=False, transB=False):
    """out[k] = op(A[k]) @ op(B[k]) for 3-D device arrays: one batched cuBLAS call
    through CuPy, or NumPy on host copies (simulator / no CuPy)."""
    cp = _device._cupy()
    if cp is not None:
        a, b, o = cp.asarray(A), cp.asarray(B), cp.asarray(out)
        a = a.transpose(0, 2, 1) if transA else a
        b = b.transpose(0, 2, 1) if transB else b
        cp.matmul(a, b, out=o)
        return out
    a, b = to_host(A), to_host(B)
    a = a.transpose(0, 2, 1) if transA else a
    b = b.transpose(0, 2, 1) if transB else b
    out.copy_to_device(np.ascontiguousarray(np.matmul(a, b).astype(out.dtype, copy=False)))
    return out


def _run(kernel, n_items, *args):
    kernel[launch(max(int(n_items), 1))](*args)


def make_stack(base):
    """The CUDA stack class, a subclass of the engine's host-side stack ``base``
    (fastdnn.search.caviar._EngineStack: layout, initialisation, views)."""

    class CudaStack(base):
        """K stacked MLPs on the GPU; ``train`` runs the whole training there."""

        def train(self, X, Y, orders, lrs, batch_size, X_dev, Y_dev, dev_at=None,
                  augment=None):
            # scores the dev set after every epoch whatever dev_at asks: the caller
            # reads the epochs it wants (a dev pass is a small part of a GPU epoch)
            return _train(self, X, Y.argmax(axis=1), orders, lrs, batch_size, X_dev,
                          Y_dev.argmax(axis=1), augment)

    return CudaStack


def _train(net, X, y, orders, lrs, batch, X_dev, y_dev, augment=None):
    """Train net (a CudaStack) through all epochs, the batches augmented by ``augment``
    (an active fastdnn.Augment or None); returns the (epochs, K) sums of the compiled
    engine's ``train``: training loss x n, right, dev loss x n_dev, dev right."""
    epochs, K = len(orders), net.K
    n_steps = -(-len(X) // batch)
    run = _DeviceRun(net, X, y, X_dev, y_dev, batch, epochs * n_steps, augment)
    sums = [np.zeros((epochs, K)), np.zeros((epochs, K), np.int64),
            np.zeros((epochs, K)), np.zeros((epochs, K), np.int64)]
    for e in range(epochs):
        order = cuda.to_device(np.ascontiguousarray(orders[e], np.int64))
        lr = cuda.to_device(np.ascontiguousarray(lrs[e], np.float64))  # step_size: float64
        run.reset_sums()
        for s0 in range(n_steps):
            run.train_step(e * n_steps + s0, s0 * batch, order, lr)
        sums[0][e], sums[1][e] = run.read_sums()
        if run.n_dev:
            sums[2][e], sums[3][e] = run.dev_pass()
    run.download()
    return sums


def _view(buf, *shape):
    """The first prod(shape) elements of the flat device array buf, reshaped."""
    return buf[:int(np.prod(shape))].reshape(shape)


class _DeviceRun:
    """One training run of a CudaStack on the device: its parameters, Adam's moments,
    the data and the workspaces, and the launches of a training step and a dev pass.
    ``download`` copies the parameters and moments back into the stack."""

    def __init__(self, net, X, y, X_dev, y_dev, batch, n_steps, augment=None):
        """Upload net's state and the data; n_steps is the number of steps of the whole
        run (the dropout keys); ``augment``: an active fastdnn.Augment or None."""
        self.net, self.batch, self.n, self.n_dev = net, batch, len(X), len(X_dev)
        self.augment = augment
        self.dt, self.K, self.L, self.code = net.dtype, net.K, net.L, net.code
        self.sizes = [int(s) for s in net.sizes]
        d = cuda.to_device
        self.params, self.grads = d(net.flat), d(np.zeros_like(net.flat))
        self.m1, self.m2 = d(net.m1), d(net.m2)
        self.X, self.y = d(np.ascontiguousarray(X)), d(np.ascontiguousarray(y, np.int64))
        self.X_dev = d(np.ascontiguousarray(X_dev)) if self.n_dev else None
        self.y_dev = d(np.ascontiguousarray(y_dev, np.int64)) if self.n_dev else None
        self._upload_hyperparameters(n_steps)
        self._make_l2_chunks()
        self._allocate_workspaces()

    def _upload_hyperparameters(self, n_steps):
        """Per-model Adam, L2 and dropout arrays, and Adam's segment table."""
        net, d, dt, h = self.net, cuda.to_device, self.dt, self.net.h
        # in the dtype, so that the Adam and dropout kernels stay in it
        self.b1, self.omb1, self.b2, self.omb2, self.eps, self.keep = (
            d(np.ascontiguousarray(a, dt))
            for a in (net.b1, net.omb1, net.b2, net.omb2, net.eps, net.keep))
        # float64: _adam_scalars forms the bias corrections in float64
        self.beta1, self.beta2, self.l2 = (d(np.ascontiguousarray(h[key], np.float64))
                                           for key in ("beta1", "beta2", "l2"))
        self.th = d(net.th)
        self.drop = d((net.th < 2**32).astype(np.uint8))   # th = 2^32 keeps everything
        self.keys = d(net.dropout_keys(n_steps))
        self.step_size, self.inv_sqrt_bc2, self.lam = (cuda.device_array(self.K, dt)
                                                       for _ in range(3))
        # Adam's segments W1, b1, W2, ... (the weight segments get the L2 decay)
        L, sizes = self.L, self.sizes
        self.seg_start = d(np.array([o for l in range(L)
                                     for o in (net.woff[l], net.boff[l])], np.int64))
        self.seg_size = d(np.array([s for l in range(1, L + 1)
                                    for s in (sizes[l] * sizes[l - 1], sizes[l])],
                                   np.int64))

    def _make_l2_chunks(self):
        """Chunks of SQ_CHUNK weights of each layer for the L2 term's sums of squares:
        model k's chunk c starts at chunk_start[c] + k * chunk_stride[c]. None (and no
        L2 launches) when no model has L2."""
        self.any_l2 = bool(np.any(self.net.h["l2"] > 0))
        if not self.any_l2:
            return
        starts, strides, lengths = [], [], []
        for l in range(1, self.L + 1):
            size = self.sizes[l] * self.sizes[l - 1]
            for c0 in range(0, size, SQ_CHUNK):
                starts.append(int(self.net.woff[l - 1]) + c0)
                strides.append(size)
                lengths.append(min(SQ_CHUNK, size - c0))
        self.chunk_start, self.chunk_stride, self.chunk_len = (
            cuda.to_device(np.array(a, np.int64)) for a in (starts, strides, lengths))
        self.partial = cuda.device_array((self.K, len(starts)), np.float64)

    def _allocate_workspaces(self):
        """Per-layer (K, n_l, rows) buffers, shared by the training batches and the dev
        chunks (rows of either), the per-row scores and the epoch's sums."""
        K, L, dt, sizes = self.K, self.L, self.dt, self.sizes
        self.rows = rows = max(self.batch, min(self.n_dev, EVAL_ROWS))

        def per_layer(top):
            return [None] + [cuda.device_array(K * sizes[l] * rows, dt)
                             for l in range(1, top)]

        self.acts = per_layer(L + 1)   # activations; the logits (no bias) at L
        self.outs = per_layer(L)       # after dropout: the next layer's input
        self.dZ = per_layer(L + 1)     # dZ_l; dA_l first, turned into dZ_l in place
        self.row_loss = cuda.device_array((K, rows), np.float64)
        self.row_right = cuda.device_array((K, rows), np.int64)
        self.Xb = cuda.device_array((self.batch, sizes[0]), dt)
        # the gathered rows that augmentation reads (it writes Xb)
        self.X_source = (cuda.device_array((self.batch, sizes[0]), dt)
                         if self.augment is not None else None)
        self.yb = cuda.device_array(self.batch, np.int64)
        self.zero_drop = cuda.to_device(np.zeros(K, np.uint8))   # no dropout on dev
        self.loss_sum = cuda.device_array(K, np.float64)
        self.right_sum = cuda.device_array(K, np.int64)

    def _weights(self, l, buf=None):
        """Layer l's weights of all models in params (or buf), (K, n_l, n_{l-1})."""
        buf = self.params if buf is None else buf
        return _view(buf[int(self.net.woff[l - 1]):], self.K, self.sizes[l],
                     self.sizes[l - 1])

    def reset_sums(self):
        """Zero the loss sum and number right (an epoch's, or a dev pass's)."""
        self.loss_sum.copy_to_device(np.zeros(self.K))
        self.right_sum.copy_to_device(np.zeros(self.K, np.int64))

    def read_sums(self):
        """The loss sum and number right per model since reset_sums, on the host."""
        return self.loss_sum.copy_to_host(), self.right_sum.copy_to_host()

    def forward(self, A0, m, step, train):
        """Logits of all models on the (m, n_0) input A0, in acts[L] as (K, n_L, m)
        without the output bias (_softmax_loss adds it); train: dropout with step's
        masks."""
        K, L, sizes, net = self.K, self.L, self.sizes, self.net
        for l in range(1, L + 1):
            nout, z = sizes[l], self.acts[l]
            if l == 1:   # one GEMM for all models: they share the input
                _device.gemm(_view(self.params[int(net.woff[0]):], K * nout, sizes[0]), A0,
                             _view(z, K * nout, m), transB=True)
            else:
                _bmm(self._weights(l), _view(self.outs[l - 1], K, sizes[l - 1], m),
                     _view(z, K, nout, m))
            if l < L:
                _run(_bias_activate, K * nout * m, _view(z, K * nout * m),
                     self.params, int(net.boff[l - 1]), nout, m, self.code,
                     _view(z, K * nout * m), _view(self.outs[l], K * nout * m),
                     self.drop if train else self.zero_drop, self.keys, step, l - 1,
                     self.th, self.keep)

    def _score(self, y, x0, m, scale):
        """Adds the softmax cross-entropy and right answers of the logits against
        y[x0:x0 + m] to the sums; with scale > 0 also dZ_L = (softmax - y) / scale."""
        K, nk = self.K, self.sizes[self.L]
        _run(_softmax_loss, K * m, _view(self.acts[self.L], K * nk * m), self.params,
             int(self.net.boff[self.L - 1]), nk, m, y, x0, scale,
             _view(self.dZ[self.L], K * nk * m), self.row_loss, self.row_right)
        _run(_sum_rows, self.K, self.row_loss, self.row_right, m, self.loss_sum,
             self.right_sum)

    def train_step(self, step, x0, order, lr):
        """Training step ``step`` (over all epochs) on the batch order[x0:x0 + batch]:
        its loss (L2 term included) and right answers to the sums, then Adam."""
        m = min(self.batch, self.n - x0)
        xb = self.Xb[:m]
        if self.augment is None:
            _run(_gather, m * self.sizes[0], self.X, self.y, order, x0, xb, self.yb)
        else:   # the first model's draws, as the CPU engine's gather
            source = self.X_source[:m]
            _run(_gather, m * self.sizes[0], self.X, self.y, order, x0, source, self.yb)
            augment_batch(source, xb, self.augment, (self.net.seeds[0], step))
        self.forward(xb, m, step, True)
        if self.any_l2:   # the L2 term of this batch's loss, weights before the step
            _run(_sq_chunks, self.partial.size, self.params, self.chunk_start,
                 self.chunk_stride, self.chunk_len, self.partial)
            _run(_add_l2_loss, self.K, self.partial, self.l2, self.loss_sum)
        self._score(self.yb, 0, m, self.dt.type(m))   # dZ of the batch's mean loss
        self._backward(xb, m, step)
        self._adam_update(step, m, lr)

    def _backward(self, xb, m, step):
        """grads of all layers from dZ_L, back through the hidden layers (dropout
        masks of step)."""
        K, sizes, net = self.K, self.sizes, self.net
        for l in range(self.L, 0, -1):
            nin, nout = sizes[l - 1], sizes[l]
            dz = _view(self.dZ[l], K * nout * m)
            if l == 1:   # one GEMM for all models, as forward
                _device.gemm(_view(dz, K * nout, m), xb,
                             _view(self.grads[int(net.woff[0]):], K * nout, nin))
            else:
                _bmm(_view(dz, K, nout, m), _view(self.outs[l - 1], K, nin, m),
                     self._weights(l, self.grads), transB=True)
            _run(_bias_grad, K * nout, dz, m, self.grads, int(net.boff[l - 1]))
            if l > 1:
                da = _view(self.dZ[l - 1], K, nin, m)
                _bmm(self._weights(l), _view(dz, K, nout, m), da, transA=True)
                _run(_hidden_backward, K * nin * m, _view(da, K * nin * m),
                     _view(self.acts[l - 1], K * nin * m), nin, m, self.code, self.drop,
                     self.keys, step, l - 2, self.th, self.keep)

    def _adam_update(self, step, m, lr):
        """Adam on the whole flat buffer, its scalars (t = step + 1) formed per model
        on the device."""
        _run(_adam_scalars, self.K, self.beta1, self.beta2, self.l2, lr, float(step + 1),
             float(m), self.step_size, self.inv_sqrt_bc2, self.lam)
        _run(_adam, self.params.size, self.params, self.grads, self.m1, self.m2,
             self.seg_start, self.seg_size, self.b1, self.omb1, self.b2, self.omb2,
             self.step_size, self.inv_sqrt_bc2, self.eps, self.lam)

    def dev_pass(self):
        """The dev set's loss sum and number right per model (inference mode, in
        chunks of ``rows``), on the host."""
        self.reset_sums()
        for x0 in range(0, self.n_dev, self.rows):
            m = min(self.rows, self.n_dev - x0)
            self.forward(self.X_dev[x0:x0 + m], m, 0, False)
            self._score(self.y_dev, x0, m, self.dt.type(0))   # scale 0: no dZ
        return self.read_sums()

    def download(self):
        """Copy the parameters and Adam's moments back into the stack."""
        self.net.flat[...] = self.params.copy_to_host()
        self.net.m1[...], self.net.m2[...] = self.m1.copy_to_host(), self.m2.copy_to_host()
