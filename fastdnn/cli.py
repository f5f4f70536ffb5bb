"""The ``fastdnn`` command: ``fastdnn demo`` trains a network on scikit-learn's digits."""
import argparse
import time

import numpy as np


def demo(args):
    from sklearn.datasets import load_digits

    from . import reference as R
    from .rng import dropout_key

    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(y))
    X, y = (X[order] / 16.0).astype(args.dtype), y[order]
    n_test = len(y) // 5
    X_train, y_train, X_test, y_test = X[n_test:], y[n_test:], X[:n_test], y[:n_test]

    sizes = [64, 128, 64, 10]
    W = [R.initialize_weights("he", a, b, rng, args.dtype) for a, b in zip(sizes, sizes[1:])]
    b = [np.zeros(n, args.dtype) for n in sizes[1:]]
    params = W + b
    state = [(np.zeros_like(p), np.zeros_like(p)) for p in params]
    step = 0
    start = time.perf_counter()
    for epoch in range(args.epochs):
        order = rng.permutation(len(y_train))
        for s in range(0, len(order), args.batch_size):
            idx = order[s:s + args.batch_size]
            A, acts = [X_train[idx]], []
            for layer, (Wl, bl) in enumerate(zip(W, b)):
                last = layer == len(W) - 1
                out, act = R.dense_forward(A[-1], Wl, bl, "identity" if last else "relu",
                                           1.0 if last else 0.9,
                                           dropout_key(args.seed, step, layer))
                A.append(out)
                acts.append(act)
            _, d = R.softmax_cross_entropy(A[-1], y_train[idx])
            grads_W, grads_b = [None] * len(W), [None] * len(W)
            for layer in reversed(range(len(W))):
                last = layer == len(W) - 1
                d, grads_W[layer], grads_b[layer] = R.dense_backward(
                    d, A[layer], W[layer], acts[layer], "identity" if last else "relu",
                    1.0 if last else 0.9, dropout_key(args.seed, step, layer),
                    lambd=1e-4, need_dX=layer > 0)
            step += 1
            for p, g, (m, v) in zip(params, grads_W + grads_b, state):
                R.adam_update(p, g, m, v, step, 1e-3)
    seconds = time.perf_counter() - start

    def accuracy(X_, y_):
        A_ = X_
        for layer, (Wl, bl) in enumerate(zip(W, b)):
            A_, _ = R.dense_forward(A_, Wl, bl, "identity" if layer == len(W) - 1 else "relu")
        return float((A_.argmax(axis=1) == y_).mean())

    print(f"digits: {len(y_train)} train / {len(y_test)} test, network {sizes}, "
          f"backend numpy, {args.dtype}")
    print(f"train accuracy {accuracy(X_train, y_train):.4f}   "
          f"test accuracy {accuracy(X_test, y_test):.4f}   "
          f"{seconds / args.epochs * 1e3:.1f} ms/epoch")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="fastdnn", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="train on scikit-learn's digits and report accuracy")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=demo)
    from .search.cli import add_parser as add_search_parser
    add_search_parser(sub)
    args = parser.parse_args(argv)
    return args.run(args)
