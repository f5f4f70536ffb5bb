"""BatchNorm + activation + dropout, training forward and backward: reference, fused
kernel, validation, timing.

m = batch size, n = features; float32, ReLU, keep_prob 0.8.

  ref  NumPy reference: batchnorm_activation_forward / _backward (many passes, temporaries)
  v1   fastdnn.cpu: chunked column sums (parallel over row chunks, merged in chunk
       order), then one fused normalise + gamma/beta + activation + dropout pass; backward
       one pass for the gradient through dropout/activation and the two column sums, one
       for dZ
  v1 1T  v1 on one thread (what fastdnn.cpu runs while OpenBLAS workers spin)
Winner promoted: v1.

python kernels/batchnorm.py
"""
import os
import sys

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
os.environ.setdefault("FASTDNN_SPIN_GUARD", "0")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _lab  # noqa: E402

import numba  # noqa: E402
import numpy as np  # noqa: E402

import fastdnn.cpu as C  # noqa: E402
import fastdnn.reference as R  # noqa: E402
from dense_forward import serial  # noqa: E402


def main():
    t = np.float32
    rows = []
    for m, n in [(64, 512), (256, 512), (1024, 512), (256, 256)]:
        rng = np.random.default_rng(0)
        Z = rng.standard_normal((m, n), t) * t(2) + t(1)
        gamma, beta = np.ones(n, t), np.zeros(n, t)
        rm, rv = np.zeros(n, t), np.ones(n, t)
        d = rng.standard_normal((m, n), t)
        key = 42
        bufs = dict(out=np.empty_like(Z), act_out=np.empty_like(Z),
                    x_hat_out=np.empty_like(Z), inv_std_out=np.empty(n, t))
        got = C.batchnorm_activation_forward(Z, gamma, beta, rm.copy(), rv.copy(), 0.9,
                                             1e-5, True, "relu", 0.8, key)
        want = R.batchnorm_activation_forward(*(a.astype(np.float64) for a in
                                                (Z, gamma, beta, rm, rv)), 0.9, 1e-5,
                                              True, "relu", 0.8, key)
        gb = C.batchnorm_activation_backward(d.copy(), got[1], got[2], got[3], gamma,
                                             "relu", 0.8, key)
        wb = R.batchnorm_activation_backward(d.astype(np.float64), want[1], want[2],
                                             want[3], gamma.astype(np.float64), "relu",
                                             0.8, key)
        err = max(_lab.max_rel_err(a, b) for a, b in zip(got + gb, want + wb))
        dZ, dg, db = np.empty_like(Z), np.empty(n, t), np.empty(n, t)

        def fwd():
            C.batchnorm_activation_forward(Z, gamma, beta, rm, rv, 0.9, 1e-5, True, "relu",
                                           0.8, key, **bufs)

        def bwd():
            C.batchnorm_activation_backward(d, bufs["act_out"], bufs["x_hat_out"],
                                            bufs["inv_std_out"], gamma, "relu", 0.8, key,
                                            dZ_out=dZ, dgamma_out=dg, dbeta_out=db)
        fwd()
        r = R.batchnorm_activation_forward(Z, gamma, beta, rm, rv, 0.9, 1e-5, True, "relu",
                                           0.8, key)
        variants = {
            "fwd ref": lambda: R.batchnorm_activation_forward(Z, gamma, beta, rm, rv, 0.9,
                                                              1e-5, True, "relu", 0.8, key),
            "fwd v1": fwd, "fwd v1 1T": serial(fwd),
            "bwd ref": lambda: R.batchnorm_activation_backward(d, r[1], r[2], r[3], gamma,
                                                               "relu", 0.8, key),
            "bwd v1": bwd, "bwd v1 1T": serial(bwd)}
        times = _lab.interleaved(variants, rounds=5, min_time=0.03)
        for name, sec in times.items():
            base = times[name.split()[0] + " ref"]
            rows.append([f"{m}x{n}", name, f"{sec * 1e6:,.1f}", f"{base / sec:.1f}x",
                         f"{err:.1e}" if name == "fwd v1" else ""])
    print(f"batchnorm + ReLU + dropout 0.8, float32, {numba.get_num_threads()} Numba "
          "threads; best of 5 interleaved rounds")
    _lab.table(rows, ["shape", "variant", "us", "vs ref", "max rel err (vs f64)"])


if __name__ == "__main__":
    main()
