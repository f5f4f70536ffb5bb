"""The batch gather with data augmentation (fastdnn.engine.steps.gather), and what it
costs a fit.

m = batch rows, n = row width (an image of height x width x channels), float32, one
thread. Variants of one batch's gather (the rows of a shuffled order into the buffer):

  0 copy        no augmentation: copy_row per row (what fit runs without augment)
  1 flip        the fused gather, flip only: a pixel loop through formulas.augment_source
  2 shift       shift 2 (dy, dx in [-2, 2])
  3 noise       noise only: a copy, then one SplitMix64 hash and Irwin-Hall sum per
                element
  4 all         flip + shift 2 + noise
  5 segments    flip + shift 2 as runs: per image row, zero the ends and copy the
                source run forwards or backwards (no per-pixel branch): slower, the
                backward runs (channel stride known only at run time) do not vectorise
  R reference   fastdnn.reference.augment.augment_rows on the gathered batch (NumPy,
                vectorised: what backend="numpy" runs), all three

Every variant is checked bit for bit against the reference first. Then the epoch time
of MLP.fit on digits-like data (n x 64 as 8x8 images, and 28x28 as MNIST) with and
without Augment((h, w), flip=True, shift=1 or 2, noise=0.1) on backend="cpu"; and what
it costs the other faces (caviar, the scikit-learn estimator) on digits.

python kernels/augment_gather.py [--tables gather,fit,faces]

Min of 5 interleaved rounds, 2-core AMD EPYC (Zen 4, AVX-512), shared machine, 2026-12-01
(ns per element of the batch):

| image | m   | 0 copy | 1 flip | 2 shift | 3 noise | 4 all | 5 segments | R reference |
|-------|-----|-------:|-------:|--------:|--------:|------:|-----------:|------------:|
| 8x8   | 128 |   0.62 |   2.84 |    2.54 |    1.04 |  2.97 |       3.94 |       24.34 |
| 28x28 | 128 |   0.13 |   2.12 |    2.01 |    0.64 |  2.55 |       3.88 |       13.23 |

Epoch of fit (backend="cpu", batch 64, median of 3 epochs after a warm-up one; the
shared machine moves these by up to 2x between runs: another run gave 90.8 / 112.5 ms):

| data                | model          | plain ms | augmented ms | ratio |
|---------------------|----------------|---------:|-------------:|------:|
| 1797 x 64 (8x8)     | [64, 64, 10]   |      1.1 |          1.4 | 1.32x |
| 10000 x 784 (28x28) | [784, 128, 10] |     38.8 |         66.6 | 1.72x |

The geometry costs about 2 ns per element (an index and a branch per pixel; runs per
image row, variant 5, are slower: a non-flipped run copies at 1.2 ns, a flipped one at
3.2), the noise about 0.5 ns (a SplitMix64 hash per element, folded into a copy). The
reference costs 5-10x the fused gather. A batch of 64 rows was one gather item
(fastdnn.engine.program.ROW_BLOCK), so one thread augmented it while the other waited:
on a network as small as 784-128-10 the 28x28 fit paid up to 1.7x. Gather items now
take 16 rows (program.GATHER_ROWS): 10000 x 784, [784, 128, 10], batch 64, flip + shift
2 + noise 0.1, medians of 5 interleaved rounds of 2 epochs, ms per epoch:
  gather items of 64 rows: plain 41.2, augmented 68.9 (1.67x)
  gather items of 16 rows: plain 39.0, augmented 58.5 (1.50x)

The other faces (--tables faces; digits 1797 x 64 float32, Augment((8, 8), shift=1,
noise=0.05), medians of 3 interleaved fits, ms; three runs):

| face                                               | plain         | augmented     | ratio             |
|----------------------------------------------------|---------------|---------------|-------------------|
| train_caviar, 32 models x 10 epochs, [64, 128, 10] | 242, 258, 242 | 253, 254, 250 | 1.04, 0.98, 1.03x |
| MLPClassifier((128,), max_iter=30)                 | 51, 49, 51    | 62, 54, 54    | 1.22, 1.12, 1.06x |

Caviar gathers a batch once per group of 4 models (search.caviar.CHUNK_MODELS), whose
training costs far more than the gather, so augmenting costs next to nothing there.
"""
import os
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _lab  # noqa: E402  (sets sys.path to the repo root)

import numpy as np  # noqa: E402
from numba import njit  # noqa: E402

import fastdnn  # noqa: E402
from fastdnn import Augment  # noqa: E402
from fastdnn.engine import steps, structs as st  # noqa: E402
from fastdnn.engine.cpu import _engine_data, _set_augment  # noqa: E402
from fastdnn.formulas import augment_draws, augment_source  # noqa: E402
from fastdnn.rng import GEOMETRY, augment_key  # noqa: E402
from fastdnn.reference.augment import augment_rows  # noqa: E402

SEED, STEP = 12345, 7


@njit
def _gather(net, data, run, buf):
    steps.gather((0, 0, 1, 0, 0, run[st.M], 0), net, data, run, buf)


@njit
def segments(X, order, key, dims, out):
    """Variant 5: rows order[:m] of X flipped and shifted into out (m, n), by runs."""
    H, W, C, flip, shift = dims
    for i in range(out.shape[0]):
        src, dst = X[order[i]], out[i]
        draws = augment_draws(key, i, flip, shift)
        flipped, dy, dx = draws
        x0, x1 = max(0, dx), min(W, W + dx)
        step = -C if flipped else C
        for y in range(H):
            o = y * W * C
            p = augment_source(y, x0, H, W, draws)
            if p < 0 or x0 >= x1:
                for j in range(W * C):
                    dst[o + j] = 0
                continue
            for j in range(x0 * C):
                dst[o + j] = 0
            for j in range(x1 * C, W * C):
                dst[o + j] = 0
            for x in range(x1 - x0):
                for c in range(C):
                    dst[o + (x0 + x) * C + c] = src[p * C + x * step + c]


class Batch:
    """The compiled gather's arguments for one batch of m rows of X."""

    def __init__(self, X, m, augment):
        self.X, self.m = X, m
        n = X.shape[1]
        self.order = np.random.default_rng(0).permutation(X.shape[0])
        self.net = (np.zeros((st.LAYER_ROWS, 1), np.int64), np.zeros((2, 1)),
                    np.zeros((st.KEEP + 1, 1)), np.full((st.THRESHOLD + 1, 1), SEED,
                                                        np.uint64))
        self.run = np.zeros(st.RUN_FIELDS, np.int64)
        _set_augment(type("Scratch", (), {"run": self.run, "model_f": self.net[2]})(),
                     augment)
        self.run[[st.M, st.X_AT, st.Y_AT, st.WEIGHT_AT, st.STEP0]] = m, 0, m * n, -1, STEP
        self.buf = np.zeros(m * n + m, X.dtype)
        self.data = _engine_data((X, np.zeros((X.shape[0], 1), X.dtype), self.order,
                                  np.zeros(0, X.dtype)), augment)

    def __call__(self):
        _gather(self.net, self.data, self.run, self.buf)
        return self.buf[:self.m * self.X.shape[1]].reshape(self.m, -1)


def gather_table(shapes=((8, 8), (28, 28)), m=128):
    rows = []
    for shape in shapes:
        n = shape[0] * shape[1]
        X = np.random.default_rng(1).standard_normal((4 * m, n)).astype(np.float32)
        settings = {"0 copy": None, "1 flip": dict(flip=True), "2 shift": dict(shift=2),
                    "3 noise": dict(noise=0.1),
                    "4 all": dict(flip=True, shift=2, noise=0.1)}
        variants = {}
        for name, kw in settings.items():
            batch = Batch(X, m, None if kw is None else Augment(shape, **kw))
            want = X[batch.order[:m]] if kw is None else augment_rows(
                X[batch.order[:m]], (SEED, STEP), shape, **kw)
            assert np.array_equal(batch().view(np.uint32), want.view(np.uint32)), name
            variants[name] = batch
        order = variants["0 copy"].order
        out = np.zeros((m, n), np.float32)
        key = np.uint64(augment_key(SEED, STEP, GEOMETRY))
        variants["5 segments"] = lambda: segments(X, order, key, (shape[0], shape[1], 1, 1,
                                                                  2), out)
        variants["5 segments"]()
        want = augment_rows(X[order[:m]], (SEED, STEP), shape, flip=True, shift=2)
        assert np.array_equal(out, want), "5 segments"
        variants["R reference"] = lambda: augment_rows(
            X[order[:m]], (SEED, STEP), shape, flip=True, shift=2, noise=0.1)
        times = _lab.interleaved(variants)
        rows.append([f"{shape[0]}x{shape[1]}", m] +
                    [f"{times[k] / (m * n) * 1e9:.2f}" for k in variants])
    _lab.table(rows, ["image", "m"] + list(variants))


def epoch_ms(X, y, sizes, augment, epochs=3):
    model = fastdnn.MLP(sizes, backend="cpu", seed=0)
    model.fit(X, y, epochs=1, batch_size=64, verbose=0, augment=augment)   # compile, warm
    h = model.fit(X, y, epochs=epochs, batch_size=64, verbose=0, augment=augment)
    return float(np.median(h["epoch_time"])) * 1e3


def fit_table():
    rows = []
    for n, shape, hidden, shift in ((1797, (8, 8), 64, 1), (10000, (28, 28), 128, 2)):
        rng = np.random.default_rng(0)
        X = rng.random((n, shape[0] * shape[1])).astype(np.float32)
        y = rng.integers(0, 10, n)
        sizes = [X.shape[1], hidden, 10]
        aug = Augment(shape, flip=True, shift=shift, noise=0.1)
        plain, augmented = epoch_ms(X, y, sizes, None), epoch_ms(X, y, sizes, aug)
        rows.append([f"{n} x {X.shape[1]} ({shape[0]}x{shape[1]})", str(sizes),
                     f"{plain:.1f}", f"{augmented:.1f}", f"{augmented / plain:.2f}x"])
    _lab.table(rows, ["data", "model", "plain ms", "augmented ms", "ratio"])


def _digits():
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    return (X / 16.0).astype(np.float32), y


def faces_table(rounds=3):
    """What augmentation costs the other faces on digits, plain then augmented (shift
    1, noise 0.05; medians of ``rounds`` interleaved fits after a warm-up one): 32
    caviar models together, and the scikit-learn estimator."""
    from fastdnn.search.caviar import train_caviar
    from fastdnn.sklearn import MLPClassifier
    X, y = _digits()
    aug = Augment((8, 8), shift=1, noise=0.05)
    hyper = {"learning_rate": list(np.logspace(-4, -1, 32)), "seed": [0] * 32}

    def caviar(augment):
        return lambda: train_caviar(X, y, [64, 128, 10], hyper, epochs=10, batch_size=64,
                                    backend="cpu", augment=augment)

    def estimator(augment):
        def fit():
            with warnings.catch_warnings():   # 30 epochs do not converge: not the point
                warnings.simplefilter("ignore")
                MLPClassifier((128,), max_iter=30, random_state=0, augment=augment,
                              n_iter_no_change=1000).fit(X, y)
        return fit

    faces = {"train_caviar, 32 models x 10 epochs, [64, 128, 10]": caviar,
             "MLPClassifier((128,), max_iter=30), float32": estimator}
    rows = []
    for name, make in faces.items():
        fits = {"plain": make(None), "augmented": make(aug)}
        samples = {k: [] for k in fits}
        for fit in fits.values():
            fit()   # compile, warm
        for _ in range(rounds):
            for key, fit in fits.items():
                t0 = time.perf_counter()
                fit()
                samples[key].append(time.perf_counter() - t0)
        plain, augmented = (float(np.median(samples[k])) * 1e3 for k in fits)
        rows.append([name, f"{plain:.0f}", f"{augmented:.0f}", f"{augmented / plain:.2f}x"])
    _lab.table(rows, ["face (digits 1797 x 64)", "plain ms", "augmented ms", "ratio"])


TABLES = {"gather": gather_table, "fit": fit_table, "faces": faces_table}

if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--tables", default=",".join(TABLES), help="of " + ",".join(TABLES))
    start = time.perf_counter()
    for i, name in enumerate(ap.parse_args().tables.split(",")):
        if i:
            print()
        TABLES[name]()
    print(f"\n({time.perf_counter() - start:.0f} s)")
