"""Dense forward epilogue (bias + activation + dropout after the GEMM): reference,
variants, validation, timing.

m = batch size, n = layer width; Z = X @ W.T is (m, n) float32, ReLU, keep_prob 0.8.

  ref  NumPy reference: Z + b, activation, hashed dropout mask, scale (4+ passes)
  v0   first version: one prange pass, formulas.activate(z, code) with the run-time code
       inside the element loop (the branches kept the loop scalar)
  v1   fastdnn.cpu: per row, bias, then one loop per activation code (constant code, so
       it vectorises), then the dropout loop (fastdnn.cpu._rows)
  v2   as v1 with ReLU written in by hand: what a code-free kernel would give
  v3   v1 on one thread (what fastdnn.cpu runs while OpenBLAS workers spin)
  full the whole layer: fastdnn.cpu.dense_forward vs reference.dense_forward (GEMM incl.)
Winner promoted: v1 (matches the hand-written v2; v0 was ~10x slower for ReLU).

python kernels/dense_forward.py
"""
import os
import sys

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")   # see kernels/handoff.py
os.environ.setdefault("FASTDNN_SPIN_GUARD", "0")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _lab  # noqa: E402

import numba  # noqa: E402
import numpy as np  # noqa: E402
from numba import njit, prange  # noqa: E402

import fastdnn.cpu as C  # noqa: E402
import fastdnn.reference as R  # noqa: E402
from fastdnn.cpu._common import dropout_args  # noqa: E402
from fastdnn.cpu.dense import _forward_epilogue  # noqa: E402
from fastdnn.formulas import activate, is_kept  # noqa: E402


@njit(parallel=True, cache=True)
def epilogue_v0(act, b, code, key, threshold, scale, out):
    m, n = act.shape
    for i in prange(m):
        base = np.uint64(i * n)
        for j in range(n):
            a = activate(act[i, j] + b[j], code)
            act[i, j] = a
            out[i, j] = a * scale if is_kept(key, base + np.uint64(j), threshold) else a * 0


@njit(parallel=True, cache=True)
def epilogue_relu(act, b, key, threshold, scale, out):
    m, n = act.shape
    for i in prange(m):
        base = np.uint64(i * n)
        for j in range(n):
            z = act[i, j] + b[j]
            a = z if z > 0 else z * 0
            act[i, j] = a
            out[i, j] = a * scale if is_kept(key, base + np.uint64(j), threshold) else a * 0


def reference_epilogue(Z, b, key):
    act = R.activation_forward(Z + b, "relu")
    return R.dropout_forward(act, 0.8, key), act


def serial(fn):
    def run():
        old = numba.get_num_threads()
        numba.set_num_threads(1)
        try:
            fn()
        finally:
            numba.set_num_threads(old)
    return run


def main():
    t = np.float32
    rows = []
    for m, n_in, n in [(64, 784, 512), (256, 784, 512), (1024, 784, 512), (256, 512, 256)]:
        rng = np.random.default_rng(0)
        X = rng.standard_normal((m, n_in), t)
        W = (rng.standard_normal((n, n_in)) / np.sqrt(n_in)).astype(t)
        b = rng.standard_normal(n, t)
        Z = X @ W.T
        key = 123456789
        _, k, thr, scale = dropout_args(0.8, key, np.dtype(t))
        act, out = np.empty_like(Z), np.empty_like(Z)
        r_out, r_act = reference_epilogue(Z, b, key)
        act[...] = Z
        _forward_epilogue(1, True, True)(act, b, k, thr, scale, out)
        err = max(_lab.max_rel_err(out, r_out), _lab.max_rel_err(act, r_act))
        act2 = Z.copy()
        out2 = np.empty_like(Z)
        epilogue_relu(act2, b, k, thr, scale, out2)
        assert np.array_equal(out2, out)

        def v1():
            np.copyto(act, Z)
            _forward_epilogue(1, True, True)(act, b, k, thr, scale, out)

        def v0():
            np.copyto(act, Z)
            epilogue_v0(act, b, 1, k, thr, scale, out)

        def v2():
            np.copyto(act, Z)
            epilogue_relu(act, b, k, thr, scale, out)

        copy = lambda: np.copyto(act, Z)  # noqa: E731  (subtracted from v1..v3)
        variants = {"ref": lambda: reference_epilogue(Z, b, key), "v0": v0, "v1": v1,
                    "v2": v2,
                    "v3": serial(v1), "copy": copy,
                    "full ref": lambda: R.dense_forward(X, W, b, "relu", 0.8, key),
                    "full cpu": lambda: C.dense_forward(X, W, b, "relu", 0.8, key,
                                                        out=out, act_out=act)}
        times = _lab.interleaved(variants, rounds=5, min_time=0.03)
        for name in ("ref", "v0", "v1", "v2", "v3", "full ref", "full cpu"):
            sec = times[name] - (times["copy"] if name in ("v0", "v1", "v2", "v3") else 0)
            base = times["full ref"] if name.startswith("full") else times["ref"]
            rows.append([f"{m}x{n_in}->{n}", name, f"{sec * 1e6:,.1f}",
                         f"{base / sec:.1f}x", f"{err:.1e}" if name == "v1" else ""])
    print(f"dense forward epilogue, float32 ReLU + dropout 0.8, {numba.get_num_threads()} "
          "Numba threads; best of 5 interleaved rounds (v1-v3 minus a Z copy)")
    _lab.table(rows, ["layer", "variant", "us", "vs ref", "max rel err"])


if __name__ == "__main__":
    main()
