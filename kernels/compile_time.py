"""Numba compile cost of fastdnn.cpu: first training step in a fresh process with an
empty kernel cache (cold) and again with the cache filled (warm).

Each run is a subprocess with NUMBA_CACHE_DIR pointing at a temporary directory; it
times `import fastdnn.cpu` and the first call of each public kernel (float32).
python kernels/compile_time.py
"""
import json
import os
import subprocess
import sys
import tempfile
import time

CHILD = r'''
import json, sys, time
t0 = time.perf_counter()
import numpy as np
import fastdnn.cpu as C
times = {"import": time.perf_counter() - t0}
rng = np.random.default_rng(0)
t = np.float32
X = rng.standard_normal((32, 20), t); W = rng.standard_normal((16, 20), t)
b = np.zeros(16, t); g = np.ones(16, t); rm = np.zeros(16, t); rv = np.ones(16, t)
def timed(name, fn):
    s = time.perf_counter(); r = fn(); times[name] = time.perf_counter() - s; return r
out, act = timed("dense_forward", lambda: C.dense_forward(X, W, b, "relu", 0.8, 1))
timed("dense_backward", lambda: C.dense_backward(out.copy(), X, W, act, "relu", 0.8, 1))
o = timed("batchnorm_activation_forward", lambda: C.batchnorm_activation_forward(
    act, g, b, rm, rv, activation="relu", keep_prob=0.8, key=2))
timed("batchnorm_activation_backward", lambda: C.batchnorm_activation_backward(
    act.copy(), o[1], o[2], o[3], g, "relu", 0.8, 2))
timed("softmax_cross_entropy", lambda: C.softmax_cross_entropy(out, np.arange(32) % 16))
p = W.ravel().copy()
timed("adam_update", lambda: C.adam_update(p, p.copy(), p * 0, p * 0, 1, 1e-3))
print(json.dumps(times))
'''


def main():
    repo = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache,
               "PYTHONPATH": repo + os.pathsep + os.environ.get("PYTHONPATH", "")}
        runs = {}
        for label in ("cold", "warm"):
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", CHILD], env=env, text=True,
                                  capture_output=True, check=True)
            runs[label] = json.loads(proc.stdout.strip().splitlines()[-1])
            runs[label]["process total"] = time.perf_counter() - t0
    print("first call, seconds (float32; cold = empty NUMBA_CACHE_DIR)")
    print(f"| {'call':<32} | {'cold':>6} | {'warm':>6} |")
    print(f"|{'-' * 34}|{'-' * 7}:|{'-' * 7}:|")
    for name in runs["cold"]:
        print(f"| {name:<32} | {runs['cold'][name]:6.2f} | {runs['warm'][name]:6.2f} |")


if __name__ == "__main__":
    main()
