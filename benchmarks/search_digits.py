"""Random search on scikit-learn's digits: fastdnn vs scikit-learn, trials per minute.

Searches learning rate (log-uniform 1e-4..1e-1), L2 (log-uniform 1e-6..1e-1) and Adam's
beta1 (1 - 10^r, 0.8..0.999) for a 64-128-10 ReLU network, 30 epochs per trial, batch
64, on a fixed 80/20 train/dev split. scikit-learn: RandomizedSearchCV over
MLPClassifier with PredefinedSplit, n_jobs=2, max_iter=30, tol=0 and n_iter_no_change
larger than max_iter (all 30 epochs run), refit=False. fastdnn: caviar_search (trials
trained together by the compiled engine, in-process: executor="serial", Numba's threads
(2 on this machine) train chunks of models in parallel; --caviar-backend numpy gives the
NumPy engine in 2 worker processes instead) and random_search (one MLP per trial, 2
worker processes). caviar_search scores the dev set once per trial, after the last
epoch, as RandomizedSearchCV does (dev_curves=False; --dev-curves scores it after every
epoch, about 10% more work). Wall times include starting the worker processes;
Numba's one-off compilation (cached on disk) is done by a warm-up call before the clock
starts.

--jax-trials N adds the same search written as a JAX user would (when JAX is installed):
N models in one array program, ``jax.jit(jax.vmap(train))`` with an epoch as a
``lax.scan`` over the batches, the same shuffle for every model as caviar, He-normal
initialization, Adam with per-model learning rate, beta1 and L2; run in its own process,
its one-off XLA compilation done by a warm-up call before the clock starts.

    python benchmarks/search_digits.py [--trials 60] [--sk-trials 10] [--plain-trials 8]
                                       [--jax-trials 0]
"""
import argparse
import json
import subprocess
import sys
import time
import warnings

import numpy as np


def data(seed=0):
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(y))
    X, y = (X[order] / 16.0).astype(np.float32), y[order]
    n_dev = len(y) // 5
    return X[n_dev:], y[n_dev:], X[:n_dev], y[:n_dev]


class OneMinusLogUniform:
    """scipy-style distribution for RandomizedSearchCV: 1 - 10^r, r uniform."""

    def __init__(self, low, high):
        from scipy.stats import loguniform
        self.d = loguniform(1 - high, 1 - low)

    def rvs(self, size=None, random_state=None):
        return 1 - self.d.rvs(size=size, random_state=random_state)


def sklearn_search(d, n_trials, epochs, batch_size, seed):
    from scipy.stats import loguniform
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import PredefinedSplit, RandomizedSearchCV
    from sklearn.neural_network import MLPClassifier
    X_train, y_train, X_dev, y_dev = d
    X = np.concatenate([X_train, X_dev])
    y = np.concatenate([y_train, y_dev])
    split = PredefinedSplit(np.r_[np.full(len(y_train), -1), np.zeros(len(y_dev))])
    mlp = MLPClassifier(hidden_layer_sizes=(128,), solver="adam", batch_size=batch_size,
                        max_iter=epochs, tol=0.0, n_iter_no_change=epochs + 1,
                        random_state=seed)
    dists = {"learning_rate_init": loguniform(1e-4, 1e-1), "alpha": loguniform(1e-6, 1e-1),
             "beta_1": OneMinusLogUniform(0.8, 0.999)}
    search = RandomizedSearchCV(mlp, dists, n_iter=n_trials, cv=split, n_jobs=2,
                                refit=False, random_state=seed)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X, y)
    seconds = time.perf_counter() - start
    return seconds, float(np.max(search.cv_results_["mean_test_score"]))


def _jax_trainer(d, epochs, batch_size, seed):
    """train(hyper, key) -> dev accuracies of the models: K models in one jitted vmap."""
    import jax
    import jax.numpy as jnp
    X, y, X_dev, y_dev = (jnp.asarray(a) for a in d)
    n, m = len(y), batch_size
    full = n // m
    orders = np.stack([np.random.default_rng(seed + e).permutation(n)
                       for e in range(epochs)])

    def init(key):
        k1, k2 = jax.random.split(key)
        return {"W1": jax.random.normal(k1, (64, 128)) * np.sqrt(2 / 64),
                "b1": jnp.zeros(128),
                "W2": jax.random.normal(k2, (128, 10)) * np.sqrt(2 / 128),
                "b2": jnp.zeros(10)}

    def logits(p, Xb):
        return jax.nn.relu(Xb @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]

    def loss(p, Xb, yb, l2):
        z = logits(p, Xb)
        ce = jnp.mean(jax.nn.logsumexp(z, axis=1) - jnp.take_along_axis(
            z, yb[:, None], axis=1)[:, 0])
        return ce + l2 / (2 * len(yb)) * (jnp.sum(p["W1"] ** 2) + jnp.sum(p["W2"] ** 2))

    def step(state, batch, lr, beta1, l2):
        p, mom, vel, t = state
        g = jax.grad(loss)(p, X[batch], y[batch], l2)
        t = t + 1
        mom = jax.tree.map(lambda a, b: beta1 * a + (1 - beta1) * b, mom, g)
        vel = jax.tree.map(lambda a, b: 0.999 * a + 0.001 * b * b, vel, g)
        corr = lr * jnp.sqrt(1 - 0.999 ** t) / (1 - beta1 ** t)
        p = jax.tree.map(lambda w, a, b: w - corr * a / (jnp.sqrt(b) + 1e-8), p, mom, vel)
        return (p, mom, vel, t)

    def train_one(key, lr, beta1, l2, orders):
        p = init(key)
        zeros = jax.tree.map(jnp.zeros_like, p)
        state = (p, zeros, zeros, 0.0)

        def epoch(state, order):
            batches = order[:full * m].reshape(full, m)
            state, _ = jax.lax.scan(lambda s, b: (step(s, b, lr, beta1, l2), None),
                                    state, batches)
            if n % m:
                state = step(state, order[full * m:], lr, beta1, l2)
            return state, None

        state, _ = jax.lax.scan(epoch, state, orders)
        return jnp.mean(jnp.argmax(logits(state[0], X_dev), axis=1) == y_dev)

    train = jax.jit(jax.vmap(train_one, in_axes=(0, 0, 0, 0, None)))

    def run(n_trials):
        rng = np.random.default_rng(seed)
        hyper = [jnp.asarray(a, jnp.float32) for a in (
            10 ** rng.uniform(-4, -1, n_trials), 1 - 10 ** rng.uniform(-3, np.log10(0.2),
                                                                      n_trials),
            10 ** rng.uniform(-6, -1, n_trials))]
        keys = jax.random.split(jax.random.PRNGKey(seed), n_trials)
        return np.asarray(train(keys, *hyper, jnp.asarray(orders)))
    return run


def jax_vmap_search(d, n_trials, epochs, batch_size, seed):
    run = _jax_trainer(d, epochs, batch_size, seed)
    run(n_trials)                        # XLA compiles for this shape
    start = time.perf_counter()
    acc = run(n_trials)
    return time.perf_counter() - start, float(acc.max())


def jax_search_in_child(args):
    """The JAX search in its own process (fastdnn's and JAX's threads never meet)."""
    cmd = [sys.executable, __file__, "--jax-child", "--jax-trials", str(args.jax_trials),
           "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
           "--seed", str(args.seed)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        print(f"jax.vmap search failed: {out.stderr.strip().splitlines()[-1:]}")
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def warm_up(d, batch_size, backend):
    """Compile (or load from Numba's cache) the caviar engine before timing."""
    from fastdnn.search.caviar import train_caviar
    X, y, X_dev, y_dev = d
    train_caviar(X[:100], y[:100], [X.shape[1], 8, 10], [{}], epochs=1,
                 batch_size=batch_size, validation_data=(X_dev[:10], y_dev[:10]),
                 backend=backend)


def fastdnn_search(d, n_trials, epochs, batch_size, seed, plain, backend,
                   dev_curves=False):
    from fastdnn.search import LogUniform, OneMinusLogUniform as OMLU, random_search
    from fastdnn.search.caviar import caviar_search
    space = {"learning_rate": LogUniform(1e-4, 1e-1), "l2": LogUniform(1e-6, 1e-1),
             "beta1": OMLU(0.8, 0.999)}
    fixed = {"epochs": epochs, "batch_size": batch_size, "hidden_units": 128}
    start = time.perf_counter()
    if plain:
        res = random_search(space=space, data=d, fixed={**fixed, "backend": backend},
                            n_trials=n_trials, seed=seed, n_workers=2)
    else:
        in_process = backend != "numpy"
        res = caviar_search(space, d, fixed=fixed, n_trials=n_trials, seed=seed,
                            executor="serial" if in_process else None, n_workers=2,
                            backend=backend, dev_curves=dev_curves)
    seconds = time.perf_counter() - start
    assert len(res.ok) == n_trials, res.failed.rows[:1]
    return seconds, res.best()["dev_accuracy"]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=60, help="fastdnn caviar trials")
    p.add_argument("--plain-trials", type=int, default=8,
                   help="fastdnn one-MLP-per-trial trials (0 skips)")
    p.add_argument("--plain-backend", default="auto")
    p.add_argument("--caviar-backend", default="auto",
                   help="train_caviar engine: auto, cpu (compiled) or numpy")
    p.add_argument("--sk-trials", type=int, default=10, help="scikit-learn trials")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dev-curves", action="store_true",
                   help="caviar_search scores the dev set after every epoch")
    p.add_argument("--jax-trials", type=int, default=0,
                   help="K models trained by jax.jit(jax.vmap(...)) (0 skips)")
    p.add_argument("--jax-child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    d = data(args.seed)
    if args.jax_child:
        print(json.dumps(jax_vmap_search(d, args.jax_trials, args.epochs, args.batch_size,
                                         args.seed)))
        return
    print(f"digits: {len(d[1])} train / {len(d[3])} dev, 64-128-10 relu, {args.epochs} "
          f"epochs, batch {args.batch_size}, 2 workers")
    rows = []
    warm_up(d, args.batch_size, args.caviar_backend)
    t, acc = fastdnn_search(d, args.trials, args.epochs, args.batch_size, args.seed,
                            False, args.caviar_backend, args.dev_curves)
    rows.append((f"fastdnn caviar_search ({args.caviar_backend})", args.trials, t, acc))
    if args.plain_trials:
        t, acc = fastdnn_search(d, args.plain_trials, args.epochs, args.batch_size,
                                args.seed, True, args.plain_backend)
        rows.append((f"fastdnn random_search ({args.plain_backend})", args.plain_trials,
                     t, acc))
    if args.jax_trials:
        result = jax_search_in_child(args)
        if result:
            rows.append(("jax.jit(jax.vmap) K models", args.jax_trials, *result))
    t, acc = sklearn_search(d, args.sk_trials, args.epochs, args.batch_size, args.seed)
    rows.append(("sklearn RandomizedSearchCV", args.sk_trials, t, acc))
    sk_rate = rows[-1][1] / rows[-1][2] * 60
    print(f"{'search':34s} {'trials':>6s} {'seconds':>8s} {'trials/min':>10s} "
          f"{'vs sklearn':>10s} {'best dev acc':>12s}")
    for name, n, t, acc in rows:
        rate = n / t * 60
        print(f"{name:34s} {n:6d} {t:8.2f} {rate:10.1f} {rate / sk_rate:9.1f}x {acc:12.4f}")


if __name__ == "__main__":
    main()
