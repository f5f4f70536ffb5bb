"""A training step cut into work items, and the scratch it runs in (host side).

L = layers, l = 0 .. L-1, G = models of a group, m = batch rows, n_l = sizes[l + 1].

A step is 2L + 1 phases; an item may start when every item of the phases before its
own is done (fastdnn.engine.pool), and the items of one phase are independent:

  gather        the batch's rows (row blocks)
  forward l     for l < L-1: the product into a block of layer l's units, then bias or
                BatchNorm, activation and dropout on those columns (column blocks)
  output        the output layer's product, loss and gradient on a block of rows
  backward l    for l = L-1 .. 0:
                  weight_grad l   dW (and the output layer's db) on a block of units;
                                  the first layer's block is also updated at once
                  input_grad l    for l > 0: the gradient of layer l-1's output on a
                                  block of its units, back through dropout, activation
                                  and BatchNorm, with that block's bias / gamma / beta
                                  gradients and updates
                  update l+1      the optimizer on a block of W_{l+1} (no longer read)

Blocks are cut by shape alone, never by thread count, so results do not depend on how
many threads run them. A group trained by one thread alone ("private", caviar's chunks)
takes one block per layer and model: fewer, larger products.
"""
import numpy as np

from .structs import (ACT_BUF, D_BUF, MU_BUF, OUT_BUF, PHASE, PROGRAM_COLUMNS, STD_BUF,
                      WAIT, XHAT_BUF)

GATHER, FORWARD, OUTPUT, WEIGHT_GRAD, INPUT_GRAD, UPDATE = range(6)

# Shared runs: at most MAX_BLOCKS blocks per layer, each at least MIN_COLUMNS wide and
# MIN_WORK multiply-adds (about 5 us of one core: less does not pay for a hand-off).
MAX_BLOCKS = 4
MIN_COLUMNS = 64
MIN_WORK = 2**18
ROW_BLOCK = 64        # rows per output item
GATHER_ROWS = 16      # rows per gather item: an augmented row costs ~2.5 ns a pixel
UPDATE_BLOCK = 2**15  # parameters per update item
EPILOGUE_WORK = 32    # an element's epilogue (BatchNorm, activation, dropout), counted
                      # in multiply-adds of a product: about 1 ns against 0.03 ns


def _blocks(count, work_per_unit, shared):
    """[(lo, hi)] cutting ``count`` units into equal blocks."""
    if not shared:
        return [(0, count)]
    return _equal(count, min(MAX_BLOCKS, count // MIN_COLUMNS,
                             count * work_per_unit // MIN_WORK))


def _update_blocks(count, row_length, shared):
    """Blocks of ``count`` rows of ``row_length`` parameters, about UPDATE_BLOCK each."""
    if not shared:
        return [(0, count)]
    return _equal(count, min(count, count * row_length // UPDATE_BLOCK))


def _equal(count, parts):
    parts = max(1, int(parts))
    edges = [count * i // parts for i in range(parts + 1)]
    return list(zip(edges[:-1], edges[1:]))


def _row_blocks(m, shared):
    return _equal(m, -(-m // ROW_BLOCK) if shared else 1)


def training_program(sizes, G, m, shared):
    """The items of one training step of G models on m rows (see the module docstring).

    Returns (program, slots): the int64 (items, PROGRAM_COLUMNS) table and the number
    of partial-sum slots per step and model.
    """
    L = len(sizes) - 1
    items, slot = [], 0

    def add(phase, kind, layer, lo, hi, with_slot=False):
        nonlocal slot
        items.append((phase, kind, layer, lo, hi, slot if with_slot else -1))
        slot += with_slot

    for lo, hi in _equal(m, -(-m // GATHER_ROWS) if shared else 1):
        add(0, GATHER, 0, lo, hi)
    for l in range(L - 1):          # hidden layers: phases 1 .. L-1
        n_in, n = sizes[l], sizes[l + 1]
        for g0, width in _model_spans(l, n, G):
            for lo, hi in _blocks(width, m * (n_in + EPILOGUE_WORK), shared):
                add(1 + l, FORWARD, l, g0 + lo, g0 + hi, True)
    for g in range(G):              # the output layer: phase L
        for lo, hi in _row_blocks(m, shared):
            add(L, OUTPUT, g, lo, hi, True)
    for l in range(L - 1, -1, -1):  # backward: phases L + 1 .. 2L
        phase = L + 1 + (L - 1 - l)
        n_in, n = sizes[l], sizes[l + 1]
        for g0, width in _model_spans(l, n, G):
            for lo, hi in _blocks(width, m * n_in, shared):
                add(phase, WEIGHT_GRAD, l, g0 + lo, g0 + hi)
        if l > 0:
            n_prev = sizes[l]
            for g in range(G):
                for lo, hi in _blocks(n_prev, m * (n + EPILOGUE_WORK), shared):
                    add(phase, INPUT_GRAD, l, g * n_prev + lo, g * n_prev + hi)
        if l + 1 < L:
            n_in_next, n_next = sizes[l + 1], sizes[l + 2]
            for g in range(G):
                for lo, hi in _update_blocks(n_next, n_in_next, shared):
                    add(phase, UPDATE, l + 1, g * n_next + lo, g * n_next + hi)
    table = np.zeros((len(items), PROGRAM_COLUMNS), np.int64)
    table[:, :PHASE] = np.array(items, np.int64)[:, 1:]
    table[:, PHASE] = [it[0] for it in items]
    table[:, WAIT] = np.searchsorted(table[:, PHASE], table[:, PHASE])
    return table, slot


def _model_spans(l, n, G):
    """[(first column, width)]: the first layer's G models as one span (one product for
    all of them), deeper layers one span per model (one product each)."""
    if l == 0:
        return [(0, G * n)]
    return [(g * n, n) for g in range(G)]


def workspace(sizes, G, m, dropout, batchnorm):
    """Offsets into one row of Work.buf for G models on up to m rows, and its size.

    ``dropout`` and ``batchnorm``: per layer, whether any model drops out / the layer
    has BatchNorm. Returns (the layers' buffer offsets (rows ACT_BUF .. MU_BUF), (the
    batch's, its targets' and its row weights' offsets), size, tmp): tmp is the
    per-thread float64 scratch size.
    """
    L = len(sizes) - 1
    at = 0

    def take(count):
        nonlocal at
        start = at
        at += int(count)
        at += -at % 16      # 64-byte aligned blocks for float32 (128 for float64)
        return start

    x_at, y_at, w_at = take(m * sizes[0]), take(m * sizes[-1]), take(m)
    buffers = np.full((6, L), -1, np.int64)    # rows ACT_BUF .. MU_BUF, relative
    for l in range(L):
        width = G * sizes[l + 1]
        buffers[ACT_BUF - ACT_BUF, l] = act = take(m * width)
        buffers[OUT_BUF - ACT_BUF, l] = take(m * width) if dropout[l] else act
        if batchnorm[l]:
            buffers[XHAT_BUF - ACT_BUF, l] = take(m * width)
            buffers[STD_BUF - ACT_BUF, l] = take(width)
            buffers[MU_BUF - ACT_BUF, l] = take(width)
        buffers[D_BUF - ACT_BUF, l] = take(max(m * width, sizes[l + 1]))
    widest = max(G * n for n in sizes[1:])
    return buffers, (x_at, y_at, w_at), max(at, 1), 3 * widest
