"""Caviar (K models trained together) on digits: the NumPy engine, the compiled engine
with several chunk sizes and thread counts: validation and timing.

K = models, G = models per group (fastdnn.search.caviar.CHUNK_MODELS).
64-128-10 ReLU, float32, batch 64, Adam with per-model lr / beta1 / L2, 2 epochs over
1438 rows, dev evaluation after each epoch.

  numpy    the stacked NumPy engine (backend="numpy", the bit-exact oracle)
  G=4/8/16 the training engine (backend="cpu"), one thread
  G=4 2t   the training engine on 2 threads
Per-model figures: ms per model and epoch, and per model for a 30-epoch trial.
Measured on the shared 2-core machine with the caviar engine that preceded the training
engine (min of interleaved rounds, K = 32): 4, 8 and 16 cost the same within noise, 36 ms
per 30-epoch model on one thread, 21 ms on two (GEMMs about two thirds of it, OpenBLAS
sgemm at ~80 GFLOP/s on these 64-deep products); the NumPy engine 77 ms. Max relative
error after 2 epochs in float32: 1.4e-4 (the models with the largest learning rates
amplify rounding; 3e-13 in float64).
On the training engine, 2026-12-01, same machine, K = 32, 2 epochs (medians of 3
interleaved rounds; the neighbours were busier than for the figures above, the NumPy
engine took 148 ms): G=4 61 ms per 30-epoch model on one thread, G=8 75, G=16 66, G=4 on
two threads 50. Float64 agrees with the NumPy engine to 4e-13 for every model; float32 to
1.1e-4 for 31 of 32 models, the 32nd differs by 0.11 in one hidden unit's weights, whose
ReLU switched off in one of the two runs at a near-zero pre-activation (the chaos of
float32 rounding, not a different formula).

python kernels/caviar.py [--models 32] [--epochs 2]
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _lab  # noqa: E402  (sets sys.path to the repo root)

import numpy as np  # noqa: E402

import fastdnn  # noqa: E402
import fastdnn.search.caviar as caviar  # noqa: E402
from fastdnn.search.caviar import train_caviar  # noqa: E402


def digits():
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    X, y = (X[order] / 16.0).astype(np.float32), y[order]
    n_dev = len(y) // 5
    return X[n_dev:], y[n_dev:], X[:n_dev], y[:n_dev]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", type=int, default=32)
    p.add_argument("--epochs", type=int, default=2)
    args = p.parse_args(argv)
    X, y, Xd, yd = digits()
    rng = np.random.default_rng(0)
    K = args.models
    hyper = {"learning_rate": list(10 ** rng.uniform(-4, -1, K)),
             "l2": list(10 ** rng.uniform(-6, -1, K)),
             "beta1": list(1 - 10 ** rng.uniform(-3, np.log10(0.2), K))}

    def run(backend, G=4, threads=1):
        def call():
            caviar.CHUNK_MODELS = G
            with fastdnn.threads(threads):
                return train_caviar(X, y, [64, 128, 10], hyper, epochs=args.epochs,
                                    batch_size=64, validation_data=(Xd, yd),
                                    backend=backend)
        return call

    variants = {"numpy": run("numpy"), "G=4": run("cpu", 4), "G=8": run("cpu", 8),
                "G=16": run("cpu", 16), "G=4 2t": run("cpu", 4, 2)}
    ref = variants["numpy"]()
    rows = []
    times = _lab.interleaved(variants, rounds=3, min_time=0.2, settle=0.0)
    for name, fn in variants.items():
        res = fn()
        err = max(_lab.max_rel_err(res.get_params(i)[k], ref.get_params(i)[k])
                  for i in range(K) for k in ("W1", "b1", "W2", "b2"))
        per = times[name] / K / args.epochs
        rows.append([name, f"{err:.1e}", f"{per * 1e3:.2f}", f"{per * 30 * 1e3:.1f}"])
    print(f"K = {K} models, {args.epochs} epochs, float32 64-128-10, batch 64")
    _lab.table(rows, ["variant", "max rel err vs numpy", "ms / model / epoch",
                      "ms / 30-epoch model"])


if __name__ == "__main__":
    main()
