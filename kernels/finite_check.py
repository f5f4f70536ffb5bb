"""The NaN/inf check before an update: which loop vectorises, and what it costs Adam.

fastdnn refuses gradients holding NaN or inf before Adam.step changes anything (issue
#15), which costs one more read of the gradients. Variants of "does x hold a NaN or
inf", one thread unless said:

  0 sum0        s += x[j] * 0; NaN or inf leaves s non-zero (the first version)
  1 or_int      bad |= x[j] - x[j] != 0: an integer OR, which LLVM may reorder
  2 par_inline  1 inlined in the body of a prange over chunks (2 threads)
  3 par_calls   1 in a function of its own, called on each chunk of a prange (2 threads)
  4 numpy       np.isfinite(x).all()

then Adam.step on one flat array and on a 784-512-256-10 model's tensors, checked
against finite_checks_skipped().

python kernels/finite_check.py

2-core AMD EPYC (Zen 4, AVX-512), 2026-12-01, medians of 20, 1e6 float32 (two runs):
  sum0 815-3300 us; or_int 76-80; par_inline 265-524; par_calls 41-43 (2 threads);
  numpy 79-600
A float sum may not be reordered without fastmath, so sum0 runs one add per cycle; the
integer OR vectorises, but only in a loop of its own (par_calls), not inlined in a prange
body. Promoted: fastdnn.cpu._common.holds_nonfinite (3), used by every kernel's input
check, and by the optimizers' gradient check on the engine's pool threads (a parallel
Numba kernel runs on one thread while NumPy's BLAS may spin: cpu._common.launch).
Adam.step checked / unchecked, us (two runs):
  1e5 75 / 61, 62 / 51 (1.24x, 1.23x); 1e6 308 / 214, 368 / 351 (1.44x, 1.05x);
  1.6e7 10114 / 8182, 9117 / 8052 (1.24x, 1.13x); a model's six tensors 233 / 166,
  291 / 211 (1.41x, 1.38x). With sum0-style loops the check had cost 2.0-3.0x.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _lab  # noqa: E402,F401  (puts the repo on sys.path)

import numba  # noqa: E402
import numpy as np  # noqa: E402
from numba import njit, prange  # noqa: E402

import fastdnn  # noqa: E402
from fastdnn._validation import finite_checks_skipped  # noqa: E402
from fastdnn.cpu._common import holds_nonfinite  # noqa: E402

CHUNK = 16384


@njit
def sum0(x):
    s = 0.0
    for j in range(x.shape[0]):
        s += x[j] * 0
    return s != 0


@njit
def or_int(x):
    bad = 0
    for j in range(x.shape[0]):
        v = x[j]
        bad |= v - v != 0
    return bad != 0


@njit(parallel=True)
def par_inline(x):
    n, count = x.shape[0], 0
    for c in prange((n + CHUNK - 1) // CHUNK):
        bad = 0
        for j in range(c * CHUNK, min(n, (c + 1) * CHUNK)):
            v = x[j]
            bad |= v - v != 0
        count += bad
    return count != 0


@njit(parallel=True)
def par_calls(x):
    n, count = x.shape[0], 0
    for c in prange((n + CHUNK - 1) // CHUNK):
        count += holds_nonfinite(x[c * CHUNK:min(n, (c + 1) * CHUNK)])
    return count != 0


def numpy_check(x):
    return not np.isfinite(x).all()


def median_us(f, rounds=20):
    f()
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return 1e6 * float(np.median(times))


def main():
    x = np.random.default_rng(0).standard_normal(10**6).astype(np.float32)
    bad = x.copy()
    bad[-1] = np.nan
    for f in (sum0, or_int, par_inline, par_calls, numpy_check):
        assert not f(x) and f(bad), f.__name__
        threads = 2 if f in (par_inline, par_calls) else 1
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        print(f"{f.__name__:11s} {threads} thread(s): {median_us(lambda: f(x)):9.1f} us")
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    rng = np.random.default_rng(1)
    model = [(512, 784), (512,), (256, 512), (256,), (10, 256), (10,)]
    for name, shapes in (("1e5", [(10**5,)]), ("1e6", [(10**6,)]),
                         ("1.6e7", [(16 * 10**6,)]), ("784-512-256-10", model)):
        p = [rng.standard_normal(s).astype(np.float32) for s in shapes]
        g = [rng.standard_normal(s).astype(np.float32) for s in shapes]
        opt = fastdnn.Adam(lr=1e-3, backend="cpu")
        checked = median_us(lambda: opt.step(p, g), 15)

        def unchecked():
            with finite_checks_skipped():
                opt.step(p, g)
        plain = median_us(unchecked, 15)
        print(f"Adam.step {name:15s} checked {checked:9.1f} us, unchecked {plain:9.1f} us,"
              f" {checked / plain:.2f}x")


if __name__ == "__main__":
    main()
