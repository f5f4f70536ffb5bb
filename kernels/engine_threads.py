"""How the engine's threads share a training step: fork-join regions against tickets.

The workload is the step of a 784-512-256-10 MLP at batch 128 as the engine cuts it:
seven phases, each a few independent items (a one-threaded BLAS product on a block,
some with an Adam-like update of the block's parameters after it), and a phase may
start only when the one before it is done. Every variant runs the same items:

  1 fork-join  : one parallel region per phase (prange over the phase's items, OpenMP's
                 static schedule): the shape of a step made of kernel calls
  2 omp tickets: one region for the whole run; inside it every thread claims numbered
                 items from a shared counter and waits only for the items before its
                 phase (spinning)
  3 pool, spin : fastdnn.engine.pool (our own threads, the caller's one of them), tickets,
                 waiting threads spin only
  4 pool, nap  : the same, waiting threads spin ~30 us and then nap (what the engine uses)
  serial       : every item on the calling thread (the work's one-thread time)

Each variant is timed quiet and then with a busy process beside it
(``python -c "while True: pass"``), medians of interleaved rounds of RUN_STEPS steps.

python kernels/engine_threads.py [--rounds 7] [--steps 50]

Measured 2026-12-01 on the 2-core AMD EPYC (KVM), 7 rounds of 50 steps, ms per step:

| variant | quiet | busy | busy / quiet |
|---|---:|---:|---:|
| serial | 5.92 | 5.89 | 1.00 |
| 1 fork-join | 4.42 | 14.56 | 3.29 |
| 2 omp tickets | 3.37 | 10.01 | 2.97 |
| 3 pool, spin | 3.59 | 8.22 | 2.29 |
| 4 pool, spin 4000 nap 20 | 3.66 | 6.92 | 1.89 |
| 4 pool, spin 500 nap 20 | 3.80 | 6.49 | 1.70 |
| 4 pool, spin 20000 nap 20 | 3.73 | 9.59 | 2.57 |
| 4 pool, spin 4000 nap 100 | 3.85 | 6.85 | 1.78 |
| 4 pool, spin 4000 yield | 3.35 | 6.66 | 1.99 |

Tickets beat fork-join regions quiet (3.4 against 4.4 ms: no thread waits for a static
share) and the pool that naps after a short spin is the best of them beside a busy
process (the napping core runs the descheduled thread). None beats one thread under
load (5.9 ms): with a busy process beside it on 2 cores the process gets about one core,
and Linux tends to leave both its threads on one of them. Promoted: variant 4 with
spin 4000 and naps of 20 us (fastdnn.engine.pool).

Since "none beats one thread under load", the engine now times its runs and trains on
one thread while that is faster (fastdnn.engine.cpu.ThreadChoice: two trial runs on one
thread, then one whenever the threads run 1.3x over their best; back to the threads
when a retry every 10 runs finds them faster). A fit of 784-512-256-10 with BatchNorm
and dropout at batch 128, 20000 x 784 (benchmarks/fit_epoch.py --rows loaded, s per
epoch, medians of 3; 2026-12-01, same machine), beside one busy process:

| FASTDNN_ADAPT_THREADS | quiet | busy | busy / quiet |
|---|---:|---:|---:|
| 0 (two threads always) | 0.371, 0.378 | 0.990, 0.803 | 2.67, 2.12 |
| 1 (the choice) | 0.509, 0.363 | 0.814, 0.689 | 1.60, 1.90 |

A run's ms per step, quiet: 2 threads 2.2-2.5, one thread 4.1-5.1 (the two trials);
busy: 2 threads 4.4-5.3, one thread 3.9-4.8, where the runs then stay (one retry of
the threads every ~10 runs). The quiet 0.509 is likely the machine's noise: a traced
quiet fit of the same model left the threads for its two trials only (epochs of 0.42,
0.38, 0.37 s after the first).
"""
import argparse
import statistics
import subprocess
import sys
import time

import _lab  # noqa: F401  (puts the repo on sys.path)
import numba
import numpy as np
from numba import njit, prange

from fastdnn.engine import blas
import ctypes

import llvmlite.binding as llvm
from numba import types

from fastdnn.engine._sync import load, nap, pause
from fastdnn.engine.pool import claim, close, default_pool, finish

llvm.add_symbol("lab_sched_yield", ctypes.cast(ctypes.CDLL(None).sched_yield,
                                                ctypes.c_void_p).value)
sched_yield = types.ExternalFunction("lab_sched_yield", types.int32())

M = 128
# per phase: items (M, N, K, adam elements)
PHASES = [
    [(M, 128, 784, 0)] * 4,                                   # forward layer 1
    [(M, 128, 512, 0)] * 2,                                   # forward layer 2
    [(M, 10, 256, 0)],                                        # output layer and loss
    [(10, 256, M, 0)] + [(M, 128, 10, 0)] * 2,                # dW3; dA2 blocks
    [(128, 512, M, 0)] * 2 + [(M, 128, 256, 0)] * 4,          # dW2 blocks; dA1 blocks
    [(128, 784, M, 100352)] * 4 + [(0, 0, 0, 65536)] * 2 + [(0, 0, 0, 2570)],  # dW1+Adam
]


def _tables():
    items = np.array([it for ph in PHASES for it in ph], np.int64)
    first = np.cumsum([0] + [len(ph) for ph in PHASES]).astype(np.int64)
    return items, first


ITEMS, FIRST = _tables()
PER_STEP = len(ITEMS)


@njit(cache=True, nogil=True, error_model="numpy")
def _item(i, items, A, B, C, P, G, S1, S2):
    m, n, k, adam = items[i, 0], items[i, 1], items[i, 2], items[i, 3]
    if m:
        blas.gemm((False, True, m, n, k), (A, 0, k), (B, i * 1024, k), (C, i * 65536, n), 0.0)
    lo = i * 65536
    _adam(P[lo:lo + adam], G[:adam], S1[lo:lo + adam], S2[lo:lo + adam])


@njit(cache=True, nogil=True, error_model="numpy")
def _adam(p, g, s1, s2):
    # an Adam-like update (unsigned indices from 0, so the loop vectorises)
    for j in range(p.shape[0]):
        a = np.float32(0.9) * s1[j] + np.float32(0.1) * g[j]
        b = np.float32(0.999) * s2[j] + np.float32(0.001) * g[j] * g[j]
        s1[j], s2[j] = a, b
        p[j] -= np.float32(1e-3) * a / (np.sqrt(b) + np.float32(1e-8))


@njit(cache=True, nogil=True)
def serial(steps, items, A, B, C, P, G, S1, S2):
    for s in range(steps):
        for i in range(items.shape[0]):
            _item(i, items, A, B, C, P, G, S1, S2)


@njit(parallel=True, cache=True)
def fork_join(steps, items, first, A, B, C, P, G, S1, S2):
    for s in range(steps):
        for p in range(first.shape[0] - 1):
            for i in prange(first[p], first[p + 1]):
                _item(i, items, A, B, C, P, G, S1, S2)


@njit(cache=True, nogil=True)
def _phase_start(t, first, per_step):
    r = t % per_step
    p = 0
    while first[p + 1] <= r:
        p += 1
    return t - r + first[p], r


@njit(cache=True, nogil=True)
def _spin_wait(ctl, done, spin, nap_us):
    spins = 0
    while load(ctl, 1) < done:
        if spins < spin:
            pause()
            spins += 1
        elif nap_us > 0:
            nap(nap_us)
        else:
            sched_yield()


@njit(cache=True, nogil=True)
def tickets(ctl, gen, steps, items, first, spin, nap_us, A, B, C, P, G, S1, S2, tid):
    per_step = items.shape[0]
    while True:
        t = claim(ctl, gen)
        if t < 0:
            break
        start, r = _phase_start(t, first, per_step)
        _spin_wait(ctl, start, spin, nap_us)
        _item(r, items, A, B, C, P, G, S1, S2)
        finish(ctl)
    if tid == 0:
        close(ctl, gen)


@njit(parallel=True, cache=True)
def omp_tickets(ctl, steps, items, first, A, B, C, P, G, S1, S2, threads):
    for w in prange(threads):
        tickets(ctl, 1, steps, items, first, 1 << 40, 0, A, B, C, P, G, S1, S2, w)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--steps", type=int, default=50)
    args = ap.parse_args()
    threads = numba.get_num_threads()
    rng = np.random.default_rng(0)
    A = rng.standard_normal(M * 784, dtype=np.float32)
    B = rng.standard_normal(1024 * PER_STEP + 512 * 784, dtype=np.float32)
    C = np.zeros(65536 * (PER_STEP + 1), np.float32)
    P = np.zeros(65536 * (PER_STEP + 2), np.float32)
    G = rng.standard_normal(1 << 17, dtype=np.float32)
    S1, S2 = np.zeros_like(P), np.zeros_like(P)
    data = (A, B, C, P, G, S1, S2)
    steps = args.steps
    pool = default_pool()
    ctl = np.zeros(3, np.int64)

    def run_omp():
        from fastdnn.engine.pool import open_run
        open_run(ctl, 1, steps * PER_STEP)
        omp_tickets(ctl, steps, ITEMS, FIRST, *data, threads)

    variants = {
        "serial": lambda: serial(steps, ITEMS, *data),
        "1 fork-join": lambda: fork_join(steps, ITEMS, FIRST, *data),
        "2 omp tickets": run_omp,
        "3 pool, spin": lambda: pool.run(tickets, (steps, ITEMS, FIRST, 1 << 40, 0) + data,
                                         steps * PER_STEP, threads),
    }
    for spin, nap_us in [(4000, 20), (500, 20), (20000, 20), (4000, 100), (4000, 5),
                         (4000, 0)]:
        variants[f"4 pool, spin {spin} nap {nap_us or 'yield'}"] = (
            lambda spin=spin, nap_us=nap_us: pool.run(
                tickets, (steps, ITEMS, FIRST, spin, nap_us) + data, steps * PER_STEP,
                threads))
    flops = sum(2 * m * n * k for m, n, k, _ in ITEMS)
    print(f"{PER_STEP} items in {len(PHASES)} phases a step, {flops / 1e6:.0f} MFLOP, "
          f"{threads} threads, private BLAS: {blas.PRIVATE}")
    results = {}
    for load_name in ("quiet", "busy"):
        hog = None
        if load_name == "busy":
            hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            time.sleep(0.5)
        try:
            samples = {k: [] for k in variants}
            for fn in variants.values():
                fn()
            for _ in range(args.rounds):
                for k, fn in variants.items():
                    t0 = time.perf_counter()
                    fn()
                    samples[k].append((time.perf_counter() - t0) / steps)
        finally:
            if hog is not None:
                hog.kill()
                hog.wait()
        results[load_name] = samples
    print("| variant | quiet ms/step | busy ms/step | busy / quiet | all busy runs |")
    print("|---|---:|---:|---:|---|")
    for k in variants:
        q = statistics.median(results["quiet"][k]) * 1e3
        b = statistics.median(results["busy"][k]) * 1e3
        runs = " ".join(f"{x * 1e3:.2f}" for x in results["busy"][k])
        print(f"| {k} | {q:.3f} | {b:.3f} | {b / q:.2f} | {runs} |")


if __name__ == "__main__":
    main()
