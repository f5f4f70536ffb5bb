"""fastdnn.sklearn.MLPClassifier against scikit-learn's MLPClassifier on digits.

Same settings for both (hidden_layer_sizes=(128,), solver="adam", max_iter=30,
random_state=0), the same fixed train/test split (75/25, random_state=0, pixels / 16).
Prints test accuracy and the median of 3 fit times per row (wall clock, and the
process CPU time summed over threads, which a busy shared machine disturbs less); the
fastdnn backends are warmed up (JIT compiled) by one untimed fit first.

    python benchmarks/sklearn_digits.py [--repeats 3] [--max-iter 30]
"""
import argparse
import importlib.util
import platform
import statistics
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as SkMLPClassifier

from fastdnn.sklearn import MLPClassifier


def _time_fit(make, X, y, repeats):
    times, cpu_times, est = [], [], None
    for _ in range(repeats):
        est = make()
        start, cpu_start = time.perf_counter(), time.process_time()
        est.fit(X, y)
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    return statistics.median(times), statistics.median(cpu_times), est


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-iter", type=int, default=30)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", ConvergenceWarning)

    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X / 16.0, y, test_size=0.25, random_state=0)
    settings = dict(hidden_layer_sizes=(128,), solver="adam", max_iter=args.max_iter,
                    random_state=0)
    rows = [("scikit-learn", "-", "float64", lambda: SkMLPClassifier(**settings))]
    backends = ["numpy"] + (["cpu"] if importlib.util.find_spec("fastdnn.cpu") else [])
    for backend in backends:
        for dtype in ("float32", "float64"):
            rows.append(("fastdnn.sklearn", backend, dtype,
                         lambda b=backend, d=dtype: MLPClassifier(**settings, backend=b,
                                                                  dtype=d)))
    print(f"digits: {len(Xtr)} train / {len(Xte)} test, {settings}, "
          f"median of {args.repeats} fits; {platform.processor() or platform.machine()}")
    print(f"{'estimator':<16} {'backend':<8} {'dtype':<8} {'accuracy':>9} "
          f"{'fit s':>8} {'vs sklearn':>10} {'cpu s':>8}")
    base = None
    for name, backend, dtype, make in rows:
        if name != "scikit-learn":
            make().set_params(max_iter=1).fit(Xtr[:50], ytr[:50])  # compile / warm up
        seconds, cpu_seconds, est = _time_fit(make, Xtr, ytr, args.repeats)
        base = seconds if base is None else base
        acc = float(np.mean(est.predict(Xte) == yte))
        print(f"{name:<16} {backend:<8} {dtype:<8} {acc:>9.4f} {seconds:>8.3f} "
              f"{base / seconds:>9.2f}x {cpu_seconds:>8.3f}")


if __name__ == "__main__":
    main()
