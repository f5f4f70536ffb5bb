"""The user's whole job against the peers a user would pick, each in its own process.

Rows (each library runs in a process of its own: in one process, one library's idle
threads spin beside the other's):

  epoch        one fit epoch, MNIST-shaped (n x 784, 10 classes), 784-512-256-10,
               BatchNorm + ReLU + dropout 0.8, softmax, Adam 1e-3, batch 128, float32:
               fastdnn MLP.fit, Keras 3 on JAX (model.fit), PyTorch eager (fused Adam)
  loaded       the same at n=20000 with one busy process beside it
               (``python -c "while True: pass"``), and loaded / quiet
  sklearn      scikit-learn's digits, MLPClassifier(hidden_layer_sizes=(128,),
               max_iter=30): fastdnn.sklearn (float32 and float64) vs scikit-learn
  step         fastdnn's training step at batch 128, 256, 1024 against its 8 matrix
               products alone (the same one-threaded BLAS blocks, back to back); and
               the sklearn row's step (64-128-10, batch 200, Adam): 270 of them are
               that row's fit, so 270 x its products is the floor of that row
  adam         a bare fastdnn.Adam().step(p, g) on one flat array and on a list of a
               784-512-256-10 model's tensors, vs torch.optim.Adam(fused=True)
  start        import + first training step in a fresh process, cold (empty compile
               cache) and warm

Each figure is the median of --rounds timed repetitions after a warm-up; ratios of
figures measured in different processes move with the machine's noise: run twice.
Peers that are not installed are skipped (``pip install torch keras jax``; never
dependencies of fastdnn).

    python benchmarks/fit_epoch.py [--rows epoch,loaded,sklearn,step,adam,start]
                                   [--n 60000] [--rounds 3] [--threads 2]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

SIZES = (784, 512, 256, 10)
HERE = os.path.abspath(__file__)


# ----------------------------------------------------------------------------- children
# Each runs in its own process: python fit_epoch.py --child NAME ARGS_JSON; prints JSON.

def _data(n, seed=0):
    import numpy as np
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, SIZES[0]), dtype=np.float32)
    T = rng.standard_normal((SIZES[0], SIZES[-1])).astype(np.float32)
    return X, np.argmax(X @ T, axis=1).astype(np.int64)


def _epochs(epoch, rounds):
    first = time.perf_counter()
    epoch()                                   # compile / trace, allocate
    first = time.perf_counter() - first
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        epoch()
        times.append(time.perf_counter() - t0)
    return {"median": statistics.median(times), "runs": times, "first": first}


def child_fastdnn(a):
    import fastdnn
    X, y = _data(a["n"])
    model = fastdnn.MLP(list(SIZES), batchnorm=True, keep_prob=0.8, seed=0)
    opt = fastdnn.Adam(lr=1e-3)
    return _epochs(lambda: model.fit(X, y, optimizer=opt, epochs=1, batch_size=128,
                                     verbose=0), a["rounds"])


def child_torch(a):
    import torch
    torch.set_num_threads(a["threads"])
    torch.manual_seed(0)
    X, y = _data(a["n"])
    layers = []
    for i in range(len(SIZES) - 1):
        last = i == len(SIZES) - 2
        layers.append(torch.nn.Linear(SIZES[i], SIZES[i + 1], bias=last))
        if not last:
            layers += [torch.nn.BatchNorm1d(SIZES[i + 1]), torch.nn.ReLU(),
                       torch.nn.Dropout(0.2)]
    net = torch.nn.Sequential(*layers)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, fused=True)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    g = torch.Generator().manual_seed(0)

    def epoch():
        net.train()
        perm = torch.randperm(len(X), generator=g)
        for s in range(0, len(X), 128):
            idx = perm[s:s + 128]
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(net(Xt[idx]), yt[idx])
            loss.backward()
            opt.step()
    return _epochs(epoch, a["rounds"])


def child_keras(a):
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras
    keras.utils.set_random_seed(0)
    X, y = _data(a["n"])
    model = keras.Sequential([keras.Input((SIZES[0],))])
    for w in SIZES[1:-1]:
        model.add(keras.layers.Dense(w, use_bias=False))
        model.add(keras.layers.BatchNormalization())
        model.add(keras.layers.ReLU())
        model.add(keras.layers.Dropout(0.2))
    model.add(keras.layers.Dense(SIZES[-1]))
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return _epochs(lambda: model.fit(X, y, epochs=1, batch_size=128, verbose=0),
                   a["rounds"])


def child_sklearn(a):
    import warnings

    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    warnings.simplefilter("ignore", ConvergenceWarning)
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    if a["impl"] == "sklearn":
        from sklearn.neural_network import MLPClassifier
        make = lambda: MLPClassifier(hidden_layer_sizes=(128,), max_iter=30,  # noqa
                                     random_state=0)
    else:
        from fastdnn.sklearn import MLPClassifier
        make = lambda: MLPClassifier(hidden_layer_sizes=(128,), max_iter=30,  # noqa
                                     random_state=0, dtype=a["impl"])
    return _epochs(lambda: make().fit(X, y), a["rounds"])


# (label, layer sizes, batch, BatchNorm and dropout 0.8): the epoch's network, and the
# scikit-learn row's (digits, 64-128-10, batch 200, plain: the floor of that row)
STEP_CASES = [(f"{m}", SIZES, m, True) for m in (128, 256, 1024)] + [
    ("digits 200", (64, 128, 10), 200, False)]


def child_step(a):
    """fastdnn's step against its products on the same one-threaded BLAS blocks."""
    import numpy as np

    import fastdnn
    from fastdnn.engine import blas
    from fastdnn.engine.threads import threads
    out = {}
    steps = 20
    for label, sizes, m, regularised in STEP_CASES:
        rng = np.random.default_rng(0)
        X = rng.standard_normal((m * steps, sizes[0]), dtype=np.float32)
        y = rng.integers(0, sizes[-1], m * steps)
        model = fastdnn.MLP(list(sizes), batchnorm=regularised,
                            keep_prob=0.8 if regularised else 1.0, seed=0)
        opt = fastdnn.Adam()
        floor = _gemm_floor(sizes, m, blas, np)
        with threads(a["threads"]):
            fit = _median_time(lambda: model.fit(X, y, optimizer=opt, epochs=1,
                                                 batch_size=m, verbose=0), a["rounds"] * 2)
            gemm = _median_time(floor, a["rounds"] * 10)
        out[label] = {"step": fit / steps, "gemm": gemm}
    return out


def _gemm_floor(sizes, m, blas, np):
    """The step's products (forward, weight gradients, input gradients but the
    first layer's), each split in the engine's column blocks, on the engine's threads."""
    from numba import njit

    from fastdnn.engine.pool import claim, close, default_pool, finish
    from fastdnn.engine.threads import current_threads

    @njit(nogil=True)
    def products(ctl, gen, shapes, A, B, C, tid):
        while True:
            t = claim(ctl, gen)
            if t < 0:
                break
            M, N, K, ta, tb = shapes[t]
            blas.gemm((ta == 1, tb == 1, M, N, K), (A, 0, M if ta else K),
                      (B, 0, K if tb else N), (C, 0, N), 0.0)
            finish(ctl)
        if tid == 0:
            close(ctl, gen)

    shapes = []
    for n_in, n_out in zip(sizes, sizes[1:]):
        blocks = max(1, min(4, n_out // 32))
        for _ in range(blocks):
            w = n_out // blocks
            shapes.append((m, w, n_in, 0, 1))        # forward
            shapes.append((w, n_in, m, 1, 0))        # dW
            if n_in != sizes[0]:
                shapes.append((m, n_in // blocks, n_out, 0, 0))   # dX
    shapes = np.array(shapes, np.int64)
    big = m * max(sizes) * 2 + max(sizes) ** 2 * 2
    A = np.ones(big, np.float32)
    B = np.ones(big, np.float32)
    C = np.zeros(big, np.float32)
    return lambda: default_pool().run(products, (shapes, A, B, C), len(shapes),
                                      current_threads())


def _median_time(fn, rounds):
    fn()
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def child_adam(a):
    import numpy as np
    rng = np.random.default_rng(0)
    out = {}
    shapes = [(512, 784), (512,), (512,), (256, 512), (256,), (256,), (10, 256), (10,)]
    cases = {f"flat {n:.0e}": [(int(n),)] for n in (1e5, 1e6, 1.6e7)}
    cases["list (784-512-256-10)"] = shapes
    for name, case in cases.items():
        p = [rng.standard_normal(s, dtype=np.float32) for s in case]
        g = [rng.standard_normal(s, dtype=np.float32) for s in case]
        if a["impl"] == "fastdnn":
            import fastdnn
            opt = fastdnn.Adam(lr=1e-3)
            P, G = (p[0], g[0]) if len(p) == 1 else (p, g)
            fn = lambda: opt.step(P, G)   # noqa: E731
        else:
            import torch
            torch.set_num_threads(a["threads"])
            tp = [torch.from_numpy(x).requires_grad_() for x in p]
            for t, x in zip(tp, g):
                t.grad = torch.from_numpy(x)
            opt = torch.optim.Adam(tp, lr=1e-3, fused=True)
            fn = opt.step
        out[name] = _median_time(fn, max(20, a["rounds"] * 10))
    return out


def child_start(a):
    t0 = time.perf_counter()
    import numpy as np

    import fastdnn
    X, y = _data(256)
    model = fastdnn.MLP(list(SIZES), batchnorm=True, keep_prob=0.8, seed=0)
    model.train_step(X[:128], y[:128], fastdnn.Adam())
    return {"seconds": time.perf_counter() - t0, "np": np.__version__}


CHILDREN = {"fastdnn": child_fastdnn, "torch": child_torch, "keras": child_keras,
            "sklearn": child_sklearn, "step": child_step, "adam": child_adam,
            "start": child_start}


# ----------------------------------------------------------------------------- parent

def run_child(name, args, busy=False, env=None):
    """Run child ``name`` in a new process (beside a busy one when ``busy``); returns its
    JSON result, or None when it failed (a peer not installed)."""
    env = dict(os.environ, **(env or {}))
    env.setdefault("FASTDNN_NUM_THREADS", str(args["threads"]))
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        if hog is not None:
            time.sleep(0.5)
        done = subprocess.run([sys.executable, HERE, "--child", name, json.dumps(args)],
                              capture_output=True, text=True, env=env, timeout=3600)
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()
    if done.returncode != 0:
        print(f"  ({name}: failed or not installed: "
              f"{(done.stderr.strip().splitlines() or ['?'])[-1]})")
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def rows_epoch(a):
    print(f"\n## fit epoch, n={a.n}, batch 128, float32, {a.threads} threads "
          f"(median of {a.rounds}; first = compile + first epoch)")
    res = {lib: run_child(lib, dict(n=a.n, rounds=a.rounds, threads=a.threads))
           for lib in ("fastdnn", "keras", "torch")}
    _table(res, "fastdnn")


def rows_loaded(a):
    n = min(a.n, 20000)
    print(f"\n## fit epoch, n={n}, quiet and with one busy process beside it")
    print("| library | quiet s | busy s | busy / quiet | busy runs |")
    print("|---|---:|---:|---:|---|")
    for lib in ("fastdnn", "keras", "torch"):
        args = dict(n=n, rounds=a.rounds, threads=a.threads)
        quiet = run_child(lib, args)
        busy = run_child(lib, args, busy=True)
        if quiet and busy:
            print(f"| {lib} | {quiet['median']:.3f} | {busy['median']:.3f} | "
                  f"{busy['median'] / quiet['median']:.2f} | "
                  + " ".join(f"{t:.3f}" for t in busy["runs"]) + " |")


def rows_sklearn(a):
    print("\n## scikit-learn digits, MLPClassifier(hidden_layer_sizes=(128,), max_iter=30)")
    res = {impl: run_child("sklearn", dict(impl=impl, rounds=a.rounds, threads=a.threads))
           for impl in ("sklearn", "float32", "float64")}
    _table(res, "sklearn", other_faster=True)


def rows_step(a):
    print(f"\n## training step against its matrix products ({a.threads} threads)")
    res = run_child("step", dict(rounds=a.rounds, threads=a.threads))
    if res:
        print("| batch | step ms | products ms | step / products |")
        print("|---:|---:|---:|---:|")
        for m, r in res.items():
            print(f"| {m} | {r['step'] * 1e3:.2f} | {r['gemm'] * 1e3:.2f} | "
                  f"{r['step'] / r['gemm']:.2f} |")


def rows_adam(a):
    print(f"\n## bare Adam().step, float32 ({a.threads} threads)")
    res = {impl: run_child("adam", dict(impl=impl, rounds=a.rounds, threads=a.threads))
           for impl in ("fastdnn", "torch")}
    if res["fastdnn"]:
        print("| case | fastdnn us | torch fused us | torch / fastdnn |")
        print("|---|---:|---:|---:|")
        for case, t in res["fastdnn"].items():
            other = res["torch"][case] if res["torch"] else float("nan")
            print(f"| {case} | {t * 1e6:.0f} | {other * 1e6:.0f} | {other / t:.2f} |")


def rows_start(a):
    print("\n## import + first training step in a fresh process")
    with tempfile.TemporaryDirectory() as cache:
        env = {"NUMBA_CACHE_DIR": cache, "FASTDNN_CACHE_DIR": cache}
        cold = run_child("start", dict(threads=a.threads), env=env)
        warm = [run_child("start", dict(threads=a.threads), env=env) for _ in range(2)]
    if cold:
        print(f"cold {cold['seconds']:.1f} s; warm " +
              ", ".join(f"{w['seconds']:.2f} s" for w in warm if w))


def _table(res, base, other_faster=False):
    print("| impl | median s | first s | runs | vs " + base + " |")
    print("|---|---:|---:|---|---:|")
    ref = res.get(base)
    for name, r in res.items():
        if r is None:
            continue
        ratio = (r["median"] / ref["median"]) if ref else float("nan")
        if other_faster:
            ratio = 1 / ratio
        print(f"| {name} | {r['median']:.3f} | {r['first']:.2f} | "
              + " ".join(f"{t:.3f}" for t in r["runs"]) + f" | {ratio:.2f}x |")


ROWS = {"epoch": rows_epoch, "loaded": rows_loaded, "sklearn": rows_sklearn,
        "step": rows_step, "adam": rows_adam, "start": rows_start}


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(CHILDREN[sys.argv[2]](json.loads(sys.argv[3]))))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default=",".join(ROWS))
    ap.add_argument("--n", type=int, default=60000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    print(f"fastdnn user-job benchmark: {os.cpu_count()} CPUs")
    for row in a.rows.split(","):
        ROWS[row](a)


if __name__ == "__main__":
    main()
