"""Runs: what every thread of the pool executes for one call of the engine.

A run is a number of training steps, or an inference pass, handed out as tickets
(fastdnn.engine.pool). Three ways to share the work:

- ``train_shared``: one group of all K models (K = 1: a model's fit); each ticket is one
  item of one step, so the threads share every step, and a step's items of one phase
  wait only for the phases before it.
- ``train_private``: caviar's K models in groups of G; each ticket is one group trained
  through all the run's steps by one thread, with no waiting at all.
- ``infer``: blocks of rows (and groups of models), each through the whole network in
  inference mode, independent of one another.

m = batch rows, K = models, G = models of a group, L = layers; the tuples and table rows
are those of fastdnn.engine.structs. ``work`` = (buf, tmp): the workspace rows (one per
group trained at once) and per-thread float64 scratch.
"""
import sys

import numpy as np
from numba import njit

from .._cache import harden_caches
from ..config import CACHE, INTERNAL
from ..cpu._rows import activate_inplace, bias_activate_inplace
from . import _link, blas
from .pool import claim, close, finish, stop_before, wait_turn
from .steps import run_item, score_row, step_finite
from .structs import (ACT, ACT_BUF, B_AT, BETA_AT, BIAS, BN, BN_EPS, CORRECT, D_BUF,
                      GAMMA_AT, LOSS, M, MEAN_AT, MODELS, MU_BUF, N_IN, N_OUT, OUTPUT,
                      PHASE, STD_BUF, STEPS, STOP_ON_NAN, VAR_AT, W_AT, WAIT)

_JIT = dict(nogil=True, cache=CACHE, error_model="numpy")   # called from Python


@njit(**_JIT)
def train_shared(ctl, gen, net, state, data, work, run, lr, parts, program, tid):
    """Steps of all K models as one group, every step's items spread over the threads.

    With run[STOP_ON_NAN], a step whose loss is not finite is not applied: its backward
    items are skipped and no later step starts (the host finds it in parts).
    """
    per_step, L = program.shape[0], net[0].shape[1]
    K = net[3].shape[1]
    scratch = (work[0][0], work[1][tid])
    while True:
        t = claim(ctl, gen)
        if t < 0:
            break
        s = t // per_step
        item = program[t - s * per_step]
        if wait_turn(ctl, s * per_step + item[WAIT], t):
            if item[PHASE] > L and run[STOP_ON_NAN] and \
                    not step_finite(parts, net[2], s, 0, K, run[M]):
                stop_before(ctl, (s + 1) * per_step)
            else:
                run_item(item, s, 0, K, scratch, net, run, lr, state, data, parts)
        finish(ctl)
    if tid == 0:
        close(ctl, gen)


@njit(**_JIT)
def train_private(ctl, gen, net, state, data, work, run, lr, parts, program, tid):
    """Steps of K models in groups of run[MODELS], each group on one thread.

    A model whose loss is not finite keeps training (its values stay NaN): one model
    of a search diverging must not stop the others.
    """
    K, G = net[3].shape[1], run[MODELS]
    scratch = (work[0][tid], work[1][tid])
    while True:
        c = claim(ctl, gen)
        if c < 0:
            break
        k0 = c * G
        for s in range(run[STEPS]):
            for i in range(program.shape[0]):
                run_item(program[i], s, k0, min(G, K - k0), scratch, net, run, lr, state,
                         data, parts)
        finish(ctl)
    if tid == 0:
        close(ctl, gen)


# ----------------------------------------------------------------------------- inference

@njit(**_JIT)
def infer(ctl, gen, net, state, work, run, X, Y, out, parts, tid):
    """Logits of every model for every row of X into out (n K k,), in blocks of run[M]
    rows and groups of run[MODELS] models; with targets Y (n, k) (else an empty array),
    the summed losses and right predictions into parts[:, 0, k, block]."""
    K, G, rows = net[3].shape[1], run[MODELS], run[M]
    n = X.shape[0]
    blocks = (n + rows - 1) // rows
    buf = work[0][tid]
    while True:
        t = claim(ctl, gen)
        if t < 0:
            break
        group, block = t // blocks, t % blocks
        k0 = group * G
        r0 = block * rows
        span = (k0, min(G, K - k0), r0, min(n, r0 + rows), block)
        infer_rows(span, net, state[0], state[4], run, X, Y, out, parts, buf)
        finish(ctl)
    if tid == 0:
        close(ctl, gen)


@njit(**INTERNAL)
def infer_rows(span, net, P, running, run, X, Y, out, parts, buf):
    """Rows r0 .. r1 through every layer for models k0 .. k0 + G - 1 (no dropout,
    BatchNorm on its running statistics); span = (k0, G, r0, r1, block)."""
    k0, G, r0, r1, block = span
    layer = net[0]
    L, K, rows = layer.shape[1], net[3].shape[1], r1 - r0
    for l in range(L - 1):
        n_in, n = layer[N_IN, l], layer[N_OUT, l]
        w0 = layer[W_AT, l] + k0 * n * n_in
        if l == 0:
            blas.gemm((False, True, rows, G * n, n_in), (X, r0 * n_in, n_in), (P, w0, n_in),
                      (buf, layer[ACT_BUF, l], G * n), 0.0)
        else:
            for g in range(G):
                blas.gemm((False, True, rows, n, n_in),
                          (buf, layer[ACT_BUF, l - 1] + g * n_in, G * n_in),
                          (P, w0 + g * n * n_in, n_in),
                          (buf, layer[ACT_BUF, l] + g * n, G * n), 0.0)
        for g in range(G):
            _inference_epilogue((k0 + g, g, G, l, rows), net, P, running, buf)
    l = L - 1
    n_in, nk = layer[N_IN, l], layer[N_OUT, l]
    for g in range(G):
        k = k0 + g
        w0 = layer[W_AT, l] + k * nk * n_in
        c0 = r0 * K * nk + k * nk
        if l == 0:
            blas.gemm((False, True, rows, nk, n_in), (X, r0 * n_in, n_in), (P, w0, n_in),
                      (out, c0, K * nk), 0.0)
        else:
            blas.gemm((False, True, rows, nk, n_in),
                      (buf, layer[ACT_BUF, l - 1] + g * n_in, G * n_in), (P, w0, n_in),
                      (out, c0, K * nk), 0.0)
        _score_rows((k, r0, r1, block), net, P, run, Y, out, parts, buf)


@njit(**INTERNAL)
def _inference_epilogue(where, net, P, running, buf):
    """Bias or BatchNorm (folded: z s + t with s = gamma / sqrt(var + eps) and
    t = beta - mean s), then the activation, on model k's columns of layer l."""
    k, g, G, l, rows = where
    layer, layer_f = net[0], net[1]
    n = layer[N_OUT, l]
    width, at, u = G * n, layer[ACT_BUF, l], k * n
    dt = P.dtype.type
    if layer[BN, l]:
        s = buf[layer[STD_BUF, l]:layer[STD_BUF, l] + n]
        t = buf[layer[MU_BUF, l]:layer[MU_BUF, l] + n]
        eps = dt(layer_f[BN_EPS, l])
        for j in range(n):
            s[j] = P[layer[GAMMA_AT, l] + u + j] / np.sqrt(running[layer[VAR_AT, l] + u + j]
                                                           + eps)
            t[j] = P[layer[BETA_AT, l] + u + j] - running[layer[MEAN_AT, l] + u + j] * s[j]
        for i in range(rows):
            z = buf[at + i * width + g * n:at + i * width + (g + 1) * n]
            for j in range(n):
                z[j] = z[j] * s[j] + t[j]
            activate_inplace(z, layer[ACT, l])
    else:
        b = P[layer[B_AT, l] + u:layer[B_AT, l] + u + n]
        for i in range(rows):
            z = buf[at + i * width + g * n:at + i * width + (g + 1) * n]
            if layer[BIAS, l]:
                bias_activate_inplace(z, b, layer[ACT, l])
            else:
                activate_inplace(z, layer[ACT, l])


@njit(**INTERNAL)
def _score_rows(where, net, P, run, Y, out, parts, buf):
    """Add model k's output bias to its logits on rows r0 .. r1; with targets, the
    summed loss and right predictions into parts[:, 0, k, block]."""
    k, r0, r1, block = where
    layer = net[0]
    l = layer.shape[1] - 1
    nk, K = layer[N_OUT, l], net[3].shape[1]
    b = P[layer[B_AT, l] + k * nk:layer[B_AT, l] + (k + 1) * nk]
    scratch = buf[layer[D_BUF, l]:layer[D_BUF, l] + nk]
    loss, right = 0.0, 0
    for i in range(r0, r1):
        z = out[i * K * nk + k * nk:i * K * nk + (k + 1) * nk]
        if layer[BIAS, l]:
            for j in range(nk):
                z[j] = z[j] + b[j]
        if Y.shape[0] > 0:
            one = P.dtype.type(1.0)
            loss_i, right_i = score_row(z, Y[i], scratch, (one, one), run[OUTPUT])
            loss += loss_i
            right += right_i
    if Y.shape[0] > 0:
        parts[LOSS, 0, k, block] = loss
        parts[CORRECT, 0, k, block] = right


_link.guard(sys.modules[__name__])


harden_caches(__name__)
