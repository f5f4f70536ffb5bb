"""``fastdnn search CONFIG``: a random or coarse-to-fine search on scikit-learn's digits
from a small TOML (Python 3.11+) or JSON config; see examples/search.toml."""
import json
import time

import numpy as np

from .._validation import check_int, check_real


def load_config(path):
    """The config file as a dict (TOML by extension .toml, else JSON)."""
    if str(path).endswith(".toml"):
        try:
            import tomllib
        except ImportError as e:  # Python 3.10
            raise RuntimeError("TOML configs need Python 3.11+ (tomllib); use JSON") from e
        with open(path, "rb") as f:
            return tomllib.load(f)
    with open(path) as f:
        return json.load(f)


def digits_split(seed=0, dev_fraction=0.2):
    """(X_train, y_train, X_dev, y_dev): digits scaled to [0, 1], a fixed shuffled split."""
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(y))
    X, y = (X[order] / 16.0).astype(np.float32), y[order]
    n_dev = int(len(y) * dev_fraction)
    return X[n_dev:], y[n_dev:], X[:n_dev], y[:n_dev]


def run(args):
    from . import coarse_to_fine, random_search, space_from_config
    from .caviar import caviar_search
    cfg = load_config(args.config)
    allowed = {"mode", "method", "n_trials", "time_budget", "seed", "workers",
               "results_file", "space", "fixed", "coarse_to_fine"}
    unknown = set(cfg) - allowed
    if unknown:
        raise SystemExit(f"fastdnn search: unknown config keys {sorted(unknown)}; "
                         f"allowed: {sorted(allowed)}")
    try:   # a config error names the key and what it takes, without a traceback
        space = space_from_config(cfg.get("space", {}))
        fixed = cfg.get("fixed", {})
        for key in ("fixed", "coarse_to_fine"):
            if not isinstance(cfg.get(key, {}), dict):
                raise TypeError(f"{key} must be a table of name = value, got "
                                f"{cfg[key]!r}")
        seed = check_int("seed", cfg.get("seed", 0), 0)
        workers = check_int("workers", cfg.get("workers", 2), 1)
        if cfg.get("n_trials") is not None:
            check_int("n_trials", cfg["n_trials"], 0)
        if cfg.get("time_budget") is not None:
            check_real("time_budget (seconds)", cfg["time_budget"], 0.0)
    except (TypeError, ValueError) as e:
        raise SystemExit(f"fastdnn search: {args.config}: {e}") from None
    mode, method = cfg.get("mode", "random"), cfg.get("method", "caviar")
    results_file = args.results or cfg.get("results_file")
    data = digits_split(seed)
    executor = "serial" if workers <= 1 else None
    start = time.perf_counter()
    if mode == "random" and method == "caviar":
        from .caviar import _resolve_backend
        if _resolve_backend("auto") != "numpy":   # the compiled engine: in-process,
            executor = "serial"                    # Numba's threads share the work
        res = caviar_search(space, data, fixed=fixed, n_trials=cfg.get("n_trials", 20),
                            seed=seed, executor=executor, n_workers=workers,
                            results_file=results_file, verbose=args.verbose)
    elif mode == "random":
        res = random_search(space=space, data=data, fixed=fixed,
                            n_trials=cfg.get("n_trials"), time_budget=cfg.get("time_budget"),
                            seed=seed, executor=executor, n_workers=workers,
                            results_file=results_file, verbose=args.verbose)
    elif mode == "coarse_to_fine":
        res = coarse_to_fine(space=space, data=data, fixed=fixed, seed=seed,
                             executor=executor, n_workers=workers,
                             results_file=results_file, verbose=args.verbose,
                             **cfg.get("coarse_to_fine", {}))
    else:
        raise SystemExit(f"fastdnn search: mode must be 'random' or 'coarse_to_fine', "
                         f"got {mode!r}")
    seconds = time.perf_counter() - start
    print(f"{len(res)} trials ({len(res.ok)} ok) in {seconds:.1f} s: "
          f"{len(res) / seconds * 60:.0f} trials/min")
    print(res.table(args.top))
    if results_file:
        print(f"results: {results_file}")
    return 0


def add_parser(subparsers):
    """Register the ``search`` command on an argparse subparsers object."""
    p = subparsers.add_parser("search", help="hyperparameter search on digits from a "
                              "TOML / JSON config", description=__doc__)
    p.add_argument("config", help="config file (.toml or .json)")
    p.add_argument("--results", help="CSV results file (overrides the config's)")
    p.add_argument("--top", type=int, default=10, help="rows of the table to print")
    p.add_argument("--verbose", type=int, default=0, choices=[0, 1])
    p.set_defaults(run=run)
    return p
