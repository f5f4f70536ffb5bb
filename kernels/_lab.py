"""Shared helpers of the kernel lab: interleaved timing rounds, validation, tables.

Each lab file times its variants A B C A B C ... (so machine noise hits all alike),
each sample the mean over a block of calls lasting >= min_time, preceded by an untimed
settle run of the same variant; tables give the best sample (LAB_STAT=median for the median).
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def block_time(fn, min_time):
    """Mean seconds per call over a block of calls lasting at least ``min_time``."""
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        dt = time.perf_counter() - t0
        if dt >= min_time:
            return dt / n
        n = max(n * 2, int(n * min_time / max(dt, 1e-9) * 1.2))


STAT = os.environ.get("LAB_STAT", "min")


def interleaved(variants, rounds=5, min_time=0.05, settle=0.05, stat=None):
    """{name: seconds per call} over ``rounds`` interleaved rounds: the best round
    (default; the machine is shared, so the minimum is the least noisy estimate) or the
    median (LAB_STAT=median)."""
    samples = {name: [] for name in variants}
    for fn in variants.values():
        fn()  # compile / warm up
    for _ in range(rounds):
        for name, fn in variants.items():
            end = time.perf_counter() + settle
            while time.perf_counter() < end:
                fn()
            samples[name].append(block_time(fn, min_time))
    pick = np.median if (stat or STAT) == "median" else np.min
    return {name: float(pick(s)) for name, s in samples.items()}


def max_rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def table(rows, header):
    """Print a Markdown table; rows are lists of strings."""
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(str(c).rjust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    print(line(header))
    print("|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|")
    for r in rows:
        print(line(r))
