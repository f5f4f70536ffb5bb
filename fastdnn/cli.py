"""The ``fastdnn`` command: ``fastdnn demo`` trains a BatchNorm + dropout + Adam network on
scikit-learn's digits, reports test accuracy, and compares the time per epoch of the fast
backend with the NumPy reference."""
from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections.abc import Sequence

from .profile import add_parser as add_profile_parser
from .search.cli import add_parser as add_search_parser


def _train(backend, data, args, verbose):
    from . import MLP, Adam

    X_train, X_dev, X_test, y_train, y_dev, y_test = data
    model = MLP([X_train.shape[1], 256, 128, 10], batchnorm=True, keep_prob=0.8,
                l2=args.l2, dtype=args.dtype, backend=backend, seed=args.seed)
    history = model.fit(X_train, y_train, optimizer=Adam(lr=args.lr), epochs=args.epochs,
                        batch_size=args.batch_size, validation_data=(X_dev, y_dev),
                        verbose=verbose)
    times = history["epoch_time"] if args.epochs else [0.0]
    # the first epoch includes compiling the kernels; time the steady state
    per_epoch = statistics.median(times[1:] if len(times) > 1 else times)
    return model, history, per_epoch


def demo(args: argparse.Namespace) -> int:
    """Run ``fastdnn demo``: train on the digits, print the accuracies and timings.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed options: epochs, batch_size, lr, l2, dtype, backend, compare, seed.

    Returns
    -------
    int
        The exit status, 0.
    """
    from sklearn.datasets import load_digits

    from . import resolve_backend, train_dev_test_split

    X, y = load_digits(return_X_y=True)
    X_train, X_dev, X_test, y_train, y_dev, y_test = train_dev_test_split(
        X, y, (0.7, 0.1, 0.2), seed=args.seed)
    # pixels lie in [0, 16]: scale them to [0, 1] (standardizing would blow up the
    # near-constant border pixels)
    data = tuple((a / 16.0).astype(args.dtype) for a in (X_train, X_dev, X_test)) + (
        y_train, y_dev, y_test)
    fast = resolve_backend(args.backend)
    if fast == "cuda" and args.backend == "auto":
        fast = "cpu"
    note = ""
    if fast != "numpy":
        try:
            from .backend import kernels
            kernels(fast)
        except (ImportError, RuntimeError) as exc:
            note = f" (backend {fast!r} unavailable: {exc}; using numpy)"
            fast = "numpy"
    print(f"digits: {len(y_train)} train / {len(y_dev)} dev / {len(y_test)} test, "
          f"network [64, 256, 128, 10] BatchNorm + dropout(keep 0.8) + Adam, {args.dtype}, "
          f"{args.epochs} epochs, batch {args.batch_size}, backend {fast}{note}", flush=True)
    verbose = 1 if sys.stderr.isatty() else 0
    model, history, fast_time = _train(fast, data, args, verbose)
    result = model.evaluate(data[2], y_test)
    dev = history["val_accuracy"][-1] if args.epochs else float("nan")
    print(f"test accuracy {result['accuracy']:.4f}   dev accuracy {dev:.4f}   "
          f"{fast_time * 1e3:.1f} ms/epoch on {fast}", flush=True)
    if args.compare and fast != "numpy":
        load = _load_average()
        _, ref_history, ref_time = _train("numpy", data, args, verbose)
        print(f"NumPy reference: {ref_time * 1e3:.1f} ms/epoch; {fast} is "
              f"{speed_words(ref_time / fast_time)}")
        busy = busy_note([history["epoch_time"][1:], ref_history["epoch_time"][1:]],
                         max(load, _load_average()), os.cpu_count() or 1)
        if busy:
            print(busy)
    return 0


def speed_words(ratio: float) -> str:
    """A speed ratio in words: "2.3x faster" or "1.04x slower".

    Never "1.0x faster" for 0.96.

    Parameters
    ----------
    ratio : float > 0
        Reference time / fast time.

    Returns
    -------
    str
    """
    if ratio >= 1:
        return f"{ratio:.{2 if ratio < 2 else 1}f}x faster"
    return f"{1 / ratio:.{2 if ratio > 0.5 else 1}f}x slower"


def busy_note(runs: Sequence[Sequence[float]], load: float, cores: int) -> str:
    """A warning when the timing was probably disturbed.

    That is when other processes kept the cores busy (a load average above the cores by
    half a core: this process's threads count up to the cores), or more than a quarter
    of the epochs took over 1.5x their median (one slow epoch of a few milliseconds is
    common on a quiet machine: a demo run had one in every run).

    Parameters
    ----------
    runs : sequence of sequences of float
        Each timed run's seconds per epoch (the runs' speeds differ: each is judged
        against its own median).
    load : float
        The highest 1-minute load average seen.
    cores : int
        The machine's logical CPUs.

    Returns
    -------
    str
        The warning, or "" when the timing looks undisturbed.
    """
    notes = []
    if load > cores + 0.5:
        notes.append(f"load average {load:.1f} on {cores} cores")
    spreads = [max(times) / statistics.median(times) for times in runs
               if len(times) > 2 and sum(t > 1.5 * statistics.median(times)
                                         for t in times) > len(times) / 4]
    if spreads:
        notes.append(f"epoch times up to {max(spreads):.1f}x their median")
    if not notes:
        return ""
    return ("warning: the machine was busy during the measurement ("
            + "; ".join(notes) + "): the ratio is rough")


def _load_average():
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):   # not on every platform
        return 0.0


def main(argv: Sequence[str] | None = None) -> int:
    """The ``fastdnn`` command: parse ``argv`` and run its subcommand.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments; default ``sys.argv[1:]``.

    Returns
    -------
    int
        The subcommand's exit status.
    """
    parser = argparse.ArgumentParser(prog="fastdnn", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="train on scikit-learn's digits and report accuracy")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.003)
    p.add_argument("--l2", type=float, default=0.0)
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--backend", default="auto", choices=["auto", "cpu", "numpy"])
    p.add_argument("--no-compare", dest="compare", action="store_false",
                   help="skip the timing run on the NumPy reference")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=demo)
    add_profile_parser(sub)
    add_search_parser(sub)
    args = parser.parse_args(argv)
    if args.command == "demo":
        if args.epochs < 0:
            parser.error("--epochs must be >= 0")
        if args.batch_size < 1:
            parser.error("--batch-size must be >= 1")
    return args.run(args)
