"""The compiled engine on the CPU, host side: runs of training steps and inference.

n = examples, m = batch rows, K = models, L = layers, P = parameters.

Training goes in runs: each run is one call that the pool's threads execute together
(fastdnn.engine.runs), as many steps of one batch size as take about RUN_SECONDS, so
that progress, callbacks and Ctrl-C stay responsive while no Python runs between steps.
Scratch is taken from a free list for the length of a call and given back, so a model
answers several threads at once (each call has its own) and a steady state allocates
nothing.
"""
import threading
import time
from collections import namedtuple

import numpy as np

from .. import config
from ..formulas import OPTIMIZER_CODES, OUTPUT_CODES
from . import _link, steps
from .pool import default_pool
from .program import training_program, workspace
from .runs import infer, train_private, train_shared
from .sparse import CsrRows
from .structs import (ACT_BUF, BETA1, BETA2, BN, CORRECT, DECAY, DROP, EPS_SCALED, FLIP,
                      IMAGE_C, IMAGE_H, IMAGE_W, KEEP, L2, LOSS, M, MODELS, MU_BUF, NOISE,
                      OPT_EPS, OPT_KIND, OUTPUT, ROW_START, RUN_FIELDS, SHIFT, SQ, STEP0,
                      STEPS, STOP_ON_NAN, T0, UPDATE, WEIGHT_AT, X_AT, Y_AT)
from .threads import current_threads

RUN_SECONDS = 0.05    # target length of one run of steps
MAX_RUN_STEPS = 256   # steps per run at most (the size of the per-step sums)
INFER_ROWS = 128      # rows per inference item
# ... and per item of a batch-invariant inference, whose last block is filled up: 64
# halves a single row's cost against 128 at the same cost on large batches (float64,
# 784-512-256-10: 1 row 1.8 against 3.2 ms, 10000 rows 141-144 against 136-140 ms)
INVARIANT_ROWS = 64
SMALL_STEP = 2**20    # multiply-adds below which a call runs on one thread (waking a
                      # worker costs about 20 us)

EpochResult = namedtuple("EpochResult", "loss correct steps diverged")
# What ``train`` gives ``on_run`` after each run: the pass's sums so far, as EpochResult's
# (loss (K,) summed over rows, L2 term included; right predictions (K,)) over ``rows``
# rows. The engine's own accumulators: read them during the call, do not keep them.
RunningSums = namedtuple("RunningSums", "rows loss correct")


class Workspaces:
    """A free list of scratch objects by key: ``take`` lends one for a block of code
    (made on first need), so concurrent calls never share one."""

    def __init__(self):
        self._lock = threading.Lock()
        self._free = {}

    def take(self, key, make):
        with self._lock:
            stack = self._free.get(key)
            item = stack.pop() if stack else None
        return _Lent(self, key, item if item is not None else make())

    def _give_back(self, key, item):
        with self._lock:
            stack = self._free.setdefault(key, [])
            if len(stack) < 4:
                stack.append(item)


class _Lent:
    def __init__(self, owner, key, item):
        self.owner, self.key, self.item = owner, key, item

    def __enter__(self):
        return self.item

    def __exit__(self, *exc):
        self.owner._give_back(self.key, self.item)
        return False


class _Scratch:
    """What one call needs besides the model's buffers: the layer table with this
    workspace's offsets, the workspace, the per-model numbers, the run's scalars, the
    per-step learning rates and partial sums."""

    def __init__(self, tables, sizes, G, m, threads, rows, slots, steps, dtype):
        layer, self.layer_f, self.model_u, keep = tables
        L, K = layer.shape[1], self.model_u.shape[1]
        buffers, (x_at, y_at, self.weight_at), size, tmp = workspace(
            sizes, G, m, layer[DROP] > 0, layer[BN] > 0)
        self.layer = layer.copy()
        self.layer[ACT_BUF:MU_BUF + 1] = buffers
        self.work = (aligned_zeros((rows, size), dtype), np.zeros((threads, tmp)))
        self.model_f = np.zeros((KEEP + L, K))
        self.model_f[KEEP:] = keep
        self.run = np.zeros(RUN_FIELDS, np.int64)
        self.run[[M, MODELS, X_AT, Y_AT]] = m, G, x_at, y_at
        self.lr = np.zeros((steps, K))
        self.parts = np.zeros((3, steps, K, max(slots, 1)))
        self.compiled = False   # the work items' code checked for these arguments

    @property
    def net(self):
        return self.layer, self.layer_f, self.model_f, self.model_u


class ThreadChoice:
    """How many threads each batch size's training runs take: the threads allowed, or
    one while one measures faster (fastdnn.config.ADAPT_THREADS; False: the threads).

    Beside a busy process the threads wait for each other's descheduled work items,
    and a step can cost more than on one thread (kernels/engine_threads.py).

    After a few runs on the threads, two runs try one thread (RECHECK_RUNS apart: the
    first of a scratch pays for its setup), since a machine busy from the start never
    looks contended; on a quiet machine the threads win and that is all they cost.
    After that, when a run of the threads takes CONTENDED times their best (a busy
    machine), the next run tries one thread. The runs stay on one thread while it is
    faster, trying the threads again every RECHECK_RUNS runs (about half a second), so
    they come back when the machine is quiet again. Results do not depend on the
    thread count.
    """

    CONTENDED = 1.3     # a run of the threads this much over their best: a busy machine
    MARGIN = 0.95       # one thread must take under MARGIN x the threads' time to win
    RECHECK_RUNS = 10   # runs between tries of the other choice
    SETTLE_RUNS = 3     # runs on the threads before the first try of one
    TRIALS = 2          # tries of one thread whatever the threads take

    def __init__(self):
        self._sizes = {}   # m -> _Timings

    def threads(self, m, allowed):
        """The threads of m-row steps' next run, ``allowed`` at most."""
        t = self._sizes.get(m)
        if allowed <= 1 or not config.ADAPT_THREADS or t is None or t.many is None:
            return allowed
        if t.on_one:
            return allowed if t.since >= self.RECHECK_RUNS else 1
        return 1 if t.try_one else allowed

    def record(self, m, allowed, used, seconds):
        """A run of m-row steps took ``seconds`` per step on ``used`` threads."""
        if allowed <= 1:
            return
        t = self._sizes.get(m)
        if t is None:
            t = self._sizes[m] = _Timings()
        if used > 1:
            t.many = seconds
            t.best = seconds if t.best is None else min(t.best, seconds)
            if t.on_one:   # the threads tried again: back to them if they win now
                t.on_one, t.since = seconds >= t.one, 0
            t.runs += 1
            t.wait = max(t.wait - 1, 0)
            t.try_one = t.wait == 0 and t.runs >= self.SETTLE_RUNS and (
                t.trials < self.TRIALS or seconds > self.CONTENDED * t.best)
        else:
            t.one, t.try_one = seconds, False
            if t.on_one:
                t.since += 1
                return
            t.trials += 1
            if t.many is not None and seconds < self.MARGIN * t.many:
                t.on_one, t.since = True, 0
            else:
                t.wait = self.RECHECK_RUNS   # one thread lost: not again for a while


class _Timings:
    """One batch size's last seconds per step on the threads (many) and on one thread
    (one), the threads' best, and where its runs are."""

    def __init__(self):
        self.many = self.best = self.one = None
        self.on_one = self.try_one = False
        self.since = self.wait = 0   # runs on one thread; runs before trying it again
        self.runs = self.trials = 0  # runs on the threads; tries of one thread


class CpuEngine:
    """Training and inference of K models of one architecture on the CPU.

    ``params``: fastdnn.engine.layout.Parameters; ``output``: "softmax", "sigmoid" or
    "identity"; ``seeds``: (K,) dropout seeds; ``keep``: (L, K) keep probabilities
    (default: the blocks'). ``group``: models per group. With all K in one group (the
    default) the threads share every step's work items (fastdnn.engine.runs.train_shared);
    with smaller groups each thread trains whole groups (train_private), the way many
    small models of a search train fastest.
    """

    def __init__(self, params, output, seeds, keep=None, group=None):
        if params.blocks[-1].bn is not None:
            # the compiled steps normalize hidden layers only: refuse rather than skip it
            raise ValueError("a BatchNorm after the output Dense is not supported by the "
                             "cpu backend; remove it, or use backend='numpy'")
        self.params, self.output = params, OUTPUT_CODES[output]
        self.group = min(group or params.models, params.models)
        self.sizes = [params.blocks[0].n_in] + [b.n_out for b in params.blocks]
        self.tables = params.tables(seeds, keep)
        self._programs = {}
        self._workspaces = Workspaces()
        self._step_seconds = {}   # m -> measured seconds per step
        self._thread_choice = ThreadChoice()

    def _program(self, m, G, shared):
        key = (m, G, shared)
        if key not in self._programs:
            self._programs[key] = training_program(self.sizes, G, m, shared)
        return self._programs[key]

    def _state(self, optimizer):
        p = self.params
        s1 = s2 = p.flat[:1]
        if optimizer is not None:
            arrays = optimizer.flat_state(p.flat)
            s1 = arrays[0] if arrays else s1
            s2 = arrays[1] if len(arrays) > 1 else s2
        return p.flat, p.grad, s1, s2, p.running

    # ------------------------------------------------------------------ training
    def train(self, data, batch, optimizer, lr_of_step, step0, l2, *, update=True,
              stop_on_nan=True, on_run=None, augment=None):
        """One pass over ``data`` = (X, Y, order, row weights (empty: all 1)) in batches
        of ``batch`` rows (X dense, or fastdnn.engine.sparse.CsrRows): full
        batches, then the rest. ``lr_of_step(i)``: the learning rate (or (K,) rates) of
        the pass's step i; ``step0``: training steps done before (dropout keys);
        ``l2``: lambda (or (K,) of them); ``on_run(steps, sums)`` after each run of
        ``steps`` steps, with the pass's RunningSums so far (free here: the run's sums
        are merged on the host anyway; once per run, nothing per step);
        ``augment``: a fastdnn.Augment applied to the batches as they are gathered
        (None: none; every model trains on model 0's draws, as on one order).

        Returns EpochResult: summed loss (L2 term included, times each batch's rows) and
        right predictions per model (K,), steps applied, and the pass's step whose loss
        was not finite (None if none; with stop_on_nan no later step was applied).
        """
        data = _engine_data(data, augment)
        n = data[2].shape[0]
        K = self.params.models
        loss, correct = np.zeros(K), np.zeros(K, np.int64)
        done, full = 0, n // batch
        plan = [(batch, full)] + ([(n - full * batch, 1)] if n % batch else [])
        row = 0
        for m, count in plan:
            first = 0
            while first < count:
                steps = min(count - first, self._run_length(m))
                start = time.perf_counter()
                lrs = [lr_of_step(done + s) for s in range(steps)]
                allowed = self._threads(m)
                threads = self._thread_choice.threads(m, allowed)
                applied, bad = self._run(data, (row, m, steps, step0 + done), optimizer,
                                         lrs, l2, (update, stop_on_nan), (loss, correct),
                                         augment, threads)
                self._step_seconds[m] = (time.perf_counter() - start) / steps
                self._thread_choice.record(m, allowed, threads, self._step_seconds[m])
                done += applied
                if on_run is not None:
                    on_run(applied, RunningSums(row + applied * m, loss, correct))
                if bad:
                    return EpochResult(loss, correct, done, done)
                first += steps
                row += steps * m
        return EpochResult(loss, correct, done, None)

    def step(self, X, Y, optimizer, lr, step, l2, update=True, weights=None,
             augment=None):
        """One step on the batch (X, Y) (rows weighing ``weights``, default 1): its loss
        (L2 term included), the gradients in params.grad, and the update when
        ``update`` and the loss is finite. ``augment``: as in ``train``, the rows
        getting the draws of training step ``step``."""
        weights = _NO_WEIGHTS[X.dtype.type] if weights is None else weights
        result = self.train((X, Y, np.arange(X.shape[0]), weights),
                            X.shape[0], optimizer,
                            lambda i: lr, step, l2, update=update, stop_on_nan=update,
                            augment=augment)
        return float(result.loss[0]) / X.shape[0] if result.diverged is None else np.nan

    def _run_length(self, m):
        seconds = self._step_seconds.get(m)
        if seconds is None:
            return 1
        return int(max(1, min(MAX_RUN_STEPS, RUN_SECONDS / max(seconds, 1e-7))))

    def _run(self, data, span, optimizer, lrs, l2, flags, sums, augment, threads):
        """One run on ``threads`` threads: span = (first row in the order, m rows a step,
        steps, steps done before); flags = (update, stop_on_nan); adds to sums = (loss,
        correct). Returns (steps applied, whether a non-finite loss stopped it)."""
        row_start, m, steps, step0 = span
        update, stop_on_nan = flags
        loss, correct = sums
        p = self.params
        K, G = p.models, self.group
        shared = G == K
        program, slots = self._program(m, G, shared)
        key = ("train", m, threads)
        make = lambda: _Scratch(self.tables, self.sizes, G, m, threads,  # noqa: E731
                                1 if shared else threads, slots, MAX_RUN_STEPS, p.dtype)
        with self._workspaces.take(key, make) as sc:
            sc.parts[:, :steps] = 0
            sc.lr[:steps] = np.asarray(lrs, np.float64).reshape(steps, -1)
            sc.model_f[L2] = l2
            _set_augment(sc, augment)
            if update:
                self._set_optimizer(sc, optimizer)
            sc.run[[STEPS, ROW_START, STEP0, UPDATE, STOP_ON_NAN, OUTPUT, WEIGHT_AT]] = \
                steps, row_start, step0, update, stop_on_nan, self.output, \
                sc.weight_at if data[3].shape[0] else -1
            state = self._state(optimizer if update else None)
            args = (sc.net, state, data, sc.work, sc.run, sc.lr, sc.parts, program)
            if not sc.compiled:   # (once per scratch: it types every argument)
                _link.compile_ahead(_item_jobs(sc, state, data))
                sc.compiled = True
            if shared:
                default_pool().run(train_shared, args, steps * len(program), threads)
            else:
                default_pool().run(train_private, args, -(-K // G), threads)
            applied, bad = _merge(sc.parts, steps, sc.model_f[L2], loss, correct,
                                  stop_on_nan)
        if update and optimizer is not None:
            optimizer.t += applied
        return applied, bad

    @staticmethod
    def _set_optimizer(sc, optimizer):
        code = OPTIMIZER_CODES.get(getattr(optimizer, "engine_name", None))
        if code is None:
            raise TypeError(f"{type(optimizer).__name__} has no compiled update; the cpu "
                            "backend runs SGD, Momentum, Nesterov, RMSprop, Adam and AdamW")
        f = sc.model_f
        f[BETA1] = getattr(optimizer, "beta1", getattr(optimizer, "beta", 0.0))
        f[BETA2] = getattr(optimizer, "beta2", 0.0)
        f[OPT_EPS] = getattr(optimizer, "eps", 1.0)
        f[DECAY] = optimizer.weight_decay
        sc.run[[OPT_KIND, T0, EPS_SCALED]] = code, optimizer.t, \
            bool(getattr(optimizer, "eps_scaled", False))

    def _threads(self, m):
        work = 3 * m * sum(a * b for a, b in zip(self.sizes, self.sizes[1:]))
        return 1 if work * self.params.models < SMALL_STEP else current_threads()

    # ------------------------------------------------------------------ inference
    def infer(self, X, Y=None, whole_blocks=False):
        """Logits (n, K, k) of X (C-contiguous, the model's dtype); with targets Y (n, k)
        also the summed loss (without the L2 term) and right predictions per model.
        ``whole_blocks`` (without Y): give a row the same bits in any batch (below)."""
        if whole_blocks and Y is not None:
            raise ValueError("whole_blocks is for predictions: the filled rows would count "
                             "in the loss")
        n = X.shape[0]
        rows = INVARIANT_ROWS if whole_blocks else INFER_ROWS
        if whole_blocks:
            X = filled_up(X, rows)
        p = self.params
        K, G, padded = p.models, self.group, X.shape[0]
        nk = self.sizes[-1]
        blocks = -(-padded // rows)
        work = padded * K * sum(a * b for a, b in zip(self.sizes, self.sizes[1:]))
        threads = current_threads() if blocks * -(-K // G) > 1 and work >= SMALL_STEP else 1
        out = np.empty(padded * K * nk, p.dtype)
        make = lambda: _Scratch(self.tables, self.sizes, G, rows, threads,  # noqa
                                threads, 0, 1, p.dtype)
        with self._workspaces.take(("infer", threads, rows), make) as sc:
            parts = np.zeros((3, 1, K, blocks))
            sc.run[OUTPUT] = self.output
            Yd = _NO_Y[p.dtype.type] if Y is None else Y
            default_pool().run(infer, (sc.net, self._state(None), sc.work, sc.run, X, Yd,
                                       out, parts), blocks * -(-K // G), threads)
        logits = out.reshape(padded, K, nk)[:n]
        if Y is None:
            return logits
        return logits, parts[LOSS, 0].sum(axis=1), parts[CORRECT, 0].sum(axis=1)


def filled_up(X, height):
    """X with copies of its last row up to a multiple of ``height`` rows. A row's bits
    depend on the height of its BLAS call (OpenBLAS picks kernels by size;
    kernels/row_invariance.py): batch-invariant inference gives every call one height."""
    short = -X.shape[0] % height
    return np.concatenate([X, np.repeat(X[-1:], short, axis=0)]) if short else X


def _item_jobs(sc, state, data):
    """The separately compiled work items and the arguments they get (as run_item
    passes them), the forward half first (compiled here when the cache is cold) and the
    backward half (in a helper process)."""
    where, span = (0,) * 7, (0,) * 4
    buf, tmp = sc.work[0][0], sc.work[1][0]
    net, run, lr, parts = sc.net, sc.run, sc.lr, sc.parts
    return [(steps.gather, (where, net, data, run, buf)),
            (steps.forward_hidden, (where, net, run, state, buf, tmp, parts)),
            (steps.forward_output, (where, net, run, state[0], buf, parts)),
            (steps.weight_grad, (where, net, run, lr, state, buf, tmp)),
            (steps.input_grad, (where, net, run, lr, state, buf, tmp)),
            (steps.update_layer, (where, net, run, lr, state)),
            (steps.optimize, (span, net, run, lr, state))]


def _engine_data(data, augment):
    """(X, Y, order, weights) as the compiled gather takes it: with the CSR arrays of a
    sparse X (fastdnn.engine.sparse.CsrRows; X then an empty stand-in), else empty
    ones."""
    X, Y, order, weights = data[:4]
    if not isinstance(X, CsrRows):
        return X, Y, order, weights, _NO_CSR[X.dtype.type]
    if augment is not None and augment.active:
        raise ValueError("augment needs a dense X; pass X.toarray()")
    return np.empty((0, X.shape[1]), X.dtype), Y, order, weights, X.csr


def _set_augment(sc, augment):
    """The run's augmentation fields (fastdnn.engine.structs): the image shape, flip,
    shift and the noise scale; IMAGE_H = 0 when there is none."""
    on = augment is not None and augment.active
    sc.run[[IMAGE_H, IMAGE_W, IMAGE_C, FLIP, SHIFT]] = \
        (augment.height, augment.width, augment.channels, augment.flip, augment.shift) \
        if on else 0
    sc.model_f[NOISE] = augment.noise_scale if on else 0.0


def aligned_zeros(shape, dtype, align=64):
    """Zeros whose start is ``align``-byte aligned (rows too, the row length being a
    multiple of 16 elements): blocks of columns that two threads write then never share
    a cache line (NumPy's large arrays start 16 bytes into a page)."""
    dtype = np.dtype(dtype)
    count = int(np.prod(shape))
    raw = np.zeros(count + align // dtype.itemsize, dtype)
    skip = (-raw.ctypes.data % align) // dtype.itemsize
    return raw[skip:skip + count].reshape(shape)


def _merge(parts, steps, l2, loss, correct, stop_on_nan):
    """Add the run's summed losses (times m, L2 term included) and right answers per
    model; with stop_on_nan, only the steps before the first non-finite loss, which
    was not applied (returns (steps applied, whether one was not finite))."""
    data = parts[LOSS, :steps].sum(axis=2)              # (steps, K)
    sq = parts[SQ, :steps].sum(axis=2)
    right = parts[CORRECT, :steps].sum(axis=2)
    applied = steps
    if stop_on_nan:
        finite = np.isfinite(data + sq).all(axis=1)
        if not finite.all():
            applied = int(np.argmin(finite))
    loss += data[:applied].sum(axis=0) + l2 / 2 * sq[:applied].sum(axis=0)
    correct += right[:applied].sum(axis=0).astype(np.int64)
    return applied, applied < steps


_NO_Y = {t: np.zeros((0, 1), t) for t in (np.float32, np.float64)}
_NO_WEIGHTS = {t: np.zeros(0, t) for t in (np.float32, np.float64)}
_NO_CSR = {t: (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, t))
           for t in (np.float32, np.float64)}
