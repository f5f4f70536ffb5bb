"""Random search and coarse to fine over any concurrent.futures Executor.

A trial function maps a dict of hyperparameters to a dict of metrics (train_loss,
train_accuracy, dev_loss, dev_accuracy, epochs, history, ...). Trials run in-process
(executor="serial"), in a local ProcessPoolExecutor (the default, 2 workers) or on any
Executor, e.g. a Dask ``Client.get_executor()``. A failing trial becomes a row with
status "error", its message and traceback; it never stops the search. With a
results_file the table is rewritten after every trial, and a rerun skips the trials
already in it: trial t's config depends only on (seed, t), so a resumed search samples
the same configs.
"""
import concurrent.futures as cf
import functools
import math
import multiprocessing
import os
import time
import traceback

import numpy as np

from .._files import atomic_replace
from .results import Results
from .spaces import Choice, as_space, sample_config

METRICS = ("train_loss", "train_accuracy", "dev_loss", "dev_accuracy")


# ---------------------------------------------------------------------- default trial
def train_mlp(params, data, **fixed):
    """Build an MLP from hyperparameters, train it with Adam and evaluate on dev.

    Parameters
    ----------
    params : dict
        Any of learning_rate (1e-3), l2 (0), beta1 (0.9), beta2 (0.999), keep_prob (1),
        hidden_units (128), layers (number of hidden layers, 1), batch_size (64),
        decay (inverse-time decay rate per epoch, 0), epochs (30), activation ("relu"),
        batchnorm (False), dtype ("float32"), backend ("auto"), seed (0).
    data : tuple (X_train, y_train, X_dev, y_dev)
        y holds class indices 0..k-1.
    **fixed
        Defaults for keys missing from ``params``.

    Returns
    -------
    dict
        train_loss, train_accuracy, dev_loss, dev_accuracy (after the last epoch),
        epochs (run), history (per-epoch loss, accuracy, val_loss, val_accuracy).
    """
    from ..model import MLP
    from ..optim import Adam
    from ..schedules import InverseTime

    p = {"learning_rate": 1e-3, "l2": 0.0, "beta1": 0.9, "beta2": 0.999, "keep_prob": 1.0,
         "hidden_units": 128, "layers": 1, "batch_size": 64, "decay": 0.0, "epochs": 30,
         "activation": "relu", "batchnorm": False, "dtype": "float32", "backend": "auto",
         "seed": 0}
    unknown = set(params) - set(p)
    if unknown:
        raise ValueError(f"unknown hyperparameters {sorted(unknown)}; train_mlp takes "
                         f"{sorted(p)}")
    p.update(fixed)
    p.update(params)
    X_train, y_train, X_dev, y_dev = data
    k = int(max(np.max(y_train), np.max(y_dev))) + 1
    sizes = [X_train.shape[1]] + [int(p["hidden_units"])] * int(p["layers"]) + [k]
    model = MLP(sizes, activation=p["activation"], batchnorm=bool(p["batchnorm"]),
                keep_prob=float(p["keep_prob"]), l2=float(p["l2"]), dtype=p["dtype"],
                backend=p["backend"], seed=int(p["seed"]))
    opt = Adam(float(p["learning_rate"]), float(p["beta1"]), float(p["beta2"]))
    schedule = InverseTime(float(p["decay"])) if p["decay"] else None
    history = model.fit(X_train, y_train, optimizer=opt, epochs=int(p["epochs"]),
                        batch_size=int(p["batch_size"]), schedule=schedule,
                        validation_data=(X_dev, y_dev), verbose=0)
    out = {"train_loss": history["loss"][-1], "train_accuracy": history["accuracy"][-1],
           "dev_loss": history["val_loss"][-1], "dev_accuracy": history["val_accuracy"][-1],
           "epochs": len(history["loss"])}
    out["history"] = {key: [float(v) for v in history[key]]
                      for key in ("loss", "accuracy", "val_loss", "val_accuracy")}
    return out


def _one_blas_thread():
    """A context limiting BLAS to one thread: workers run side by side, and small
    matrix products lose more to thread start-up than they gain (needs threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        import contextlib
        return contextlib.nullcontext()
    return threadpool_limits(1)


def _run_trial(trial_fn, trial, params):
    """Run one trial; never raises: errors become a row with status "error"."""
    with _one_blas_thread():
        return _run_trial_inner(trial_fn, trial, params)


def _run_trial_inner(trial_fn, trial, params):
    start = time.perf_counter()
    row = {"trial": trial, **params}
    try:
        metrics = trial_fn(dict(params))
        if not isinstance(metrics, dict):
            metrics = {"dev_accuracy": float(metrics)}
        row.update(metrics)
        row["status"] = "ok"
    except Exception as e:  # noqa: BLE001 - a trial's failure is data, not a crash
        row.update(status="error", error=f"{type(e).__name__}: {e}",
                   traceback=traceback.format_exc())
    row["time"] = time.perf_counter() - start
    return row


# ---------------------------------------------------------------------- executors
class _Serial:
    """Runs in-process, one trial at a time."""


def _executor(executor, n_workers):
    """(executor or _Serial, whether we own it and must shut it down)."""
    if executor == "serial":
        return _Serial(), False
    if executor is None or executor == "process":
        # spawned, not forked: a fork of a process whose Numba threads have run (any
        # fastdnn.cpu kernel) aborts in the child (GNU OpenMP is not fork-safe)
        context = multiprocessing.get_context("spawn")
        threads = max(1, (os.cpu_count() or 1) // n_workers)
        return cf.ProcessPoolExecutor(max_workers=n_workers, mp_context=context,
                                      initializer=_share_cores, initargs=(threads,)), True
    if isinstance(executor, cf.Executor) or hasattr(executor, "submit"):
        return executor, False
    raise TypeError(f"executor must be None, 'serial', 'process' or a "
                    f"concurrent.futures.Executor, got {executor!r}")


def _share_cores(threads):
    """Worker start-up: Numba threads = cores / workers, so that the workers' parallel
    kernels do not oversubscribe the cores (BLAS is held at one thread per trial)."""
    try:
        import numba
    except ImportError:
        return
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))


def _save(results, results_file):
    if results_file is None:
        return
    with atomic_replace(results_file) as tmp:
        results.to_csv(tmp)


def _run_many(trial_fn, configs, results, *, executor, n_workers, deadline,
              results_file, max_pending, progress):
    """Run (trial, params) pairs from ``configs``, appending rows to ``results``."""
    ex, own = _executor(executor, n_workers)
    configs = iter(configs)
    try:
        if isinstance(ex, _Serial):
            for trial, params in configs:
                if time.perf_counter() > deadline:
                    break
                _record(results, _run_trial(trial_fn, trial, params), results_file,
                        progress)
            return
        pending = {}
        exhausted = False
        while True:
            while not exhausted and len(pending) < max_pending and \
                    time.perf_counter() <= deadline:
                try:
                    trial, params = next(configs)
                except StopIteration:
                    exhausted = True
                    break
                pending[ex.submit(_run_trial, trial_fn, trial, params)] = (trial, params)
            if not pending:
                break
            done, _ = cf.wait(list(pending), return_when=cf.FIRST_COMPLETED)
            for fut in done:
                trial, params = pending.pop(fut)
                try:
                    row = fut.result()
                except Exception as e:  # noqa: BLE001 - e.g. a worker died
                    row = {"trial": trial, **params, "status": "error",
                           "error": f"{type(e).__name__}: {e}",
                           "traceback": "".join(traceback.format_exception(e)),
                           "time": math.nan}
                _record(results, row, results_file, progress)
            if time.perf_counter() > deadline:
                for fut in list(pending):
                    if fut.cancel():
                        pending.pop(fut)
    finally:
        if own:
            ex.shutdown(wait=True, cancel_futures=True)


def _record(results, row, results_file, progress):
    results.rows.append(row)
    _save(results, results_file)
    if progress:
        acc = row.get("dev_accuracy")
        msg = f"{acc:.4f}" if isinstance(acc, float) else row.get("error", "")
        print(f"trial {row['trial']}: {row['status']} {msg}  ({row['time']:.2f} s)",
              flush=True)


def _prepare(trial_fn, space, data, fixed):
    if not isinstance(space, dict) or not space:
        raise TypeError(f"space must be a non-empty dict name -> Space, got {space!r}")
    space = {name: as_space(s) for name, s in space.items()}
    if trial_fn is None:
        if data is None:
            raise ValueError("pass trial_fn, or data=(X_train, y_train, X_dev, y_dev) for "
                             "the default MLP trial")
        trial_fn = functools.partial(train_mlp, data=tuple(data), **(fixed or {}))
    elif not callable(trial_fn):
        raise TypeError(f"trial_fn must be callable, got {trial_fn!r}")
    return trial_fn, space


def _resume(results_file, params):
    if results_file is not None and os.path.exists(results_file):
        old = Results.from_csv(results_file, params)
        return old, {int(r["trial"]) for r in old.rows if "trial" in r}
    return Results([], params), set()


def random_search(trial_fn=None, space=None, *, data=None, fixed=None, n_trials=None,
                  time_budget=None, seed=0, executor=None, n_workers=2,
                  results_file=None, max_pending=None, verbose=0):
    """Random search: sample configs from ``space`` and run them as trials.

    Parameters
    ----------
    trial_fn : callable(params: dict) -> dict of metrics, or None
        None trains ``train_mlp`` on ``data`` (picklable, so it runs in processes).
    space : dict name -> Space (a list is a Choice, a scalar is held fixed)
    data : (X_train, y_train, X_dev, y_dev), for the default trial function
    fixed : dict, optional
        Defaults for the default trial function (e.g. {"epochs": 30, "backend": "cpu"}).
    n_trials : int or None
        Trials 0 .. n_trials - 1; None runs until ``time_budget``.
    time_budget : float or None
        Seconds after which no new trial starts (running ones finish).
    seed : int
        Trial t's config is drawn with numpy.random.default_rng([seed, t]).
    executor : None (ProcessPoolExecutor with ``n_workers``), "serial" or an Executor
        E.g. ``dask.distributed.Client(...).get_executor()``.
    results_file : path or None
        CSV rewritten after every trial; trials already in it are skipped (resume).
    max_pending : int or None
        Trials submitted at once (default 2 x n_workers).
    verbose : 0 or 1 (one line per trial)

    Returns
    -------
    Results
    """
    if n_trials is None and time_budget is None:
        raise ValueError("pass n_trials, time_budget or both")
    trial_fn, space = _prepare(trial_fn, space, data, fixed)
    results, done = _resume(results_file, list(space))
    deadline = time.perf_counter() + (math.inf if time_budget is None else time_budget)

    def configs():
        t = 0
        while n_trials is None or t < n_trials:
            if t not in done:
                yield t, sample_config(space, seed, t)
            t += 1

    _run_many(trial_fn, configs(), results, executor=executor, n_workers=n_workers,
              deadline=deadline, results_file=results_file,
              max_pending=max_pending or 2 * n_workers, progress=verbose)
    results.rows.sort(key=lambda r: r["trial"])
    results.spaces = [space]
    return results


def coarse_to_fine(trial_fn=None, space=None, *, data=None, fixed=None, rounds=3,
                   trials_per_round=10, top_k=3, factor=0.5, metric="dev_accuracy",
                   seed=0, executor=None, n_workers=2, results_file=None,
                   time_budget=None, max_pending=None, verbose=0):
    """Coarse to fine: random search rounds, each over a space narrowed around the
    ``top_k`` best trials so far (by ``metric``), each dimension on its own scale.

    Round r runs trials r * trials_per_round ... (r + 1) * trials_per_round - 1; the
    other parameters are those of ``random_search``. The returned Results holds every
    round's rows (column "round") and ``results.spaces``, the space of each round.
    """
    if rounds < 1 or trials_per_round < 1 or top_k < 1:
        raise ValueError(f"rounds, trials_per_round and top_k must be >= 1, got "
                         f"{rounds}, {trials_per_round}, {top_k}")
    trial_fn, space = _prepare(trial_fn, space, data, fixed)
    results, done = _resume(results_file, list(space))
    deadline = time.perf_counter() + (math.inf if time_budget is None else time_budget)
    spaces = []
    for r in range(rounds):
        if r > 0:
            # rows of the earlier rounds only: a resumed table may hold later ones too
            ok = Results([row for row in results.ok if row.get("round", 0) < r])
            if not len(ok):
                break
            top = ok.top(top_k, metric)
            space = {name: (s.narrow([row[name] for row in top], factor)
                            if _narrowable(s) else s) for name, s in space.items()}
        spaces.append(space)
        ids = range(r * trials_per_round, (r + 1) * trials_per_round)
        configs = ((t, {**sample_config(space, seed, t), "round": r})
                   for t in ids if t not in done)
        _run_many(_strip_round(trial_fn), configs, results, executor=executor,
                  n_workers=n_workers, deadline=deadline, results_file=results_file,
                  max_pending=max_pending or 2 * n_workers, progress=verbose)
        if time.perf_counter() > deadline:
            break
    results.rows.sort(key=lambda r: r["trial"])
    results.spaces = spaces
    return results


def _narrowable(space):
    return not (isinstance(space, Choice) and len(space.options) == 1)


class _strip_round:
    """Drops the bookkeeping key "round" before calling the trial function (picklable)."""

    def __init__(self, fn):
        self.fn = fn

    def __call__(self, params):
        params = dict(params)
        params.pop("round", None)
        return self.fn(params)


class RandomSearch:
    """Object form of ``random_search`` / ``coarse_to_fine``: ``RandomSearch(space,
    data=...).run(n_trials=20)``; ``.results`` holds the table afterwards."""

    def __init__(self, space, trial_fn=None, *, data=None, fixed=None, seed=0,
                 executor=None, n_workers=2, results_file=None, verbose=0):
        self.space, self.trial_fn, self.data, self.fixed = space, trial_fn, data, fixed
        self.kw = dict(seed=seed, executor=executor, n_workers=n_workers,
                       results_file=results_file, verbose=verbose)
        self.results = None

    def run(self, n_trials=None, time_budget=None):
        self.results = random_search(self.trial_fn, self.space, data=self.data,
                                     fixed=self.fixed, n_trials=n_trials,
                                     time_budget=time_budget, **self.kw)
        return self.results

    def run_coarse_to_fine(self, rounds=3, trials_per_round=10, top_k=3, factor=0.5,
                           metric="dev_accuracy"):
        self.results = coarse_to_fine(self.trial_fn, self.space, data=self.data,
                                      fixed=self.fixed, rounds=rounds,
                                      trials_per_round=trials_per_round, top_k=top_k,
                                      factor=factor, metric=metric, **self.kw)
        return self.results
