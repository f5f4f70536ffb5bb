"""Parameter storage: the flat buffers of a network's parameters, gradients and BatchNorm
statistics, and the per-layer views into them.

L = layers (dense blocks), n_in, n_out = a layer's widths, K = models (1 for a model;
caviar stacks K of one architecture). Layer l (from 1 in names, "W1", "b1", ...) has
W (K, n_out, n_in), then b (K, n_out) when it has a bias, then gamma and beta (K, n_out)
when BatchNorm follows it; for K = 1 the leading axis is dropped. The running means of
every BatchNorm layer come first in ``running``, then the running variances.

One flat buffer per kind means an optimizer step is one pass, a snapshot one copy, and
the compiled engine sees a handful of arrays with offsets (``tables``).
"""
import math
from dataclasses import dataclass

import numpy as np

from ..rng import keep_threshold
from .structs import (ACT, B_AT, BETA_AT, BIAS, BN, DROP, GAMMA_AT, LAYER_ROWS, MEAN_AT,
                      N_IN, N_OUT, SEED, THRESHOLD, VAR_AT, W_AT)


@dataclass
class Block:
    """One dense block: Dense [-> BatchNorm] -> activation [-> dropout]."""
    n_in: int
    n_out: int
    init: str
    bias: bool           # adds a bias (never with BatchNorm)
    bn: object           # the BatchNorm layer spec (momentum, eps) or None
    activation: str      # the kernels' activation ("identity" on the output layer)
    keep_prob: float


def block_entries(l, n_in, n_out, bias, batchnorm):
    """Block l's parameters in buffer order, as (name, shape of one model): W (n_out,
    n_in), b (n_out,) with a bias, gamma and beta (n_out,) with BatchNorm. The one place
    the layout is written (the model's summary and load's size checks count it too)."""
    entries = [(f"W{l}", (n_out, n_in))]
    if bias:
        entries.append((f"b{l}", (n_out,)))
    if batchnorm:
        entries += [(f"gamma{l}", (n_out,)), (f"beta{l}", (n_out,))]
    return entries


def block_size(n_in, n_out, bias, batchnorm):
    """How many parameters one model's block holds (see block_entries)."""
    return sum(math.prod(shape) for _, shape in
               block_entries(0, n_in, n_out, bias, batchnorm))


class Parameters:
    """The flat buffers of K models of one architecture, and views into them.

    ``arrays`` allocates (NumPy by default; the GPU engine passes its own).
    """

    def __init__(self, blocks, dtype, models=1, arrays=None):
        self.blocks, self.dtype, self.models = blocks, np.dtype(dtype), models
        self.arrays = arrays or HOST
        K = models
        self.layout, size = [], 0      # (name, offset, shape of one model)
        for l, blk in enumerate(blocks, start=1):
            for name, shape in block_entries(l, blk.n_in, blk.n_out, blk.bias,
                                             blk.bn is not None):
                self.layout.append((name, size, shape))
                size += K * int(np.prod(shape))
        self.size = size
        self.n_bn = sum(blk.n_out for blk in blocks if blk.bn is not None)
        self.flat = self.arrays.zeros(size, self.dtype)
        self.grad = self.arrays.zeros(size, self.dtype)
        self.running = self.arrays.zeros(max(2 * K * self.n_bn, 1), self.dtype)
        self.p = self.views(self.flat)
        self.g = self.views(self.grad)
        self.rm, self.rv = self.running_views(self.running)

    def views(self, flat, stacked=False):
        """{name: view of ``flat``}: (n_out, n_in) / (n_out,), with a leading K axis for
        stacked models (also for K = 1 when ``stacked``)."""
        K = self.models
        lead = () if K == 1 and not stacked else (K,)
        return {name: flat[o:o + K * int(np.prod(s))].reshape(lead + s)
                for name, o, s in self.layout}

    def running_views(self, running, stacked=False):
        """({l: running means}, {l: running variances}) of the BatchNorm layers."""
        K, half = self.models, self.models * self.n_bn
        lead = () if K == 1 and not stacked else (K,)
        rm, rv, offset = {}, {}, 0
        for l, blk in enumerate(self.blocks, start=1):
            if blk.bn is not None:
                size = K * blk.n_out
                rm[l] = running[offset:offset + size].reshape(lead + (blk.n_out,))
                rv[l] = running[half + offset:half + offset + size].reshape(
                    lead + (blk.n_out,))
                offset += size
        return rm, rv

    def offset(self, name):
        for entry, o, _ in self.layout:
            if entry == name:
                return o
        return -1

    # ------------------------------------------------------------------ copies
    def snapshot(self):
        """Copies of the parameters and running statistics (``restore`` puts them back)."""
        return self.arrays.clone(self.flat), self.arrays.clone(self.running)

    def restore(self, state):
        self.arrays.copy_into(self.flat, state[0])
        self.arrays.copy_into(self.running, state[1])

    def host_state(self):
        """NumPy copies of the flat parameters and running statistics (for saving)."""
        return self.arrays.get(self.flat), self.arrays.get(self.running)

    def set_host_state(self, flat, running):
        self.arrays.set(self.flat, flat)
        self.arrays.set(self.running, running)

    # ------------------------------------------------------------------ the engine's view
    def tables(self, seeds, keep=None):
        """The compiled engine's fixed tables of these buffers (fastdnn.engine.structs):
        (layer, layer_f, model_u, keep). ``layer`` has no workspace offsets yet (-1);
        ``seeds`` are per model (K,), ``keep`` (L, K) keep probabilities (default: each
        block's keep_prob for every model)."""
        from ..formulas import ACTIVATION_CODES
        blocks, K = self.blocks, self.models
        L = len(blocks)
        layer = np.full((LAYER_ROWS, L), -1, np.int64)
        bn_offset = 0
        for l, blk in enumerate(blocks):
            layer[N_IN, l], layer[N_OUT, l] = blk.n_in, blk.n_out
            layer[ACT, l] = ACTIVATION_CODES[blk.activation]
            layer[BIAS, l], layer[BN, l] = blk.bias, blk.bn is not None
            for row, name in ((W_AT, "W"), (B_AT, "b"), (GAMMA_AT, "gamma"),
                              (BETA_AT, "beta")):
                layer[row, l] = self.offset(f"{name}{l + 1}")
            if blk.bn is not None:
                layer[MEAN_AT, l] = bn_offset
                layer[VAR_AT, l] = K * self.n_bn + bn_offset
                bn_offset += K * blk.n_out
        layer_f = np.array([[b.bn.momentum if b.bn else 0.0 for b in blocks],
                            [b.bn.eps if b.bn else 1.0 for b in blocks]], np.float64)
        if keep is None:
            keep = np.array([[blk.keep_prob] * K for blk in blocks], np.float64)
        keep = np.asarray(keep, np.float64).reshape(L, K)
        layer[DROP] = (keep < 1).any(axis=1)
        model_u = np.zeros((THRESHOLD + L, K), np.uint64)
        model_u[SEED] = [int(s) & (2**64 - 1) for s in np.atleast_1d(seeds)]
        model_u[THRESHOLD:] = [[keep_threshold(kp) for kp in row] for row in keep]
        return layer, layer_f, model_u, keep


class HostArrays:
    """Array operations on NumPy arrays (the numpy and cpu backends); the GPU engine
    has a twin with the same methods (fastdnn.cuda.engine.DeviceArrays)."""

    device = False

    def empty(self, shape, dtype):
        return np.empty(shape, dtype)

    def zeros(self, shape, dtype):
        return np.zeros(shape, dtype)

    def put(self, host):
        return host

    def get(self, a):
        return a.copy()

    def set(self, dst, value):
        dst[...] = value

    def clone(self, a):
        return a.copy()

    def copy_into(self, dst, src):
        dst[...] = src


HOST = HostArrays()
