"""Dense backward epilogue (dZ = d_out * mask / keep_prob * act'(act) and db) and the
whole layer backward: reference, variants, validation, timing.

m = batch size, n = layer width; float32, ReLU, keep_prob 0.8.

  ref  NumPy reference: dropout backward, activation derivative, product, sum over rows
  v1   fastdnn.cpu: one pass over chunks of REDUCTION_CHUNK rows (parallel), per-chunk
       column sums merged in chunk order (parallel over columns)
  v2   v1 on one thread (what fastdnn.cpu runs while OpenBLAS workers spin)
  full dense_backward, GEMMs included (dW and dX), cpu vs reference
Winner promoted: v1.

python kernels/dense_backward.py
"""
import os
import sys

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")   # see kernels/handoff.py
os.environ.setdefault("FASTDNN_SPIN_GUARD", "0")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _lab  # noqa: E402

import numba  # noqa: E402
import numpy as np  # noqa: E402

import fastdnn.cpu as C  # noqa: E402
import fastdnn.reference as R  # noqa: E402
from fastdnn.cpu._common import dropout_args  # noqa: E402
from fastdnn.cpu.dense import _backward_epilogue  # noqa: E402
from dense_forward import serial  # noqa: E402


def reference_epilogue(d, act, key):
    dZ = R.activation_backward(R.dropout_backward(d, 0.8, key), act, "relu")
    return dZ, dZ.sum(axis=0)


def main():
    t = np.float32
    rows = []
    for m, n_in, n in [(64, 784, 512), (256, 784, 512), (1024, 784, 512), (256, 512, 256)]:
        rng = np.random.default_rng(0)
        X = rng.standard_normal((m, n_in), t)
        W = (rng.standard_normal((n, n_in)) / np.sqrt(n_in)).astype(t)
        act = np.maximum(rng.standard_normal((m, n), t), 0)
        d = rng.standard_normal((m, n), t)
        key = 987654321
        _, k, thr, scale = dropout_args(0.8, key, np.dtype(t))
        dZ, db = np.empty_like(d), np.empty(n, t)
        dX, dW = np.empty_like(X), np.empty_like(W)
        _backward_epilogue(1, True, False)(d, act, k, thr, scale, True, dZ, db)
        r_dZ, r_db = reference_epilogue(d.astype(np.float64), act.astype(np.float64), key)
        err = max(_lab.max_rel_err(dZ, r_dZ), _lab.max_rel_err(db, r_db))

        def v1():
            _backward_epilogue(1, True, False)(d, act, k, thr, scale, True, dZ, db)

        variants = {"ref": lambda: reference_epilogue(d, act, key), "v1": v1,
                    "v2": serial(v1),
                    "full ref": lambda: R.dense_backward(d.copy(), X, W, act, "relu", 0.8,
                                                         key, 0.1),
                    "full cpu": lambda: C.dense_backward(d, X, W, act, "relu", 0.8, key,
                                                         0.1, dX_out=dX, dW_out=dW,
                                                         db_out=db, dZ_out=dZ)}
        times = _lab.interleaved(variants, rounds=5, min_time=0.03)
        for name, sec in times.items():
            base = times["full ref"] if name.startswith("full") else times["ref"]
            rows.append([f"{m}x{n_in}->{n}", name, f"{sec * 1e6:,.1f}",
                         f"{base / sec:.1f}x", f"{err:.1e}" if name == "v1" else ""])
    print(f"dense backward epilogue, float32 ReLU + dropout 0.8, {numba.get_num_threads()} "
          "Numba threads; best of 5 interleaved rounds")
    _lab.table(rows, ["layer", "variant", "us", "vs ref", "max rel err (vs f64)"])


if __name__ == "__main__":
    main()
