"""Thread hand-off between OpenBLAS's GEMM and the Numba epilogue after it.

After each call OpenBLAS's workers busy-wait ~0.1 s (2**28 ticks) before parking, so a
2-thread Numba kernel launched right after a GEMM fights them for the cores. Each
configuration runs in a fresh process (env vars must precede the NumPy import) and times
fastdnn.cpu.dense_forward's two halves: the GEMM alone, the epilogue alone (bias + ReLU +
dropout, float32) and the whole [GEMM; epilogue] call. Target: pair <= 1.1x the sum.

  0 default       : np.dot into act, then the parallel epilogue (what fastdnn does)
  1 timeout env   : OPENBLAS_THREAD_TIMEOUT=4 set before NumPy loads
  2 serial epi    : numba.set_num_threads(1) around the epilogue only
  3 blas 1 thread : threadpoolctl limits NumPy's OpenBLAS to one thread
  4 gemm in njit  : the GEMM issued from nopython code (scipy's cython BLAS), then epilogue
  5 no numba thr. : NUMBA_NUM_THREADS=1 (everything Numba serial; BLAS keeps 2 threads)
  6 owned threads : fastdnn.cpu.owned_threads(): NumPy's OpenBLAS at one thread, the GEMM
                    split in column blocks over Numba's threads (fastdnn.cpu._blas), then
                    the parallel epilogue: one thread pool for both (what MLP steps run)

python kernels/handoff.py [--batch 256]
"""
import json
import os
import subprocess
import sys
import time

CONFIGS = {
    "0 default": {},
    "1 OPENBLAS_THREAD_TIMEOUT=4": {"OPENBLAS_THREAD_TIMEOUT": "4"},
    "2 serial epilogue": {},
    "3 OpenBLAS 1 thread": {},
    "4 GEMM inside njit": {},
    "5 NUMBA_NUM_THREADS=1": {"NUMBA_NUM_THREADS": "1"},
    "6 owned threads": {},
}


def child(name, batch, reps=60):
    import numba
    import numpy as np
    from numba import njit

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    from fastdnn.cpu import dense as D
    from fastdnn.cpu._common import dropout_args

    if name.startswith("3"):
        from threadpoolctl import threadpool_limits
        threadpool_limits(1, user_api="blas")

    @njit(cache=True)
    def gemm_njit(X, WT, out):
        np.dot(X, WT, out)

    rng = np.random.default_rng(0)
    X = rng.standard_normal((batch, 784), dtype=np.float32)
    W = rng.standard_normal((512, 784), dtype=np.float32) / 28
    b = rng.standard_normal(512, dtype=np.float32)
    act, out = np.empty((batch, 512), np.float32), np.empty((batch, 512), np.float32)
    _, key, thr, scale = dropout_args(0.8, 12345, np.dtype(np.float32))
    WT = W.T

    if name.startswith("6"):
        from fastdnn.cpu import _blas
        owned = _blas.owned_threads()
        owned.__enter__()   # for the whole child process

    def gemm():
        if name.startswith("4"):
            gemm_njit(X, WT, act)
        elif name.startswith("6"):
            _blas.matmul(X, W, act, transpose_b=True)
        else:
            np.dot(X, WT, out=act)

    def epilogue():
        if name.startswith("2"):
            old = numba.get_num_threads()
            numba.set_num_threads(1)
            D._forward_epilogue(1, True, True)(act, b, key, thr, scale, out)
            numba.set_num_threads(old)
        else:
            D._forward_epilogue(1, True, True)(act, b, key, thr, scale, out)

    def pair():
        gemm()
        epilogue()

    def timed(fn):
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    def busy(fn, s=0.2):
        end = time.perf_counter() + s
        while time.perf_counter() < end:
            fn()

    pick = np.median if os.environ.get("LAB_STAT") == "median" else np.min
    med = lambda xs: float(pick(xs)) * 1e6  # noqa: E731
    for _ in range(5):
        pair()
    busy(epilogue)
    t_epi = med([timed(epilogue) for _ in range(reps)])
    busy(gemm)
    t_gemm = med([timed(gemm) for _ in range(reps)])
    busy(pair)
    t_pair = med([timed(pair) for _ in range(reps)])
    return dict(gemm=t_gemm, epi=t_epi, pair=t_pair, ratio=t_pair / (t_gemm + t_epi),
                layer=numba.threading_layer(), threads=numba.get_num_threads())


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2], int(sys.argv[3]))))
        return
    batch = int(sys.argv[sys.argv.index("--batch") + 1]) if "--batch" in sys.argv else 256
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _lab import table
    rows = []
    for name, env in CONFIGS.items():
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", name,
                               str(batch)], env={**os.environ, **env}, capture_output=True,
                              text=True)
        if proc.returncode:
            rows.append([name, "failed: " + proc.stderr.strip().splitlines()[-1], "", "", ""])
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        rows.append([name, f"{r['gemm']:.0f}", f"{r['epi']:.0f}", f"{r['pair']:.0f}",
                     f"{r['ratio']:.2f}"])
    print(f"dense_forward {batch}x784 -> 512 float32, relu + dropout 0.8; "
          f"{os.environ.get('LAB_STAT', 'min')} of 60 calls, us")
    table(rows, ["config", "GEMM", "epilogue", "GEMM+epilogue", "pair / sum"])


if __name__ == "__main__":
    main()
