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

        def train(self, X, Y, orders, lrs, batch_size, X_dev, Y_dev, dev_at=None):
            # scores the dev set after every epoch whatever dev_at asks: the caller
            # reads the epochs it wants (a dev pass is a small part of a GPU epoch)
            return _train(self, X, Y.argmax(axis=1), orders, lrs, batch_size, X_dev,
                          Y_dev.argmax(axis=1))

    return CudaStack


def _train(net, X, y, orders, lrs, batch, X_dev, y_dev):
    """Train net (a CudaStack) through all epochs; returns the (epochs, K) sums of the
    compiled engine's ``train``: training loss x n, right, dev loss x n_dev, dev right."""
    dt, K, L, sizes = net.dtype, net.K, net.L, [int(s) for s in net.sizes]
    n, epochs = len(X), len(orders)
    n_steps = -(-n // batch)
    code = net.code
    d = cuda.to_device
    params, grads = d(net.flat), d(np.zeros_like(net.flat))
    m1, v1 = d(net.m1), d(net.m2)
    Xd, yd = d(np.ascontiguousarray(X)), d(np.ascontiguousarray(y, np.int64))
    n_dev = len(X_dev)
    Xdd = d(np.ascontiguousarray(X_dev)) if n_dev else None
    ydd = d(np.ascontiguousarray(y_dev, np.int64)) if n_dev else None
    h = net.h
    cast = lambda a: d(np.ascontiguousarray(a, dt))  # noqa: E731
    b1, omb1, b2, omb2 = net.b1, net.omb1, net.b2, net.omb2
    b1, omb1, b2, omb2, eps, keep = (cast(a) for a in (b1, omb1, b2, omb2, net.eps,
                                                        net.keep))
    beta1, beta2, l2 = (d(np.ascontiguousarray(h[key], np.float64))
                        for key in ("beta1", "beta2", "l2"))
    th = d(net.th)
    drop_host = (net.th < 2**32).astype(np.uint8)
    drop = d(drop_host)
    keys = d(net.dropout_keys(epochs * n_steps))
    step_size, inv_sqrt_bc2, lam = (cuda.device_array(K, dt) for _ in range(3))
    seg_start = d(np.array([o for l in range(L) for o in (net.woff[l], net.boff[l])],
                           np.int64))
    seg_size = d(np.array([s for l in range(1, L + 1)
                           for s in (sizes[l] * sizes[l - 1], sizes[l])], np.int64))
    any_l2 = bool(np.any(h["l2"] > 0))
    if any_l2:   # chunks of each layer's weights for the sums of squares
        cs, cst, cl = [], [], []
        for l in range(1, L + 1):
            sz = sizes[l] * sizes[l - 1]
            for c0 in range(0, sz, SQ_CHUNK):
                cs.append(int(net.woff[l - 1]) + c0)
                cst.append(sz)
                cl.append(min(SQ_CHUNK, sz - c0))
        cstart, cstride, clen = (d(np.array(a, np.int64)) for a in (cs, cst, cl))
        partial = cuda.device_array((K, len(cs)), np.float64)
    rows = max(batch, min(n_dev, EVAL_ROWS))
    acts = [None] + [cuda.device_array(K * sizes[l] * rows, dt) for l in range(1, L + 1)]
    outs = [None] + [cuda.device_array(K * sizes[l] * rows, dt) for l in range(1, L)]
    dbuf = [None] + [cuda.device_array(K * sizes[l] * rows, dt) for l in range(1, L + 1)]
    row_loss = cuda.device_array((K, rows), np.float64)
    row_right = cuda.device_array((K, rows), np.int64)
    Xb = cuda.device_array((batch, sizes[0]), dt)
    yb = cuda.device_array(batch, np.int64)
    zero_drop = d(np.zeros(K, np.uint8))
    sums = [np.zeros((epochs, K)), np.zeros((epochs, K), np.int64),
            np.zeros((epochs, K)), np.zeros((epochs, K), np.int64)]

    def view(buf, *shape):
        return buf[:int(np.prod(shape))].reshape(shape)

    def W(l):   # layer l's weights of all models, (K, n_l, n_{l-1})
        return view(params[int(net.woff[l - 1]):], K, sizes[l], sizes[l - 1])

    def forward(A0, m, s, train):
        """Logits of all models on the (m, n_0) input A0, in acts[L] as (K, n_L, m)."""
        for l in range(1, L + 1):
            nout, z = sizes[l], acts[l]
            if l == 1:
                _device.gemm(view(params[int(net.woff[0]):], K * nout, sizes[0]), A0,
                             view(z, K * nout, m), transB=True)
            else:
                _bmm(W(l), view(outs[l - 1], K, sizes[l - 1], m), view(z, K, nout, m))
            if l < L:
                _run(_bias_activate, K * nout * m, view(z, K * nout * m),
                     params, int(net.boff[l - 1]), nout, m, code,
                     view(z, K * nout * m), view(outs[l], K * nout * m),
                     drop if train else zero_drop, keys, s, l - 1, th, keep)

    loss_acc, right_acc = cuda.device_array(K, np.float64), cuda.device_array(K, np.int64)
    for e in range(epochs):
        order = d(np.ascontiguousarray(orders[e], np.int64))
        lr = d(np.ascontiguousarray(lrs[e], np.float64))   # step_size is formed in float64
        loss_acc.copy_to_device(np.zeros(K))
        right_acc.copy_to_device(np.zeros(K, np.int64))
        for s0 in range(n_steps):
            s, x0 = e * n_steps + s0, s0 * batch
            m = min(batch, n - x0)
            xb = Xb[:m]
            _run(_gather, m * sizes[0], Xd, yd, order, x0, xb, yb)
            forward(xb, m, s, True)
            if any_l2:   # the L2 term of this batch's loss, weights before the step
                _run(_sq_chunks, partial.size, params, cstart, cstride, clen, partial)
                _run(_add_l2_loss, K, partial, l2, loss_acc)
            nk = sizes[L]
            _run(_softmax_loss, K * m, view(acts[L], K * nk * m), params,
                 int(net.boff[L - 1]), nk, m, yb, 0, dt.type(m), view(dbuf[L], K * nk * m),
                 row_loss, row_right)
            _run(_sum_rows, K, row_loss, row_right, m, loss_acc, right_acc)
            for l in range(L, 0, -1):
                nin, nout = sizes[l - 1], sizes[l]
                dz = view(dbuf[l], K * nout * m)
                if l == 1:
                    _device.gemm(view(dz, K * nout, m), xb,
                                 view(grads[int(net.woff[0]):], K * nout, nin))
                else:
                    _bmm(view(dz, K, nout, m), view(outs[l - 1], K, nin, m),
                         view(grads[int(net.woff[l - 1]):], K, nout, nin), transB=True)
                _run(_bias_grad, K * nout, dz, m, grads, int(net.boff[l - 1]))
                if l > 1:
                    da = view(dbuf[l - 1], K, nin, m)
                    _bmm(W(l), view(dz, K, nout, m), da, transA=True)
                    _run(_hidden_backward, K * nin * m, view(da, K * nin * m),
                         view(acts[l - 1], K * nin * m), nin, m, code, drop, keys, s,
                         l - 2, th, keep)
            _run(_adam_scalars, K, beta1, beta2, l2, lr, float(s + 1), float(m), step_size,
                 inv_sqrt_bc2, lam)
            _run(_adam, params.size, params, grads, m1, v1, seg_start, seg_size, b1,
                 omb1, b2, omb2, step_size, inv_sqrt_bc2, eps, lam)
        sums[0][e], sums[1][e] = loss_acc.copy_to_host(), right_acc.copy_to_host()
        if n_dev:
            loss_acc.copy_to_device(np.zeros(K))
            right_acc.copy_to_device(np.zeros(K, np.int64))
            for x0 in range(0, n_dev, rows):
                m = min(rows, n_dev - x0)
                forward(Xdd[x0:x0 + m], m, 0, False)
                nk = sizes[L]
                _run(_softmax_loss, K * m, view(acts[L], K * nk * m), params,
                     int(net.boff[L - 1]), nk, m, ydd, x0, dt.type(0),
                     view(dbuf[L], K * nk * m), row_loss, row_right)
                _run(_sum_rows, K, row_loss, row_right, m, loss_acc, right_acc)
            sums[2][e], sums[3][e] = loss_acc.copy_to_host(), right_acc.copy_to_host()
    net.flat[...] = params.copy_to_host()
    net.m1[...], net.m2[...] = m1.copy_to_host(), v1.copy_to_host()
    return sums
