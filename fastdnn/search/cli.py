"""``fastdnn search CONFIG``: a random or coarse-to-fine search from a small TOML
(Python 3.11+) or JSON config, on scikit-learn's digits or on the user's data (a
``[data]`` table or ``--data FILE --target NAME``: a CSV file with a header row or a
.npz file); see examples/search.toml and examples/search_csv.toml.

n = number of examples, n_x = features, k = classes. The trials train classifiers
(softmax output): the target holds class labels, encoded as 0 .. k-1, and the networks
are n_x wide at the input and k at the output.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import time
import zipfile
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._validation import check_int, check_real

DATA_KEYS = ("path", "target", "features", "dev_fraction", "standardize")

#: A search's data: (X_train, y_train, X_dev, y_dev), float32 features (n, n_x) and
#: integer class indices (n,).
Split = tuple[NDArray[np.float32], NDArray[np.integer], NDArray[np.float32],
              NDArray[np.integer]]


def load_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The config file as a dict (TOML by extension .toml, else JSON).

    Parameters
    ----------
    path : str or path

    Returns
    -------
    dict
    """
    if str(path).endswith(".toml"):
        try:
            import tomllib
        except ImportError as e:  # Python 3.10
            raise RuntimeError("TOML configs need Python 3.11+ (tomllib); use JSON") from e
        with open(path, "rb") as f:
            return tomllib.load(f)
    with open(path) as f:
        return json.load(f)


def digits_split(seed: int = 0, dev_fraction: float = 0.2) -> Split:
    """(X_train, y_train, X_dev, y_dev): digits scaled to [0, 1], a fixed shuffled split.

    Parameters
    ----------
    seed : int
        Seeds the shuffle.
    dev_fraction : float
        The fraction of the 1797 rows that goes to dev (rounded down).

    Returns
    -------
    X_train, y_train, X_dev, y_dev : arrays
        float32 features (n, 64), class indices 0 .. 9.
    """
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(y))
    X, y = (X[order] / 16.0).astype(np.float32), y[order]
    n_dev = int(len(y) * dev_fraction)
    return X[n_dev:], y[n_dev:], X[:n_dev], y[:n_dev]


# ---------------------------------------------------------------------- the user's data
def read_csv_data(path: str | os.PathLike[str], target: str | None,
                  features: Sequence[str] | None = None,
                  ) -> tuple[NDArray[np.float64], NDArray[np.str_]]:
    """Features and labels from a CSV file whose first row names the columns.

    Parameters
    ----------
    path : str
    target : str
        The column holding the class labels (any text or numbers); None is refused
        with the file's column names.
    features : list of str, optional
        The feature columns (default: every column but ``target``); all numeric.

    Returns
    -------
    X : (n, n_x) float64 array
    labels : (n,) array of str
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:   # -sig: Excel's BOM
            text = f.read()
    except UnicodeDecodeError as e:
        raise ValueError(f"{path} is not UTF-8 text (byte {e.start}: {e.reason})") \
            from None
    lines = csv.reader(io.StringIO(text))
    header = next(lines, None)
    if not header:
        raise ValueError(f"{path} is empty; expected a header row of column names")
    header = [name.strip() for name in header]
    if target is None:
        raise ValueError(f"{path}: name the target column with target = \"...\" in "
                         f"[data] or --target; columns: {', '.join(header)}")
    _check_columns(path, header, [target])
    if features is None:
        features = [c for c in header if c != target]
    elif isinstance(features, str) or not isinstance(features, (list, tuple)):
        raise TypeError(f"features must be a list of column names of {path}, got "
                        f"{features!r}")
    _check_columns(path, header, features)
    if target in features:
        raise ValueError(f"{path}: features must not include the target {target!r}")
    if not features:
        raise ValueError(f"{path} has no column besides the target {target!r}")
    at = {name: header.index(name) for name in [target, *features]}
    rows = []
    for row in lines:
        line_no = lines.line_num   # a quoted cell may span lines
        if not row or all(not cell.strip() for cell in row):
            continue   # a blank line, e.g. at the end
        if len(row) != len(header):
            raise ValueError(f"{path} line {line_no} has {len(row)} values; the "
                             f"header has {len(header)} columns")
        rows.append((line_no, row))
    if not rows:
        raise ValueError(f"{path} has a header but no rows of data")
    X = np.empty((len(rows), len(features)))
    for j, name in enumerate(features):
        cells = [row[at[name]].strip() for _, row in rows]
        try:
            X[:, j] = np.array(cells, dtype=np.float64)
            bad = np.flatnonzero(~np.isfinite(X[:, j]))
        except ValueError:   # find the cell that is not a number
            bad = [i for i, cell in enumerate(cells) if not _is_float(cell)]
        if len(bad):
            line_no, cell = rows[bad[0]][0], cells[bad[0]]
            raise ValueError(f"{path} line {line_no}, column {name!r}: {cell!r} is not "
                             f"a finite number; features must be numeric (name the ones "
                             f"to use with features = [...])")
    labels = np.array([row[at[target]].strip() for _, row in rows])
    empty = np.flatnonzero(labels == "")
    if empty.size:
        raise ValueError(f"{path} line {rows[empty[0]][0]}: the target column "
                         f"{target!r} is empty")
    return X, labels


def _is_float(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _check_columns(path, header, names):
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"column names must be strings, got {name!r}")
        if name not in header:
            raise ValueError(f"{path} has no column {name!r}; columns: "
                             f"{', '.join(header)}")
        if header.count(name) > 1:
            raise ValueError(f"{path} has {header.count(name)} columns named {name!r}")


def read_npz_data(path: str | os.PathLike[str], features: str | None = "X",
                  target: str | None = "y") -> tuple[NDArray[np.float64], NDArray[Any]]:
    """Features and labels from a NumPy .npz file (``numpy.savez``).

    Parameters
    ----------
    path : str
    features : str
        The key of the (n, n_x) feature array; (n, a, b, ...) arrays, e.g. images, are
        flattened to (n, a * b * ...). None: "X".
    target : str
        The key of the (n,) labels, or of (n, k) one-hot rows. None: "y".

    Returns
    -------
    X : (n, n_x) float64 array
    labels : (n,) array
    """
    features = "X" if features is None else features
    target = "y" if target is None else target
    for name, key in (("features", features), ("target", target)):
        if not isinstance(key, str):
            raise TypeError(f"{name} must be the key of an array in {path}, got {key!r}")
    if not zipfile.is_zipfile(path):   # np.load would read a .npy, or try a pickle
        raise ValueError(f"{path} is not a .npz file (a zip of arrays, as numpy.savez "
                         f"writes)")
    try:
        with np.load(path, allow_pickle=False) as arrays:   # no pickles from a file
            for key in (features, target):
                if key not in arrays.files:
                    raise ValueError(f"{path} has no array {key!r}; arrays: "
                                     f"{', '.join(arrays.files)} (name them with "
                                     f"features = \"...\" and target = \"...\" in [data])")
            X, y = arrays[features], arrays[target]
    except (OSError, EOFError, zipfile.BadZipFile) as e:   # e.g. a truncated file
        raise ValueError(f"{path} is not a readable .npz file: {e}") from None
    except ValueError as e:
        if "allow_pickle" in str(e):
            raise ValueError(f"{path} holds object arrays; save numbers (and string "
                             f"labels) as plain NumPy arrays") from None
        raise
    if X.ndim < 2 or not np.issubdtype(X.dtype, np.number) or \
            np.issubdtype(X.dtype, np.complexfloating):
        raise ValueError(f"{path}: array {features!r} must be real numbers of shape "
                         f"(n, n_features), got {X.dtype} {X.shape}")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    elif y.ndim == 2 and np.issubdtype(y.dtype, np.number) and \
            np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all():
        y = y.argmax(axis=1)   # one-hot rows
    if y.ndim != 1 or len(y) != len(X):
        raise ValueError(f"{path}: array {target!r} must hold one label per row of "
                         f"{features!r} (shape ({len(X)},)), got shape {y.shape}")
    X = X.reshape(len(X), -1).astype(np.float64)
    if not np.isfinite(X).all():
        raise ValueError(f"{path}: array {features!r} holds NaN or infinite values")
    return X, y


def encode_labels(labels: ArrayLike, where: str) -> tuple[NDArray[np.int64], NDArray[Any]]:
    """Class labels as indices 0 .. k-1 and the k classes (numbers sorted as numbers).

    Refuses fewer than two classes, and fractional numbers: the trials are
    classifiers, and a continuous target would give one class per value.

    Parameters
    ----------
    labels : (n,) array-like
        Numbers, or text (taken as numbers when every label reads as one).
    where : str
        Where the labels come from, for the error messages.

    Returns
    -------
    indices : (n,) int64 array
    classes : (k,) array
        The sorted classes; ``classes[indices]`` gives the labels back.
    """
    labels = np.asarray(labels)
    if labels.dtype.kind in "US":   # from a CSV: numbers if they all read as numbers
        try:
            labels = labels.astype(np.float64)
        except ValueError:
            pass
    if labels.dtype.kind == "f":
        fractional = labels[labels != np.round(labels)]
        if fractional.size:
            raise ValueError(f"{where} holds fractional numbers (e.g. "
                             f"{float(fractional[0]):g}); fastdnn search trains "
                             f"classifiers: the target must hold class labels")
        labels = labels.astype(np.int64)
    classes, indices = np.unique(labels, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(f"{where} holds {len(classes)} class; a classifier needs at "
                         f"least 2")
    return indices.astype(np.int64), classes


def load_data(spec: Mapping[str, Any], seed: int = 0,
              base_dir: str | os.PathLike[str] = ".") -> tuple[Split, str]:
    """The (X_train, y_train, X_dev, y_dev) of a config's ``[data]`` table, and a line.

    The line describes the data.

    Parameters
    ----------
    spec : dict
        path (.csv or .npz; relative paths start at ``base_dir``), target (the CSV
        column, or the .npz key, default "y"), features (CSV: a list of columns,
        default all others; .npz: a key, default "X"), dev_fraction (0.2: a stratified
        split, by ``fastdnn.train_dev_test_split``), standardize (true: zero mean and
        unit variance from the training rows).
    seed : int
        Seeds the split.
    base_dir : str
        The folder of the config file.

    Returns
    -------
    data : (X_train, y_train, X_dev, y_dev)
        float32 features, int64 labels 0 .. k-1.
    description : str
    """
    from ..data import Standardizer, train_dev_test_split
    if not isinstance(spec, dict):
        raise TypeError(f"data must be a table of {', '.join(DATA_KEYS)}, got {spec!r}")
    unknown = sorted(set(spec) - set(DATA_KEYS))
    if unknown:
        raise ValueError(f"unknown [data] keys {unknown}; allowed: {list(DATA_KEYS)}")
    if not isinstance(spec.get("path"), str) or not spec["path"]:
        raise ValueError(f"[data] needs path = \"FILE.csv\" or \"FILE.npz\" (or "
                         f"--data FILE), got {spec.get('path')!r}")
    path = os.path.join(base_dir, os.path.expanduser(spec["path"]))
    if not os.path.isfile(path):
        raise ValueError(f"data file {path!r} not found (a path in the config is read "
                         f"from the config file's folder)")
    dev_fraction = check_real("dev_fraction", spec.get("dev_fraction", 0.2), 0.0, 1.0,
                              low_open=True, high_open=True)
    standardize = spec.get("standardize", True)
    if not isinstance(standardize, bool):
        raise TypeError(f"standardize must be true or false, got {standardize!r}")
    kind = os.path.splitext(path)[1].lower()
    if kind == ".csv":
        X, labels = read_csv_data(path, spec.get("target"), spec.get("features"))
        where = f"{path} column {spec['target']!r}"
    elif kind == ".npz":
        X, labels = read_npz_data(path, spec.get("features"), spec.get("target"))
        where = f"{path} array {spec.get('target', 'y')!r}"
    else:
        raise ValueError(f"data file {path!r}: expected a .csv or .npz file")
    y, classes = encode_labels(labels, where)
    X_train, X_dev, _, y_train, y_dev, _ = train_dev_test_split(
        X, y, (1 - dev_fraction, dev_fraction, 0.0), seed=seed)
    if standardize:
        scaler = Standardizer().fit(X_train)
        X_train, X_dev = (scaler.transform(a, np.float32) for a in (X_train, X_dev))
    else:
        X_train, X_dev = X_train.astype(np.float32), X_dev.astype(np.float32)
    shown = ", ".join(str(c) for c in classes[:5]) + (", ..." if len(classes) > 5 else "")
    description = (f"data: {spec['path']}: {len(y)} rows, {X.shape[1]} features -> "
                   f"{len(classes)} classes ({shown}); {len(y_train)} train / "
                   f"{len(y_dev)} dev" + (", standardized" if standardize else ""))
    return (X_train, y_train, X_dev, y_dev), description


# ---------------------------------------------------------------------- the command
CONFIG_KEYS = ("mode", "method", "n_trials", "time_budget", "seed", "workers",
               "results_file", "space", "fixed", "coarse_to_fine", "data")


def run(args: argparse.Namespace) -> int:
    """Run ``fastdnn search``: the search a config describes, then its summary.

    Parameters
    ----------
    args : argparse.Namespace
        config, data, target, results, plot, top, verbose, quiet (see ``add_parser``).

    Returns
    -------
    int
        The exit status, 0; a faulty config or data file raises SystemExit with a
        message, and Ctrl-C SystemExit(130) after saying where the finished trials are.
    """
    from . import coarse_to_fine, random_search, space_from_config
    from .caviar import caviar_search
    try:
        cfg = load_config(args.config)
    except (OSError, ValueError) as e:   # tomllib's and json's errors are ValueErrors
        raise SystemExit(f"fastdnn search: {args.config}: {e}") from None
    if not isinstance(cfg, dict):
        raise SystemExit(f"fastdnn search: {args.config}: expected a table of settings, "
                         f"got {type(cfg).__name__}")
    unknown = set(cfg) - set(CONFIG_KEYS)
    if unknown:
        raise SystemExit(f"fastdnn search: unknown config keys {sorted(unknown)}; "
                         f"allowed: {sorted(CONFIG_KEYS)}")
    try:   # a config error names the key and what it takes, without a traceback
        space = space_from_config(cfg.get("space", {}))
        fixed = cfg.get("fixed", {})
        for key in ("fixed", "coarse_to_fine", "data"):
            if not isinstance(cfg.get(key, {}), dict):
                raise TypeError(f"{key} must be a table of name = value, got "
                                f"{cfg[key]!r}")
        seed = check_int("seed", cfg.get("seed", 0), 0)
        workers = check_int("workers", cfg.get("workers", 2), 1)
        if cfg.get("n_trials") is not None:
            check_int("n_trials", cfg["n_trials"], 0)
        if cfg.get("time_budget") is not None:
            check_real("time_budget (seconds)", cfg["time_budget"], 0.0)
        mode = cfg.get("mode", "random")
        if mode not in ("random", "coarse_to_fine"):
            raise ValueError(f"mode must be 'random' or 'coarse_to_fine', got {mode!r}")
        # caviar trains a random search's trials together; coarse to fine runs MLPs
        method = cfg.get("method", "caviar" if mode == "random" else "mlp")
        if method not in ("caviar", "mlp"):
            raise ValueError(f"method must be 'caviar' or 'mlp', got {method!r}")
        if method == "caviar" and mode != "random":
            raise ValueError("method = \"caviar\" runs a random search only; for mode = "
                             "\"coarse_to_fine\" set method = \"mlp\" (one MLP per trial)")
        if method == "caviar" and cfg.get("time_budget") is not None:
            raise ValueError("time_budget is for method = \"mlp\"; method = \"caviar\" "
                             "runs n_trials")
        # (a [coarse_to_fine] table with mode = "random" waits for the mode to switch,
        # as examples/search.toml keeps it)
    except (TypeError, ValueError) as e:
        raise SystemExit(f"fastdnn search: {args.config}: {e}") from None
    results_file = args.results or cfg.get("results_file")
    data, description = _data(args, cfg, seed)
    # a line per finished trial unless --quiet; caviar only on --verbose 1: it reports
    # per group, and its line fails when the first group has no finished trial
    verbose = 0 if args.quiet else 1 if args.verbose is None else args.verbose
    print(description, flush=True)
    executor = "serial" if workers <= 1 else None
    start = time.perf_counter()
    try:   # the searches check their arguments before any trial runs
        if method == "caviar":
            from .caviar import _resolve_backend
            if _resolve_backend("auto") != "numpy":   # the compiled engine: in-process,
                executor = "serial"                    # Numba's threads share the work
            n_trials = cfg.get("n_trials", 20)
            if verbose:
                print(f"caviar: {n_trials} trials train together, in groups of one "
                      f"architecture (--verbose 1: a line per group)", flush=True)
            res = caviar_search(space, data, fixed=fixed, n_trials=n_trials, seed=seed,
                                executor=executor, n_workers=workers,
                                results_file=results_file, verbose=args.verbose == 1)
        elif mode == "random":
            res = random_search(space=space, data=data, fixed=fixed,
                                n_trials=cfg.get("n_trials"),
                                time_budget=cfg.get("time_budget"), seed=seed,
                                executor=executor, n_workers=workers,
                                results_file=results_file, verbose=verbose)
        else:
            res = coarse_to_fine(space=space, data=data, fixed=fixed, seed=seed,
                                 executor=executor, n_workers=workers,
                                 results_file=results_file, verbose=verbose,
                                 **cfg.get("coarse_to_fine", {}))
    except (TypeError, ValueError) as e:
        raise SystemExit(f"fastdnn search: {args.config}: {e}") from None
    except KeyboardInterrupt:
        print(_interrupted_line(results_file), file=sys.stderr, flush=True)
        raise SystemExit(130) from None   # the shell's code for Ctrl-C
    seconds = time.perf_counter() - start
    resumed = set(res.resumed)
    ran = [r for r in res if r.get("trial") not in resumed]
    line = f"{len(ran)} trials ({sum(r.get('status') == 'ok' for r in ran)} ok) in " \
           f"{seconds:.1f} s"
    if ran:
        line += f": {len(ran) / max(seconds, 1e-9) * 60:.0f} trials/min"
    if resumed:
        line += f"; {len(resumed)} resumed from {results_file}"
    print(line)
    print(res.summary(args.top))
    if results_file:
        print(f"results: {results_file}")
    if args.plot:
        _plot(res, args.plot)
    return 0


def _interrupted_line(results_file):
    """What a Ctrl-C leaves: the finished trials are in results_file."""
    if not results_file:
        return ("interrupted: no results_file, nothing saved (set results_file = "
                "\"...\" or --results FILE to keep finished trials)")
    saved = 0
    if os.path.exists(results_file):
        from .results import Results
        saved = len(Results.from_csv(results_file))
    return (f"interrupted: {saved} trials saved in {results_file}; rerun the same "
            f"command to resume")


def _data(args, cfg, seed):
    """The search's data and its description: digits unless ``[data]`` or --data names
    a file; any error ends the command with a message naming the file and the key."""
    spec = dict(cfg.get("data", {}))
    base_dir = os.path.dirname(os.path.abspath(args.config))
    if args.data:   # a path on the command line starts at the working directory
        spec["path"] = os.path.abspath(args.data)
    if args.target:
        spec["target"] = args.target
    if not spec:
        return digits_split(seed), ("data: scikit-learn's digits: 1797 rows, 64 "
                                    "features -> 10 classes; 80/20 train/dev split")
    try:
        return load_data(spec, seed, base_dir)
    except (OSError, TypeError, ValueError) as e:
        raise SystemExit(f"fastdnn search: {e}") from None


def _plot(res, path):
    """Draw the search's score against each hyperparameter into ``path``."""
    try:
        import matplotlib
        matplotlib.use("Agg")   # a file, no window: works without a display
        fig = res.plot("dev_accuracy", path)
    except (ImportError, ValueError) as e:
        raise SystemExit(f"fastdnn search: --plot: {e}") from None
    import matplotlib.pyplot as plt
    plt.close(fig)
    print(f"plot: {path}")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``search`` command on an argparse subparsers object.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        What ``ArgumentParser.add_subparsers`` returns.

    Returns
    -------
    argparse.ArgumentParser
        The ``search`` command's parser.
    """
    p = subparsers.add_parser("search", help="hyperparameter search on digits or your "
                              "data (CSV, .npz) from a TOML / JSON config",
                              description=__doc__)
    p.add_argument("config", help="config file (.toml or .json)")
    p.add_argument("--data", help="a .csv (header row) or .npz file to search on "
                   "(overrides the config's [data] path)")
    p.add_argument("--target", help="the CSV column (or .npz key) holding the labels")
    p.add_argument("--results", help="CSV results file (overrides the config's)")
    p.add_argument("--plot", metavar="PNG", help="after the search, draw the dev "
                   "accuracy against each hyperparameter into this file")
    p.add_argument("--top", type=int, default=10, help="rows of the table to print")
    p.add_argument("--verbose", type=int, choices=[0, 1],
                   help="0: no line per finished trial (the default for method = "
                   "\"mlp\" is 1); 1 with method = \"caviar\": a line per group")
    p.add_argument("--quiet", action="store_true", help="as --verbose 0")
    p.set_defaults(run=run)
    return p
