"""One training step of a 784-512-256-10 MLP (Dense+BN+ReLU+dropout 0.8 twice, softmax,
Adam on one flat buffer), float32: NumPy reference vs fastdnn.cpu, and the OpenBLAS
spin configurations of kernels/handoff.py at the level that matters, a whole step.

Each configuration runs in its own process (OPENBLAS_THREAD_TIMEOUT must precede the
NumPy import); configurations are interleaved over 3 rounds:
  reference              fastdnn.reference, all buffers preallocated where it allows
  cpu, guard (default)   fastdnn.cpu as imported: OpenBLAS spins, so kernels run on the
                         calling thread only (fastdnn.cpu._common.SPIN_GUARD)
  cpu, no guard          FASTDNN_SPIN_GUARD=0: parallel kernels fight the spinning workers
  cpu, timeout=4         OPENBLAS_THREAD_TIMEOUT=4: workers park, kernels run parallel
  cpu, owned threads     inside fastdnn.cpu.owned_threads() (what the models do): NumPy's
                         OpenBLAS at one thread, products split over Numba's threads,
                         kernels parallel
python kernels/mlp_step.py [--batches 64,256,1024]
"""
import json
import os
import subprocess
import sys
import time

CONFIGS = {
    "reference": ("reference", {}),
    "cpu, guard (default)": ("cpu", {}),
    "cpu, no guard": ("cpu", {"FASTDNN_SPIN_GUARD": "0"}),
    "cpu, OPENBLAS_THREAD_TIMEOUT=4": ("cpu", {"OPENBLAS_THREAD_TIMEOUT": "4"}),
    "cpu, owned threads": ("cpu-owned", {}),
}
SIZES = (784, 512, 256, 10)
ROUNDS = 3


def child(backend, batch, seconds=0.7):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    import numpy as np

    from fastdnn import backend as B
    from fastdnn.cpu import _common
    from fastdnn.rng import dropout_key
    K = B.kernels("numpy" if backend == "reference" else "cpu")
    if backend == "cpu-owned":
        K.owned_threads().__enter__()   # for the whole child process
    t = np.float32
    rng = np.random.default_rng(0)
    shapes = []
    for a, b in zip(SIZES[:-1], SIZES[1:]):
        shapes += [(b, a), (b,), (b,)] if b != SIZES[-1] else [(b, a), (b,)]
    total = sum(int(np.prod(s)) for s in shapes)
    flat = {k: np.zeros(total, t) for k in "pgmv"}

    def views(a):
        out, k = [], 0
        for s in shapes:
            n = int(np.prod(s))
            out.append(a[k:k + n].reshape(s))
            k += n
        return out
    P, G = views(flat["p"]), views(flat["g"])
    for i in (0, 3, 6):
        P[i][...] = rng.standard_normal(P[i].shape) * np.sqrt(2 / P[i].shape[1])
    P[1][...] = 1
    P[4][...] = 1
    run = [(np.zeros(n, t), np.ones(n, t)) for n in SIZES[1:3]]
    X = rng.standard_normal((batch, SIZES[0]), t)
    y = rng.integers(0, 10, batch)
    e = lambda n: np.empty((batch, n), t)  # noqa: E731
    buf = {n: dict(z=e(n), o=e(n), a=e(n), xh=e(n), inv=np.empty(n, t), d=e(n))
           for n in SIZES[1:3]}
    out10, dz10 = e(10), e(10)

    def step(s):
        h = X
        cache = []
        for li, n in enumerate(SIZES[1:3]):
            W, gamma, beta = P[3 * li:3 * li + 3]
            bb = buf[n]
            key = dropout_key(0, s, li)
            K.dense_forward(h, W, None, out=bb["z"], act_out=bb["z"])
            K.batchnorm_activation_forward(bb["z"], gamma, beta, *run[li], 0.9, 1e-5, True,
                                           "relu", 0.8, key, out=bb["o"], act_out=bb["a"],
                                           x_hat_out=bb["xh"], inv_std_out=bb["inv"])
            cache.append((h, key))
            h = bb["o"]
        K.dense_forward(h, P[6], P[7], out=out10, act_out=out10)
        loss, _ = K.softmax_cross_entropy(out10, y, dZ_out=dz10)
        d = K.dense_backward(dz10, h, P[6], out10, dX_out=buf[256]["d"], dW_out=G[6],
                             db_out=G[7], dZ_out=dz10)[0]
        for li in (1, 0):
            n = SIZES[1 + li]
            bb = buf[n]
            h_in, key = cache[li]
            W, gamma, beta = P[3 * li:3 * li + 3]
            dz, _, _ = K.batchnorm_activation_backward(
                d, bb["a"], bb["xh"], bb["inv"], gamma, "relu", 0.8, key, dZ_out=bb["d"],
                dgamma_out=G[3 * li + 1], dbeta_out=G[3 * li + 2])
            d = K.dense_backward(dz, h_in, W, bb["z"], with_bias=False, need_dX=li > 0,
                                 dX_out=buf[512]["d"] if li else None, dW_out=G[3 * li])[0]
        K.adam_update(flat["p"], flat["g"], flat["m"], flat["v"], s, 1e-3)
        return loss

    for s in range(1, 4):
        step(s)
    samples, s = [], 4
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        step(s)
        samples.append(time.perf_counter() - t0)
        s += 1
    return dict(ms=float(np.median(samples)) * 1e3, guard=_common.SPIN_GUARD, steps=s)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2], int(sys.argv[3]))))
        return
    batches = [64, 256, 1024]
    if "--batches" in sys.argv:
        batches = [int(b) for b in sys.argv[sys.argv.index("--batches") + 1].split(",")]
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _lab import table
    rows = []
    for batch in batches:
        best, guard = {}, {}
        for _ in range(ROUNDS):  # interleaved rounds of fresh processes; best median kept
            for name, (backend, env) in CONFIGS.items():
                proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child",
                                       backend, str(batch)], env={**os.environ, **env},
                                      capture_output=True, text=True)
                if proc.returncode:
                    raise RuntimeError(proc.stderr.strip()[-500:])
                r = json.loads(proc.stdout.strip().splitlines()[-1])
                best[name] = min(best.get(name, float("inf")), r["ms"])
                guard[name] = r["guard"]
        ref = best["reference"]
        for name, (backend, _) in CONFIGS.items():
            rows.append([batch, name, f"{best[name]:.2f}", f"{ref / best[name]:.2f}x",
                         str(guard[name]) if backend == "cpu" else ""])
    print("MLP 784-512-256-10 training step, float32, BN+ReLU+dropout, Adam; "
          f"best of {ROUNDS} interleaved processes of the median ms/step over 0.7 s")
    table(rows, ["batch", "config", "ms/step", "vs reference", "SPIN_GUARD"])


if __name__ == "__main__":
    main()
