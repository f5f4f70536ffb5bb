"""Where a training step's time goes: the engine's work items timed one by one.

The fit_epoch configuration (784-512-256-10, BatchNorm + ReLU + dropout 0.8, softmax,
Adam, float32) trains through ``fastdnn.MLP.fit`` with the engine's run replaced by a
copy of ``fastdnn.engine.runs.train_shared`` that reads the CPU's cycle counter around
every item and around every wait for an earlier phase. Per item kind and layer: cycles
per step in the item, and in its product alone (the same ``blas.gemm`` call on the same
buffers, timed separately), so item - product = the item's element-wise work; per
thread: cycles waiting. Figures are per step, in microseconds at the counter's rate
(measured against perf_counter).

python kernels/step_phases.py [--batch 128] [--threads 1] [--steps 200]

2-core AMD EPYC (Zen, AVX2), 2026-12-01, noisy neighbours (us per step):
  batch 128, 1 thread: items 7626, their products alone 4287; waits 2
  batch 128, 2 threads: items 6634 (both threads), products 4746; waits 63 and 222
  batch 1024, 1 thread: items 54761, products 39407; gather 929
  ns per element (layer 0, batch 128 / 1024): BatchNorm forward 0.98 / 1.47,
  bias + activation 0.19 / 0.33, dropout 1.20 / 1.57, backward epilogue 2.35 / 3.06
The element-wise work inside a step costs about twice what it does alone (the product
has just evicted its operands); dropout's hash is the largest single epilogue.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _lab  # noqa: E402,F401  (puts the repo on sys.path)

import numpy as np  # noqa: E402
from llvmlite import ir  # noqa: E402
from numba import njit, types  # noqa: E402
from numba.core import cgutils  # noqa: E402
from numba.extending import intrinsic  # noqa: E402

import fastdnn  # noqa: E402
from fastdnn.engine import blas, cpu as engine_cpu  # noqa: E402
from fastdnn.engine.pool import claim, close, finish, wait_turn  # noqa: E402
from fastdnn.engine.program import (FORWARD, GATHER, INPUT_GRAD, OUTPUT,  # noqa: E402
                                    UPDATE, WEIGHT_GRAD)
from fastdnn.engine.steps import (_backward_epilogue, _batchnorm_forward,  # noqa: E402
                                  _bias_activation, _dropout_forward, run_item)
from fastdnn.engine.structs import HI, KIND, LAYER, LO, PHASE, WAIT  # noqa: E402

KINDS = {GATHER: "gather", FORWARD: "forward", OUTPUT: "output",
         WEIGHT_GRAD: "weight grad", INPUT_GRAD: "input grad", UPDATE: "update"}


@intrinsic
def cycles(typingctx):
    def codegen(context, builder, signature, args):
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.IntType(64), []), "llvm.readcyclecounter")
        return builder.call(fn, [])
    return types.int64(), codegen


@njit(nogil=True)
def train_timed(ctl, gen, net, state, data, work, run, lr, parts, program, tid, clock):
    """train_shared (without the stop-on-NaN test), timing items and waits:
    clock[tid, i] += cycles of program row i; clock[tid, -1] += cycles waiting."""
    per_step, K = program.shape[0], net[3].shape[1]
    scratch = (work[0][0], work[1][tid])
    while True:
        t = claim(ctl, gen)
        if t < 0:
            break
        s = t // per_step
        i = t - s * per_step
        item = program[i]
        c0 = cycles()
        go = wait_turn(ctl, s * per_step + item[WAIT], t)
        c1 = cycles()
        if go:
            run_item(item, s, 0, K, scratch, net, run, lr, state, data, parts)
        clock[tid, i] += cycles() - c1
        clock[tid, -1] += c1 - c0
        finish(ctl)
    if tid == 0:
        close(ctl, gen)


@njit(nogil=True)
def product_cycles(shape, lds, A, B, C, reps):
    """Cycles of one blas.gemm of ``shape`` with row strides ``lds`` (mean of reps)."""
    total = 0
    for _ in range(reps):
        c0 = cycles()
        blas.gemm(shape, (A, 0, lds[0]), (B, 0, lds[1]), (C, 0, lds[2]), 0.0)
        total += cycles() - c0
    return total // reps


def product_of(item, sizes, m):
    """(shape, row strides) of the product inside a program row (one model, shared
    run: see fastdnn.engine.steps), or None for items without one."""
    kind, l, lo, hi = item[KIND], item[LAYER], item[LO], item[HI]
    if kind == FORWARD:
        n_in, n = sizes[l], sizes[l + 1]
        return (False, True, m, hi - lo, n_in), (n_in, n_in, n)
    if kind == OUTPUT:
        n_in, nk = sizes[-2], sizes[-1]
        return (False, True, hi - lo, nk, n_in), (n_in, n_in, nk)
    if kind == WEIGHT_GRAD:
        n_in, n = sizes[l], sizes[l + 1]
        return (True, False, hi - lo, n_in, m), (n, n_in, n_in)
    if kind == INPUT_GRAD:
        n_prev, n = sizes[l], sizes[l + 1]
        return (False, False, m, hi - lo, n), (n, n_prev, n_prev)
    return None


def product_us(program, sizes, m, rate, reps=50):
    """Microseconds of each program row's product alone (0 where it has none)."""
    big = 2 * m * max(sizes) ** 2 // min(sizes[1:-1]) + max(sizes) ** 2
    A, B, C = (np.random.default_rng(i).standard_normal(big).astype(np.float32)
               for i in range(3))
    out = np.zeros(len(program))
    for i, item in enumerate(program):
        product = product_of(item, sizes, m)
        if product is not None:
            product_cycles(*product, A, B, C, 3)
            out[i] = product_cycles(*product, A, B, C, reps) / rate * 1e6
    return out


@njit(nogil=True)
def epilogue_cycles(which, block, net, run, lr, state, buf, tmp, reps):
    """Cycles of one call of an item's element-wise part on one block (mean of reps):
    0 BatchNorm forward, 1 bias + activation, 2 dropout, 3 the backward epilogue."""
    total = 0
    for _ in range(reps):
        c0 = cycles()
        if which == 0:
            _batchnorm_forward(block, net, run, state, buf, tmp)
        elif which == 1:
            _bias_activation(block, net, run, state[0], buf)
        elif which == 2:
            _dropout_forward(block, net, run, state[0], buf)
        else:
            _backward_epilogue(block, net, run, lr, state, buf, tmp)
        total += cycles() - c0
    return total // reps


def epilogues(args, m, rate, columns=128):
    """ns per element of each epilogue on a block of ``columns`` units of each hidden
    layer (the run's own buffers and tables)."""
    net, state, data, work, run, lr, parts, program = args
    buf, tmp = work[0][0], work[1][0]
    names = ["batchnorm forward", "bias + activation", "dropout", "backward epilogue"]
    for l in range(net[0].shape[1] - 1):
        block = (0, 0, 1, l, 0, columns, 0)
        cells = []
        for which, name in enumerate(names):
            c = epilogue_cycles(which, block, net, run, lr, state, buf, tmp, 3)
            c = epilogue_cycles(which, block, net, run, lr, state, buf, tmp, 20)
            cells.append(f"{name} {c / rate / (m * columns) * 1e9:.2f}")
        print(f"layer {l}, {m} x {columns} block, ns per element: " + ", ".join(cells))


def cycles_per_second():
    c0, t0 = cycles_now(), time.perf_counter()
    time.sleep(0.2)
    return (cycles_now() - c0) / (time.perf_counter() - t0)


@njit
def cycles_now():
    return cycles()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--keep", type=float, default=0.8, help="keep_prob (1: no dropout)")
    ap.add_argument("--no-batchnorm", action="store_true")
    a = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    n = a.batch * a.steps
    X = rng.standard_normal((n, 784), dtype=np.float32)
    y = rng.integers(0, 10, n)
    model = fastdnn.MLP([784, 512, 256, 10], batchnorm=not a.no_batchnorm,
                        keep_prob=a.keep, seed=0)
    opt = fastdnn.Adam()
    fit = lambda: model.fit(X, y, optimizer=opt, epochs=1,  # noqa: E731
                            batch_size=a.batch, verbose=0)
    with fastdnn.threads(a.threads):
        fit()                                    # compile, measure the run length
        captured = {}

        def timed(ctl, gen, *rest):
            args, tid = rest[:-1], rest[-1]
            program = args[-1]
            clock = captured.setdefault("clock", np.zeros((a.threads, len(program) + 1),
                                                          np.int64))
            captured["program"], captured["args"] = program, args
            train_timed(ctl, gen, *args, tid, clock)

        real = engine_cpu.train_shared
        engine_cpu.train_shared = timed
        try:
            fit()                                # compile train_timed
            captured["clock"][:] = 0
            t0 = time.perf_counter()
            fit()
            seconds = time.perf_counter() - t0
        finally:
            engine_cpu.train_shared = real
    rate = cycles_per_second()
    clock, program = captured["clock"], captured["program"]
    us = clock.sum(axis=0) / rate / a.steps * 1e6
    alone = product_us(program, [784, 512, 256, 10], a.batch, rate)
    rows = {}
    for i, item in enumerate(program):
        name = f"{KINDS[item[KIND]]} {item[LAYER]}"
        rows.setdefault((item[PHASE], name), []).append((us[i], alone[i]))
    print(f"batch {a.batch}, {a.threads} thread(s), {a.steps} steps: "
          f"{seconds / a.steps * 1e6:.0f} us per step (timed run)")
    print(f"{'phase':>5} {'items':<14} {'count':>5} {'us/step':>8} {'product':>8} "
          f"{'rest':>8}")
    for (phase, name), times in sorted(rows.items()):
        item, product = np.sum(times, axis=0)
        print(f"{phase:5d} {name:<14} {len(times):5d} {item:8.1f} {product:8.1f} "
              f"{item - product:8.1f}")
    waits = clock[:, -1] / rate / a.steps * 1e6
    print("waiting, per thread: " + ", ".join(f"{w:.1f}" for w in waits) + " us/step")
    print(f"items, all threads: {us[:-1].sum():.0f} us/step, their products alone "
          f"{alone.sum():.0f}")
    epilogues(captured["args"], a.batch, rate)


if __name__ == "__main__":
    main()
