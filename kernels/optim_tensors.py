"""Optimizer updates on the engine's threads: how large a ticket's block should be.

fastdnn.cpu.optim hands an update out to the pool's threads (fastdnn.engine.pool) in
blocks: of one flat array (``BLOCK``), or across all tensors of matching lists
(``LIST_BLOCK``). Small blocks share the work evenly and let a thread that falls behind
hold up little; large blocks let each thread stream through memory. Float32 Adam, the
pool's threads (2 here), medians of interleaved rounds:

  flat n, block b      one array of n parameters in blocks of b elements
  list, block b        the tensors of a 784-512-256-10 model (W and b of each layer and
                       BatchNorm's gamma and beta, 535,818 parameters) in blocks of b
  opt.step(list)       fastdnn.Adam().step(params, grads) on those tensors: the same
                       update plus the checks, which run once while the same arrays
                       come back

python kernels/optim_tensors.py

Measured 2026-12-01 on the 2-core AMD EPYC (medians of 7 and 9 rounds):
  flat 1e6:   4096: 676 us, 16384: 518, 65536: 408, n/4: 380
  flat 1.6e7: 4096: 16.4 ms, 16384: 14.5, 65536: 15.0, n/4: 15.6
  list:       4096: 285-292 us, 16384: 255-257, 32768: 247-249, 65536: 244-245
so BLOCK = 65536 (streaming wins on one array) and LIST_BLOCK = 4096 (the threads'
shares of a model's tensors come out even; kept below the list's timing optimum because
a model's smallest tensors are a few hundred elements).
"""
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _lab  # noqa: E402,F401  (sets sys.path to the repo root)

import numpy as np  # noqa: E402

import fastdnn  # noqa: E402
import fastdnn.cpu.optim as O  # noqa: E402
from fastdnn.engine.pool import default_pool  # noqa: E402
from fastdnn.engine.threads import current_threads  # noqa: E402

SHAPES = [(512, 784), (512,), (512,), (256, 512), (256,), (256,), (10, 256), (10,)]
ADAM = (1e-3, 1.0, 0.9, 0.999, 1e-8, 0.0, False)   # update_scalars' inputs
KIND = 4                                             # formulas.OPTIMIZER_CODES["adam"]


def medians(variants, rounds, reps):
    samples = {name: [] for name in variants}
    for fn in variants.values():
        fn()
    for _ in range(rounds):
        for name, fn in variants.items():
            t0 = time.perf_counter()
            for _ in range(reps):
                fn()
            samples[name].append((time.perf_counter() - t0) / reps)
    return {name: statistics.median(s) for name, s in samples.items()}


def flat(n, rng):
    arrays = [rng.standard_normal(n, dtype=np.float32) for _ in range(4)]
    arrays[3] = np.abs(arrays[3])
    threads = current_threads()
    return {f"flat {n:.0e}, block {b}": (
        lambda b=b: default_pool().run(O._update_array, (KIND, *arrays, ADAM, b),
                                       -(-n // b), threads))
        for b in (4096, 16384, 65536, n // 4)}


def tensor_list(rng):
    groups = []
    for shape in SHAPES:
        arrays = [rng.standard_normal(shape, dtype=np.float32).reshape(-1) for _ in range(4)]
        arrays[3] = np.abs(arrays[3])
        groups.append(arrays)
    threads = current_threads()
    variants = {}
    for b in (4096, 16384, 65536):
        O.LIST_BLOCK = b
        lists = O._Lists(groups)
        variants[f"list, block {b}"] = (
            lambda lists=lists: default_pool().run(
                O._update_lists, (KIND, *lists.typed, lists.blocks, ADAM),
                len(lists.blocks), threads))
    O.LIST_BLOCK = 4096
    params = [rng.standard_normal(s, dtype=np.float32) for s in SHAPES]
    grads = [rng.standard_normal(s, dtype=np.float32) for s in SHAPES]
    opt = fastdnn.Adam()
    variants["opt.step(list)"] = lambda: opt.step(params, grads)
    return variants


def main():
    rng = np.random.default_rng(0)
    print(f"float32 Adam on {current_threads()} threads; medians of interleaved rounds")
    for n in (10**6, 16 * 10**6):
        for name, t in medians(flat(n, rng), 7, max(3, int(3e7 // n))).items():
            print(f"  {name:28s} {t * 1e6:10.0f} us")
    for name, t in medians(tensor_list(rng), 9, 50).items():
        print(f"  {name:28s} {t * 1e6:10.0f} us")


if __name__ == "__main__":
    main()
