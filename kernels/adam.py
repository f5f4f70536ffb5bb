"""Adam update over one flat float32 buffer: reference, variants, validation, timing.

N = number of parameters. Bytes per parameter: 28 (read p, g, m, v; write p, m, v),
STREAM convention (no write-allocate). Copy bandwidth (8 B/element, Numba prange and
np.copyto) is measured in the same run as the roofline anchor.

  ref  NumPy course Adam (fastdnn.reference.adam_update)
  v1   first fastdnn.cpu kernel: one prange loop, divisions by host-side bias
       corrections, an AdamW branch inside the loop
  v2   as v1 with the divisions turned into multiplications by host-side reciprocals
  v3   as v1 compiled with fastmath (reassociation allowed; not used: results would
       depend on the compiler's choices)
  v4   PyTorch's arrangement: host-side step = lr / bc1 and 1 / sqrt(bc2), leaving one
       division and one sqrt per element
  fastdnn  the promoted kernel: v4's arithmetic, branch-free (AdamW's decoupled decay
       as a factor, L2 as a coefficient that is 0 when unused); "public" adds the Python
       argument checks of fastdnn.cpu.adam_update
Winner: v4's arrangement without the branch (the branch of v1 kept the loop scalar: v1 is
the slowest while the arrays sit in cache; at DRAM size all variants are memory-bound).

python kernels/adam.py [--sizes 1e5,1e6,1.6e7] [--threads 2]
"""
import os
import sys

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")   # no BLAS here; keep labs alike
os.environ.setdefault("FASTDNN_SPIN_GUARD", "0")        # time the kernels on all threads
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _lab  # noqa: E402  (sets sys.path to the repo root)

import numba  # noqa: E402
import numpy as np  # noqa: E402
from numba import njit, prange  # noqa: E402

import fastdnn.cpu as C  # noqa: E402
import fastdnn.reference as R  # noqa: E402
from fastdnn.cpu._rows import adam_range  # noqa: E402


@njit(parallel=True, cache=True)
def adam_v1(p, g, m, v, lr, beta1, omb1, beta2, omb2, bc1, bc2, eps, wd, decoupled):
    for i in prange(p.shape[0]):
        pi = p[i]
        if decoupled:
            pi -= lr * wd * pi
            gi = g[i]
        else:
            gi = g[i] + wd * pi
        mi = beta1 * m[i] + omb1 * gi
        vi = beta2 * v[i] + omb2 * gi * gi
        m[i] = mi
        v[i] = vi
        p[i] = pi - lr * (mi / bc1) / (np.sqrt(vi / bc2) + eps)


@njit(parallel=True, cache=True)
def adam_v2(p, g, m, v, lr, b1, omb1, b2, omb2, inv_bc1, inv_bc2, eps):
    for i in prange(p.shape[0]):
        gi = g[i]
        mi = b1 * m[i] + omb1 * gi
        vi = b2 * v[i] + omb2 * gi * gi
        m[i] = mi
        v[i] = vi
        p[i] -= lr * (mi * inv_bc1) / (np.sqrt(vi * inv_bc2) + eps)


@njit(parallel=True, cache=True, fastmath=True)
def adam_v3(p, g, m, v, lr, b1, omb1, b2, omb2, bc1, bc2, eps):
    for i in prange(p.shape[0]):
        gi = g[i]
        mi = b1 * m[i] + omb1 * gi
        vi = b2 * v[i] + omb2 * gi * gi
        m[i] = mi
        v[i] = vi
        p[i] -= lr * (mi / bc1) / (np.sqrt(vi / bc2) + eps)


@njit(parallel=True, cache=True)
def adam_v4(p, g, m, v, step_size, b1, omb1, b2, omb2, inv_sqrt_bc2, eps):
    for i in prange(p.shape[0]):
        gi = g[i]
        mi = b1 * m[i] + omb1 * gi
        vi = b2 * v[i] + omb2 * gi * gi
        m[i] = mi
        v[i] = vi
        p[i] -= step_size * mi / (np.sqrt(vi) * inv_sqrt_bc2 + eps)


@njit(parallel=True, cache=True)
def copy_prange(src, dst):
    for i in prange(src.shape[0]):
        dst[i] = src[i]


@njit(cache=True, error_model="numpy")
def _fastdnn_range(p, g, m, v, step_size, b1, omb1, b2, omb2, inv_sqrt_bc2, eps):
    # fastdnn's Adam loop (fastdnn.cpu._rows.adam_range) on one thread
    adam_range(p, g, m, v, step_size, b1, omb1, b2, omb2, inv_sqrt_bc2, eps,
               p.dtype.type(0), p.dtype.type(1))


def main():
    sizes = [1e5, 1e6, 1.6e7]
    threads = 2
    args = sys.argv[1:]
    if "--sizes" in args:
        sizes = [float(s) for s in args[args.index("--sizes") + 1].split(",")]
    if "--threads" in args:
        threads = int(args[args.index("--threads") + 1])
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    t = np.float32
    lr, b1, b2, eps, step = 1e-3, 0.9, 0.999, 1e-8, 10
    s = (t(lr), t(b1), t(1 - b1), t(b2), t(1 - b2))
    bc1, bc2 = t(1 - b1**step), t(1 - b2**step)
    rows = []
    for n in sizes:
        n = int(n)
        rng = np.random.default_rng(0)
        p, g = rng.standard_normal(n, t), rng.standard_normal(n, t)
        m, v = rng.standard_normal(n, t) * t(0.1), rng.random(n, t) * t(0.01)
        # validation: 3 steps of each variant against the float64 reference
        want = [a.astype(np.float64) for a in (p, g, m, v)]
        for k in range(1, 4):
            R.adam_update(want[0], want[1], want[2], want[3], k, lr, b1, b2, eps)
        errs = {}
        for name in ("v1", "v2", "v3", "v4", "fastdnn"):
            q, mm, vv = p.copy(), m.copy(), v.copy()
            for k in range(1, 4):
                c1, c2 = t(1 - b1**k), t(1 - b2**k)
                if name == "v1":
                    adam_v1(q, g, mm, vv, *s, c1, c2, t(eps), t(0), False)
                elif name == "fastdnn":
                    C.adam_update(q, g, mm, vv, k, lr, b1, b2, eps)
                elif name == "v2":
                    adam_v2(q, g, mm, vv, *s, t(1 / c1), t(1 / c2), t(eps))
                elif name == "v3":
                    adam_v3(q, g, mm, vv, *s, c1, c2, t(eps))
                else:
                    adam_v4(q, g, mm, vv, t(lr / (1 - b1**k)), *s[1:], t(1 / np.sqrt(1 - b2**k)),
                            t(eps))
            errs[name] = _lab.max_rel_err(q, want[0])
        dst = np.empty_like(p)
        variants = {
            "ref": lambda: R.adam_update(p, g, m, v, step, lr, b1, b2, eps),
            "v1": lambda: adam_v1(p, g, m, v, *s, bc1, bc2, t(eps), t(0), False),
            "fastdnn": lambda: _fastdnn_range(p, g, m, v, t(lr / bc1), *s[1:],
                                              t(1 / np.sqrt(bc2)), t(eps)),
            "public": lambda: C.adam_update(p, g, m, v, step, lr, b1, b2, eps),
            "v2": lambda: adam_v2(p, g, m, v, *s, t(1 / bc1), t(1 / bc2), t(eps)),
            "v3": lambda: adam_v3(p, g, m, v, *s, bc1, bc2, t(eps)),
            "v4": lambda: adam_v4(p, g, m, v, t(lr / bc1), *s[1:], t(1 / np.sqrt(bc2)),
                                  t(eps)),
            "copy prange": lambda: copy_prange(g, dst),
            "copy np.copyto": lambda: np.copyto(dst, g),
        }
        times = _lab.interleaved(variants, rounds=5, min_time=0.03 if n < 1e7 else 0.2)
        copy_bw = max(8 * n / times["copy prange"], 8 * n / times["copy np.copyto"]) / 1e9
        for name, sec in times.items():
            bpp = 8 if name.startswith("copy") else 28
            gbs = bpp * n / sec / 1e9
            rows.append([f"{n:.1e}", name, f"{sec * 1e6:,.0f}", f"{gbs:.1f}",
                         f"{gbs / copy_bw:.2f}", f"{times['ref'] / sec:.1f}x",
                         f"{errs[name]:.1e}" if name in errs else ""])
    print(f"Adam float32, {numba.get_num_threads()} Numba threads, "
          f"threading layer {numba.threading_layer()}; best of 5 interleaved rounds")
    _lab.table(rows, ["N", "variant", "us/step", "GB/s", "x copy BW", "vs ref",
                      "max rel err (3 steps)"])


if __name__ == "__main__":
    main()
