"""The training step's work items, compiled: what one thread does with one ticket.

L = layers, l = 0 .. L-1; K = models; a group is G models from k0; m = batch rows;
n = a layer's width. Activations of a group are (m, G n) with model g in columns
[g n, (g + 1) n); ``net``, ``state``, ``data`` and ``where`` are the tuples of
fastdnn.engine.structs, whose row names index the tables. Products go to the one-threaded
BLAS (fastdnn.engine.blas) with leading dimensions, so no block is copied; everything
element-wise is the row loops of fastdnn.cpu._rows over fastdnn.formulas.

Sums over the batch (BatchNorm statistics, bias and BatchNorm gradients) run over all m
rows of a column block, in row order, in float64; one item owns each column, so they
never depend on the thread count. fastdnn.engine.program says which item runs when.
"""
import sys

import numpy as np
from numba import njit

from .._cache import harden_caches
from ..config import INTERNAL
from ..cpu._rows import (activate_inplace, add_scaled, bias_activate_inplace, copy_row,
                         dropout_inplace, dropout_row, grad_inplace, sum_squares,
                         update_range, update_scalars)
from ..formulas import (augment_draws, augment_key, augment_noise, augment_source,
                        batchnorm_grad,
                        dropout_key, inverse_std, poisson_deviance, running_average,
                        sigmoid, sigmoid_cross_entropy, softmax_cross_entropy_row,
                        squared_error)
from ..rng import GEOMETRY, NOISE as NOISE_KEY
from . import _link, blas
from ._link import separate
from .program import FORWARD, GATHER, INPUT_GRAD, OUTPUT, UPDATE, WEIGHT_GRAD
from .structs import (ACT, ACT_BUF, B_AT, BETA1, BETA2, BETA_AT, BIAS, BN, BN_EPS,
                      CORRECT, D_BUF, DECAY, EPS_SCALED, FLIP, GAMMA_AT, HI, IMAGE_C,
                      IMAGE_H, IMAGE_W, KEEP, KIND, L2, LAYER, LO, LOSS, M, MEAN_AT,
                      MOMENTUM, MU_BUF, N_IN, N_OUT, NOISE, OPT_EPS, OPT_KIND, OUT_BUF,
                      OUTPUT as OUTPUT_CODE, ROW_START, SEED, SHIFT, SLOT, SQ, STD_BUF,
                      STEP0, T0, THRESHOLD, UPDATE as UPDATES, VAR_AT, W_AT, WEIGHT_AT,
                      X_AT, XHAT_BUF, Y_AT)

_JIT = INTERNAL


@njit(**_JIT)
def _rows(buf, at, i, width, c0, c1):
    """Columns c0 .. c1 of row i of the (rows, width) block at ``at`` of buf."""
    return buf[at + i * width + c0:at + i * width + c1]


@njit(**_JIT)
def gather(where, net, data, run, buf):
    """Rows lo .. hi of step s's batch (the epoch's order) into the batch buffers;
    with run[IMAGE_H] > 0 augmented as they are copied, by model 0's seed and noise:
    every model of the run trains on the same batch, as on the same order (a group's
    draws must not depend on how models are grouped); from the CSR arrays when data's
    csr holds them (X is then an empty (0, n0) stand-in; no augmentation)."""
    s, lo, hi = where[0], where[4], where[5]
    X, Y, order, weights, csr = data
    n0, nk = X.shape[1], Y.shape[1]
    first = run[ROW_START] + s * run[M]
    sparse, augment = csr[0].shape[0] > 0, run[IMAGE_H] > 0
    seed, step = net[3][SEED, 0], run[STEP0] + s
    keys = (augment_key(seed, step, GEOMETRY), augment_key(seed, step, NOISE_KEY))
    scale = buf.dtype.type(net[2][NOISE, 0])
    for i in range(lo, hi):
        r = order[first + i]
        dst = _rows(buf, run[X_AT], i, n0, 0, n0)
        if sparse:
            _scatter_row(csr, r, dst)
        elif augment:
            _augment_row(X[r], dst, i, keys, run, scale)
        else:
            copy_row(X[r], dst)
        copy_row(Y[r], _rows(buf, run[Y_AT], i, nk, 0, nk))
        if run[WEIGHT_AT] >= 0:
            buf[run[WEIGHT_AT] + i] = weights[r]


@njit(**_JIT)
def _scatter_row(csr, r, dst):
    """dst = row r of the CSR matrix csr = (indptr, indices, values), densified."""
    indptr, indices, values = csr
    for j in range(dst.shape[0]):
        dst[j] = 0
    for p in range(indptr[r], indptr[r + 1]):
        dst[indices[p]] = values[p]


@njit(**_JIT)
def _augment_row(src, dst, i, keys, run, scale):
    """dst = batch row i made from the example src: its pixels moved (flipped, shifted,
    zeros where none comes), then the noise added (fastdnn.formulas' augment_*)."""
    H, W, C = run[IMAGE_H], run[IMAGE_W], run[IMAGE_C]
    if run[FLIP] == 0 and run[SHIFT] == 0:   # noise only: no pixel loop (2 ns an
        copy_row(src, dst)                   # element, kernels/augment_gather.py)
    else:
        draws = augment_draws(keys[0], i, run[FLIP], run[SHIFT])
        for y in range(H):
            for x in range(W):
                p, o = augment_source(y, x, H, W, draws), (y * W + x) * C
                if p < 0:
                    for c in range(C):
                        dst[o + c] = 0
                else:
                    for c in range(C):
                        dst[o + c] = src[p * C + c]
    if scale > 0:
        n = dst.shape[0]
        for j in range(n):
            dst[j] = dst[j] + augment_noise(keys[1], np.uint64(i * n + j), scale)


@njit(**INTERNAL)
def batch_weight(run, buf):
    """What the batch's loss is divided by: m, or the sum of its rows' weights (in row
    order, float64, so every item that needs it gets the same bits)."""
    if run[WEIGHT_AT] < 0:
        return np.float64(run[M])
    total = 0.0
    for i in range(run[M]):
        total += buf[run[WEIGHT_AT] + i]
    return total


@njit(**INTERNAL)
def per_batch(run, buf):
    """The factor from sums over the batch's rows (weighted) to those the host merges
    (loss times m): m / batch_weight, or exactly 1 without weights."""
    return 1.0 if run[WEIGHT_AT] < 0 else run[M] / batch_weight(run, buf)


gather = separate(gather)


# ----------------------------------------------------------------------------- forward

@njit(**_JIT)
def forward_hidden(where, net, run, state, buf, tmp, parts):
    """Hidden layer l on the group's units lo .. hi: the product, then bias or
    BatchNorm, the activation and dropout; the L2 sums of those units' weights."""
    s, k0, G, l, lo, hi, slot = where
    layer, model_f = net[0], net[2]
    P = state[0]
    n_in, n = layer[N_IN, l], layer[N_OUT, l]
    hi = min(hi, G * n)
    if lo >= hi:
        return
    z_at = layer[XHAT_BUF, l] if layer[BN, l] else layer[ACT_BUF, l]
    w0 = layer[W_AT, l] + (k0 * n + lo) * n_in
    if l == 0:     # the group's models share the batch: one product for all
        a_at, lda = run[X_AT], n_in
    else:
        a_at, lda = layer[OUT_BUF, l - 1] + (lo // n) * n_in, G * n_in
    blas.gemm((False, True, run[M], hi - lo, n_in), (buf, a_at, lda), (P, w0, n_in),
              (buf, z_at + lo, G * n), 0.0)
    for g in range(lo // n, (hi - 1) // n + 1):   # per model: its own hyperparameters
        block = (s, k0 + g, G, l, max(lo, g * n), min(hi, (g + 1) * n), g)
        if layer[BN, l]:
            _batchnorm_forward(block, net, run, state, buf, tmp)
        else:
            _bias_activation(block, net, run, P, buf)
        _dropout_forward(block, net, run, P, buf)
        k, c0, c1 = block[1], block[4], block[5]
        if model_f[L2, k] > 0:
            u0 = layer[W_AT, l] + (k * n + c0 - g * n) * n_in
            parts[SQ, s, k, slot] = sum_squares(P[u0:u0 + (c1 - c0) * n_in]) * \
                per_batch(run, buf)


forward_hidden = separate(forward_hidden)


@njit(**_JIT)
def _bias_activation(block, net, run, P, buf):
    """act = activation(z + b) on model k's columns c0 .. c1 (a block: where, with the
    model index k in place of k0 and its group position g in place of the slot)."""
    k, G, l, c0, c1, g = block[1], block[2], block[3], block[4], block[5], block[6]
    layer = net[0]
    n = layer[N_OUT, l]
    b0 = layer[B_AT, l] + k * n + c0 - g * n
    for i in range(run[M]):
        row = _rows(buf, layer[ACT_BUF, l], i, G * n, c0, c1)
        if layer[BIAS, l]:
            bias_activate_inplace(row, P[b0:b0 + c1 - c0], layer[ACT, l])
        else:
            activate_inplace(row, layer[ACT, l])


@njit(**_JIT)
def _batchnorm_forward(block, net, run, state, buf, tmp):
    """BatchNorm of model k's columns c0 .. c1 over the batch, then gamma, beta and the
    activation; batch statistics, running averages updated (when the run updates)."""
    k, G, l, c0, c1, g = block[1], block[2], block[3], block[4], block[5], block[6]
    layer, layer_f = net[0], net[1]
    P, running = state[0], state[4]
    n, m, cols = layer[N_OUT, l], run[M], c1 - c0
    width, z_at, dt = G * n, layer[XHAT_BUF, l], P.dtype.type
    mean, m2 = tmp[:cols], tmp[cols:2 * cols]
    for j in range(cols):
        mean[j] = 0.0
        m2[j] = 0.0
    for i in range(m):
        z = _rows(buf, z_at, i, width, c0, c1)
        for j in range(cols):
            mean[j] += z[j]
    for j in range(cols):
        mean[j] /= m
    for i in range(m):
        z = _rows(buf, z_at, i, width, c0, c1)
        for j in range(cols):
            d = z[j] - mean[j]
            m2[j] += d * d
    u = k * n + c0 - g * n          # the model's first unit in the stacked (K, n) vectors
    inv_std = buf[layer[STD_BUF, l] + c0:layer[STD_BUF, l] + c1]
    mu = buf[layer[MU_BUF, l] + c0:layer[MU_BUF, l] + c1]
    momentum, eps = dt(layer_f[MOMENTUM, l]), dt(layer_f[BN_EPS, l])
    rm, rv = layer[MEAN_AT, l] + u, layer[VAR_AT, l] + u
    for j in range(cols):
        var = dt(m2[j] / m)
        mu[j] = dt(mean[j])
        inv_std[j] = inverse_std(var, eps)
        if run[UPDATES]:
            running[rm + j] = running_average(running[rm + j], mu[j], momentum)
            running[rv + j] = running_average(running[rv + j], var, momentum)
    gamma = P[layer[GAMMA_AT, l] + u:layer[GAMMA_AT, l] + u + cols]
    beta = P[layer[BETA_AT, l] + u:layer[BETA_AT, l] + u + cols]
    for i in range(m):
        z = _rows(buf, z_at, i, width, c0, c1)
        a = _rows(buf, layer[ACT_BUF, l], i, width, c0, c1)
        for j in range(cols):
            x_hat = (z[j] - mu[j]) * inv_std[j]
            z[j] = x_hat
            a[j] = gamma[j] * x_hat + beta[j]
        activate_inplace(a, layer[ACT, l])


@njit(**_JIT)
def _dropout_forward(block, net, run, P, buf):
    """out = dropout(act) on model k's columns, where the layer has an output buffer of
    its own (some model drops); masks index the model's own (m, n) matrix."""
    s, k, G, l, c0, c1, g = block
    layer, model_f, model_u = net[0], net[2], net[3]
    if layer[OUT_BUF, l] == layer[ACT_BUF, l]:
        return
    n = layer[N_OUT, l]
    keep = model_f[KEEP + l, k]
    key = dropout_key(model_u[SEED, k], run[STEP0] + s, l + 1)
    for i in range(run[M]):
        a = _rows(buf, layer[ACT_BUF, l], i, G * n, c0, c1)
        o = _rows(buf, layer[OUT_BUF, l], i, G * n, c0, c1)
        if keep < 1.0:
            dropout_row(a, np.uint64(i * n + c0 - g * n), key,
                        model_u[THRESHOLD + l, k], P.dtype.type(keep), o)
        else:
            copy_row(a, o)


@njit(**_JIT)
def forward_output(where, net, run, P, buf, parts):
    """The output layer of model k0 + g (g in place of l) on rows lo .. hi: logits,
    loss, its gradient dZ = (y_hat - y) / m, right predictions; the L2 sum of its
    weights."""
    s, k0, G, g, lo, hi, slot = where
    if g >= G:
        return
    layer, model_f = net[0], net[2]
    l = layer.shape[1] - 1
    n_in, nk = layer[N_IN, l], layer[N_OUT, l]
    k = k0 + g
    if l == 0:
        a_at, lda = run[X_AT] + lo * n_in, n_in
    else:
        a_at, lda = layer[OUT_BUF, l - 1] + lo * G * n_in + g * n_in, G * n_in
    w0 = layer[W_AT, l] + k * nk * n_in
    blas.gemm((False, True, hi - lo, nk, n_in), (buf, a_at, lda), (P, w0, n_in),
              (buf, layer[ACT_BUF, l] + lo * G * nk + g * nk, G * nk), 0.0)
    loss, right = 0.0, 0
    scale = P.dtype.type(batch_weight(run, buf))
    for i in range(lo, hi):
        loss_i, right_i = _output_row(i, k, g, G, net, run, P, buf, scale)
        loss += loss_i
        right += right_i
    parts[LOSS, s, k, slot] = loss * per_batch(run, buf)
    parts[CORRECT, s, k, slot] = right
    if lo == 0 and model_f[L2, k] > 0:
        parts[SQ, s, k, slot] = sum_squares(P[w0:w0 + nk * n_in]) * per_batch(run, buf)


forward_output = separate(forward_output)


@njit(**_JIT)
def _output_row(i, k, g, G, net, run, P, buf, scale):
    """Bias, loss and dZ of model k's logits on row i, which weighs w_i (1 without
    weights): (w_i loss, right predictions); dZ = (y_hat - y) w_i / scale, scale = the
    batch's weight (m without weights)."""
    layer = net[0]
    l = layer.shape[1] - 1
    nk = layer[N_OUT, l]
    dt = P.dtype.type
    weight = dt(1) if run[WEIGHT_AT] < 0 else buf[run[WEIGHT_AT] + i]
    z = _rows(buf, layer[ACT_BUF, l], i, G * nk, g * nk, (g + 1) * nk)
    d = _rows(buf, layer[D_BUF, l], i, G * nk, g * nk, (g + 1) * nk)
    y = _rows(buf, run[Y_AT], i, nk, 0, nk)
    if layer[BIAS, l]:
        b = P[layer[B_AT, l] + k * nk:layer[B_AT, l] + (k + 1) * nk]
        for j in range(nk):
            z[j] = z[j] + b[j]
    return score_row(z, y, d, (scale, weight), run[OUTPUT_CODE])


@njit(**_JIT)
def score_row(z, y, d, scaling, output):
    """Loss of one row of logits z against targets y, times the row's weight w, the
    gradient (y_hat - y) w / m into d, and the right predictions: (w loss, right);
    scaling = (m, w) in z's dtype (w = 1: the plain mean's gradient, bit for bit)."""
    m, w = scaling
    nk = z.shape[0]
    loss, right = 0.0, 0
    if output == 0:
        loss, right = softmax_cross_entropy_row(z, y, d, m, w)
    elif output == 1:
        for j in range(nk):
            loss += sigmoid_cross_entropy(z[j], y[j])
            d[j] = (sigmoid(z[j]) - y[j]) * w / m
            right += (z[j] > 0) == (y[j] > 0.5)
    elif output == 3:
        for j in range(nk):
            deviance, diff = poisson_deviance(z[j], y[j])
            loss += deviance
            d[j] = diff * w / m
    else:
        for j in range(nk):
            half_sq, diff = squared_error(z[j], y[j])
            loss += half_sq
            d[j] = diff * w / m
    return loss * w, right


# ----------------------------------------------------------------------------- backward

@njit(**_JIT)
def weight_grad(where, net, run, lr, state, buf, tmp):
    """dW of the group's units lo .. hi of layer l (+ the L2 gradient, and db on the
    output layer); the first layer's rows are updated at once (nothing reads them
    later in the step)."""
    s, k0, G, l, lo, hi, _ = where
    layer, model_f = net[0], net[2]
    P, grads = state[0], state[1]
    n_in, n = layer[N_IN, l], layer[N_OUT, l]
    hi = min(hi, G * n)
    if lo >= hi:
        return
    m, last = run[M], l == layer.shape[1] - 1
    if l == 0:
        a_at, lda = run[X_AT], n_in
    else:
        a_at, lda = layer[OUT_BUF, l - 1] + (lo // n) * n_in, G * n_in
    blas.gemm((True, False, hi - lo, n_in, m), (buf, layer[D_BUF, l] + lo, G * n),
              (buf, a_at, lda), (grads, layer[W_AT, l] + (k0 * n + lo) * n_in, n_in), 0.0)
    dt = P.dtype.type
    for g in range(lo // n, (hi - 1) // n + 1):
        c0, c1 = max(lo, g * n), min(hi, (g + 1) * n)
        k = k0 + g
        r0 = layer[W_AT, l] + (k * n + c0 - g * n) * n_in
        r1 = r0 + (c1 - c0) * n_in
        if model_f[L2, k] > 0:
            add_scaled(grads[r0:r1], dt(model_f[L2, k] / batch_weight(run, buf)), P[r0:r1])
        b0 = layer[B_AT, l] + k * n + c0 - g * n
        with_bias = last and layer[BIAS, l]
        if with_bias:
            _column_sums(buf, layer[D_BUF, l], G * n, c0, c1, m, tmp)
            for j in range(c1 - c0):
                grads[b0 + j] = dt(tmp[j])
        if l == 0 and run[UPDATES]:
            optimize((s, k, r0, r1), net, run, lr, state)
            if with_bias:
                optimize((s, k, b0, b0 + c1 - c0), net, run, lr, state)


weight_grad = separate(weight_grad)


@njit(**_JIT)
def _column_sums(buf, at, width, c0, c1, m, tmp):
    """tmp[:c1 - c0] = sums over the m rows of columns c0 .. c1 (float64, row order)."""
    cols = c1 - c0
    for j in range(cols):
        tmp[j] = 0.0
    for i in range(m):
        row = _rows(buf, at, i, width, c0, c1)
        for j in range(cols):
            tmp[j] += row[j]


@njit(**_JIT)
def input_grad(where, net, run, lr, state, buf, tmp):
    """The gradient of layer l-1's output on its units lo .. hi (one model), then back
    through that layer's dropout, activation and BatchNorm to its dZ."""
    s, k0, G, l, lo, hi, _ = where
    layer = net[0]
    n_prev, n = layer[N_IN, l], layer[N_OUT, l]
    g = lo // n_prev
    if g >= G:
        return
    w0 = layer[W_AT, l] + (k0 + g) * n * n_prev + lo - g * n_prev
    blas.gemm((False, False, run[M], hi - lo, n), (buf, layer[D_BUF, l] + g * n, G * n),
              (state[0], w0, n_prev), (buf, layer[D_BUF, l - 1] + lo, G * n_prev), 0.0)
    _backward_epilogue((s, k0 + g, G, l - 1, lo, hi, g), net, run, lr, state, buf, tmp)


input_grad = separate(input_grad)


@njit(**_JIT)
def _backward_epilogue(block, net, run, lr, state, buf, tmp):
    """d = gradient of hidden layer l's output (model k, columns c0 .. c1) into its dZ:
    through dropout and the activation, then BatchNorm (with dgamma, dbeta) or the
    bias sum; those parameters are updated at once (nothing reads them later)."""
    s, k, G, l, c0, c1, g = block
    layer, model_f, model_u = net[0], net[2], net[3]
    n, m = layer[N_OUT, l], run[M]
    keep = model_f[KEEP + l, k]
    key = dropout_key(model_u[SEED, k], run[STEP0] + s, l + 1)
    kp = state[0].dtype.type(keep)
    for i in range(m):
        d = _rows(buf, layer[D_BUF, l], i, G * n, c0, c1)
        if keep < 1.0:
            dropout_inplace(d, np.uint64(i * n + c0 - g * n), key,
                            model_u[THRESHOLD + l, k], kp)
        grad_inplace(d, _rows(buf, layer[ACT_BUF, l], i, G * n, c0, c1), layer[ACT, l])
    u = k * n + c0 - g * n
    if layer[BN, l]:
        _batchnorm_backward(block, net, run, lr, state, buf, tmp)
    elif layer[BIAS, l]:
        grads = state[1]
        _column_sums(buf, layer[D_BUF, l], G * n, c0, c1, m, tmp)
        b0 = layer[B_AT, l] + u
        for j in range(c1 - c0):
            grads[b0 + j] = state[0].dtype.type(tmp[j])
        if run[UPDATES]:
            optimize((s, k, b0, b0 + c1 - c0), net, run, lr, state)


@njit(**_JIT)
def _batchnorm_backward(block, net, run, lr, state, buf, tmp):
    s, k, G, l, c0, c1, g = block
    layer = net[0]
    P, grads = state[0], state[1]
    n, m, cols = layer[N_OUT, l], run[M], c1 - c0
    width, dt = G * n, P.dtype.type
    d_at, x_at = layer[D_BUF, l], layer[XHAT_BUF, l]
    dbeta, dgamma = tmp[:cols], tmp[cols:2 * cols]
    for j in range(cols):
        dbeta[j] = 0.0
        dgamma[j] = 0.0
    for i in range(m):
        d = _rows(buf, d_at, i, width, c0, c1)
        x_hat = _rows(buf, x_at, i, width, c0, c1)
        for j in range(cols):
            dbeta[j] += d[j]
            dgamma[j] += d[j] * x_hat[j]
    u = k * n + c0 - g * n
    gb = grads[layer[BETA_AT, l] + u:layer[BETA_AT, l] + u + cols]
    gg = grads[layer[GAMMA_AT, l] + u:layer[GAMMA_AT, l] + u + cols]
    gamma = P[layer[GAMMA_AT, l] + u:layer[GAMMA_AT, l] + u + cols]
    inv_std = buf[layer[STD_BUF, l] + c0:layer[STD_BUF, l] + c1]
    scale = buf[layer[MU_BUF, l] + c0:layer[MU_BUF, l] + c1]   # the means are spent
    for j in range(cols):
        gb[j] = dt(dbeta[j])
        gg[j] = dt(dgamma[j])
        scale[j] = gamma[j] * inv_std[j] / dt(m)
    for i in range(m):
        d = _rows(buf, d_at, i, width, c0, c1)
        x_hat = _rows(buf, x_at, i, width, c0, c1)
        for j in range(cols):
            d[j] = batchnorm_grad(d[j], x_hat[j], scale[j], dt(m), gb[j], gg[j])
    if run[UPDATES]:
        at = layer[GAMMA_AT, l] + u
        optimize((s, k, at, at + cols), net, run, lr, state)
        at = layer[BETA_AT, l] + u
        optimize((s, k, at, at + cols), net, run, lr, state)


@njit(**_JIT)
def update_layer(where, net, run, lr, state):
    """The optimizer on the group's units lo .. hi of layer l (one model): their rows
    of W, and their biases on the output layer."""
    s, k0, G, l, lo, hi, _ = where
    layer = net[0]
    n_in, n = layer[N_IN, l], layer[N_OUT, l]
    k = k0 + lo // n
    if lo // n >= G or not run[UPDATES]:
        return
    at = layer[W_AT, l] + k0 * n * n_in
    optimize((s, k, at + lo * n_in, at + hi * n_in), net, run, lr, state)
    if l == layer.shape[1] - 1 and layer[BIAS, l]:
        at = layer[B_AT, l] + k0 * n
        optimize((s, k, at + lo, at + hi), net, run, lr, state)


update_layer = separate(update_layer)


@njit(**_JIT)
def optimize(span, net, run, lr, state):
    """One update of parameters lo .. hi of model k at step s: span = (s, k, lo, hi)."""
    s, k, lo, hi = span
    model_f = net[2]
    h = update_scalars(run[OPT_KIND], lr[s, k], np.float64(run[T0] + s + 1),
                       model_f[BETA1, k], model_f[BETA2, k], model_f[OPT_EPS, k],
                       model_f[DECAY, k], run[EPS_SCALED])
    update_range(run[OPT_KIND], state[0][lo:hi], state[1][lo:hi], state[2][lo:hi],
                 state[3][lo:hi], h)


optimize = separate(optimize)


# ----------------------------------------------------------------------------- dispatch

@njit(**_JIT)
def run_item(item, s, k0, G, scratch, net, run, lr, state, data, parts):
    """Row ``item`` of the program (int64 (PROGRAM_COLUMNS,)) at step s for the group
    of G models from k0; scratch = (buf, tmp) of this thread."""
    buf, tmp = scratch
    where = (s, k0, G, item[LAYER], item[LO], item[HI], item[SLOT])
    kind = item[KIND]
    if kind == GATHER:
        gather(where, net, data, run, buf)
    elif kind == FORWARD:
        forward_hidden(where, net, run, state, buf, tmp, parts)
    elif kind == OUTPUT:
        forward_output(where, net, run, state[0], buf, parts)
    elif kind == WEIGHT_GRAD:
        weight_grad(where, net, run, lr, state, buf, tmp)
    elif kind == INPUT_GRAD:
        input_grad(where, net, run, lr, state, buf, tmp)
    elif kind == UPDATE:
        update_layer(where, net, run, lr, state)


@njit(**_JIT)
def step_finite(parts, model_f, s, k0, G, m):
    """True when step s's loss (L2 term included) is finite for every model of the
    group (the output items must be done)."""
    for k in range(k0, k0 + G):
        total = 0.0
        sq = 0.0
        for slot in range(parts.shape[3]):
            total += parts[LOSS, s, k, slot]
            sq += parts[SQ, s, k, slot]
        if not np.isfinite(total / m + model_f[L2, k] / (2 * m) * sq):
            return False
    return True


_link.guard(sys.modules[__name__])


harden_caches(__name__)
