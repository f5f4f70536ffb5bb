"""Random search and coarse to fine over any concurrent.futures Executor.

A trial function maps a dict of hyperparameters to a dict of metrics (train_loss,
train_accuracy, dev_loss, dev_accuracy, epochs, history, ...). Trials run in-process
(executor="serial"), in a local ProcessPoolExecutor (the default, 2 workers) or on any
Executor, e.g. a Dask ``Client.get_executor()``. A failing trial becomes a row with
status "error", its message and traceback; it never stops the search. That holds for a
worker process that dies (killed for lack of memory, a crash in native code): the
workers report each trial they start, so the trial that was running is recorded as
failed and the others run again on a new pool (when several were running, each runs
again alone to find the one that kills its worker). Workers end with the search's
process. With a results_file the table is rewritten after every trial, and a rerun
skips the trials already in it, retrying failed ones: trial t's config depends only on
(seed, t), so a resumed search samples the same configs.
"""
from __future__ import annotations

import collections
import concurrent.futures as cf
import contextlib
import ctypes
import functools
import hashlib
import json
import math
import multiprocessing
import os
import signal
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Mapping
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any, Union

import numpy as np
from numpy.typing import ArrayLike

from .._files import atomic_replace
from .._validation import check_int, check_real
from .results import Results
from .spaces import Choice, check_space, sample_config

if TYPE_CHECKING:
    from .spaces import SpaceLike

METRICS = ("train_loss", "train_accuracy", "dev_loss", "dev_accuracy")

#: A trial function: hyperparameters -> metrics (a number alone is the dev_accuracy).
TrialFn = Callable[[dict[str, Any]], Union[Mapping[str, Any], float]]
#: The data of the default trial function: (X_train, y_train, X_dev, y_dev), y holding
#: class indices.
Data = tuple[ArrayLike, ArrayLike, ArrayLike, ArrayLike]
#: Where trials run: None or "process" (a pool of spawned processes), "serial" (in this
#: process), or an Executor (anything with ``submit``).
ExecutorSpec = Union[None, str, cf.Executor]
#: A results file: a path.
PathLike = Union[str, os.PathLike[str]]


# ---------------------------------------------------------------------- default trial
#: The hyperparameters train_mlp takes, and their defaults.
TRAIN_MLP_DEFAULTS = {
    "learning_rate": 1e-3, "l2": 0.0, "beta1": 0.9, "beta2": 0.999, "keep_prob": 1.0,
    "hidden_units": 128, "layers": 1, "batch_size": 64, "decay": 0.0, "epochs": 30,
    "activation": "relu", "batchnorm": False, "dtype": "float32", "backend": "auto",
    "seed": 0, "augment": None}
# scikit-learn's names for them: a hint where difflib finds no close name
_SKLEARN_NAMES = {"max_iter": "epochs", "alpha": "l2", "learning_rate_init": "learning_rate",
                  "hidden_layer_sizes": "hidden_units and layers",
                  "random_state": "seed", "beta_1": "beta1", "beta_2": "beta2",
                  "optimizer": None, "optimiser": None, "solver": None}


def _check_train_mlp_names(names, where, allowed=TRAIN_MLP_DEFAULTS, who="train_mlp",
                           head="unknown hyperparameters"):
    """Refuse names ``who`` does not take, suggesting the close one (a typo in ``fixed``
    would otherwise train with the default, silently)."""
    import difflib
    unknown = [name for name in names if name not in allowed]
    if not unknown:
        return
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(str(name), list(allowed), n=1)
        if close:
            hints.append(f"{name!r}: did you mean {close[0]!r}?")
        elif name in _SKLEARN_NAMES:
            meant = _SKLEARN_NAMES[name]
            hints.append(f"{name!r} is scikit-learn's name for {meant}" if meant else
                         f"{name!r}: {who} trains with Adam only")
    raise ValueError(f"{head} {sorted(unknown)} in {where}"
                     + (f" ({'; '.join(hints)})" if hints else "")
                     + f"; {who} takes {sorted(allowed)}")


def train_mlp(params: Mapping[str, Any], data: Data, **fixed: Any) -> dict[str, Any]:
    """Build an MLP from hyperparameters, train it with Adam and evaluate on dev.

    Parameters
    ----------
    params : dict
        Any of learning_rate (1e-3), l2 (0), beta1 (0.9), beta2 (0.999), keep_prob (1),
        hidden_units (128), layers (number of hidden layers, 1), batch_size (64),
        decay (inverse-time decay rate per epoch, 0), epochs (30), activation ("relu"),
        batchnorm (False), dtype ("float32"), backend ("auto"), seed (0), augment
        (None: a fastdnn.Augment for ``fit``, given in ``fixed``).
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

    _check_train_mlp_names(params, "params")
    _check_train_mlp_names(fixed, "fixed")
    p = dict(TRAIN_MLP_DEFAULTS)
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
                        validation_data=(X_dev, y_dev), verbose=0, augment=p["augment"])
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
    if _started_queue is not None:   # in a worker of our own pool: say which trial
        _started_queue.put(trial)
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


def _check_executor(executor):
    if executor in (None, "serial", "process") or isinstance(executor, cf.Executor) \
            or hasattr(executor, "submit"):
        return executor
    raise TypeError(f"executor must be None, 'serial', 'process' or a "
                    f"concurrent.futures.Executor, got {executor!r}")


def _executor(executor, n_workers):
    """(executor or _Serial, whether we own it and must shut it down)."""
    executor = _check_executor(executor)
    if executor == "serial":
        return _Serial(), False
    if executor is None or executor == "process":
        return _process_pool(check_int("n_workers", n_workers, 1)), True
    return executor, False


_GUARD_HELP = ("Workers are spawned: each starts a new Python "
               "that imports the main script, so a script must start the search under "
               "`if __name__ == \"__main__\":`, or every worker starts it again.")


def _process_pool(n_workers, started_queue=None):
    """A ProcessPoolExecutor of spawned workers that share the cores, end with this
    process and put each trial they start on ``started_queue``."""
    # the stdlib refuses too, but only later, with a BrokenProcessPool in the parent
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise RuntimeError("a search was started while a worker process was still "
                           "importing the main script. " + _GUARD_HELP)
    # spawned, not forked: a fork of a process whose Numba threads have run (any
    # fastdnn.cpu kernel) aborts in the child (GNU OpenMP is not fork-safe)
    context = multiprocessing.get_context("spawn")
    threads = max(1, (os.cpu_count() or 1) // n_workers)
    return cf.ProcessPoolExecutor(max_workers=n_workers, mp_context=context,
                                  initializer=_start_worker,
                                  initargs=(threads, started_queue))


_started_queue = None   # in a worker: where _run_trial reports the trial it starts
_PR_SET_PDEATHSIG = 1   # from <linux/prctl.h>


def _start_worker(threads, started_queue):
    global _started_queue
    _started_queue = started_queue
    _exit_with_parent()
    _share_cores(threads)


def _exit_with_parent():
    """Worker start-up: end this worker when the search's process dies. A killed search
    never shuts its pool down, and its workers would run their trials for nobody."""
    if sys.platform.startswith("linux"):
        # the kernel kills us, even inside native code that holds the GIL. It follows
        # the thread that started us: the pool is used by one thread for its whole life
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass
    parent = multiprocessing.parent_process()
    if parent is not None:   # elsewhere, and if the parent died before prctl took hold
        threading.Thread(target=_exit_when_gone, args=(parent,), daemon=True,
                         name="fastdnn-exit-with-parent").start()


def _exit_when_gone(parent):
    parent.join()   # waits on the parent's sentinel: returns when it has died
    os._exit(1)


def _share_cores(threads):
    """Worker start-up: Numba threads = cores / workers, so that the workers' parallel
    kernels do not oversubscribe the cores (BLAS is held at one thread per trial)."""
    try:
        import numba
    except ImportError:
        return
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))


class _TrialPool:
    """The "process" executor, replaceable: when a worker dies, ``started`` tells which
    of the lost trials had begun, and ``restart`` makes a new pool."""

    def __init__(self, n_workers):
        self.n_workers = n_workers
        self.ran_trials = False   # whether any pool before this one ran a trial
        self._start()

    def _start(self):
        self.started = set()
        # a queue per pool: a killed worker may have died holding the old one's lock
        self._queue = multiprocessing.get_context("spawn").SimpleQueue()
        self.executor = _process_pool(self.n_workers, self._queue)

    def submit(self, trial_fn, trial, params):
        return self.executor.submit(_run_trial, trial_fn, trial, params)

    def read_started(self):
        """Take in the trials the workers reported; called after every wait, so the
        pipe never fills."""
        while not self._queue.empty():
            self.started.add(self._queue.get())

    def restart(self):
        self.ran_trials = self.ran_trials or bool(self.started)
        self.shutdown()
        self._start()

    def shutdown(self):
        self.executor.shutdown(wait=True, cancel_futures=True)
        self._queue.close()


class _AnyExecutor:
    """A caller's Executor (Dask, a thread pool): not ours to restart."""

    def __init__(self, executor):
        self.executor = executor

    def submit(self, trial_fn, trial, params):
        return self.executor.submit(_run_trial, trial_fn, trial, params)


def _save(results, results_file):
    if results_file is None:
        return
    record = getattr(results, "_unsaved_record", None)
    if record is not None:   # before this search's first table: none goes without it
        _write_record(results_file, record)
        results._unsaved_record = None
    with atomic_replace(results_file) as tmp:
        results.to_csv(tmp)


def _run_many(trial_fn, configs, results, *, executor, n_workers, deadline,
              results_file, max_pending, progress):
    """Run (trial, params) pairs from ``configs``, appending rows to ``results``."""
    def record(row):
        _record(results, row, results_file, progress)

    executor = _check_executor(executor)
    if executor == "serial":
        for trial, params in configs:
            if time.perf_counter() > deadline:
                break
            record(_run_trial(trial_fn, trial, params))
        return
    if executor is None or executor == "process":
        pool = _TrialPool(n_workers)
        try:
            _run_submitted(pool, trial_fn, configs, record, deadline, max_pending,
                           progress)
        finally:
            pool.shutdown()
    else:
        pending = {}
        try:
            _run_submitted(_AnyExecutor(executor), trial_fn, configs, record, deadline,
                           max_pending, progress, pending)
        except KeyboardInterrupt:   # the caller's executor would run them for nobody
            for fut in list(pending):
                if fut.done() and not fut.cancelled() and fut.exception() is None:
                    record(fut.result())
                else:
                    fut.cancel()
            raise


def _run_submitted(pool, trial_fn, configs, record, deadline, max_pending, progress,
                   pending=None):
    """The submit / wait loop; on our own pool (a _TrialPool) it survives a worker's
    death."""
    recover = isinstance(pool, _TrialPool)
    configs = iter(configs)
    pending = {} if pending is None else pending   # future -> (trial, params)
    again = collections.deque()      # lost with a broken pool before they began
    alone = collections.deque()      # had begun when a worker died beside others
    solo = None                      # the trial of ``alone`` now running by itself
    while True:
        batch = []
        if alone and not pending:
            # nothing runs beside it: if its worker dies, it is the trial that killed it
            batch.append(alone.popleft())
            solo = batch[0][0]
        while solo is None and len(pending) + len(batch) < max_pending and \
                time.perf_counter() <= deadline:
            item = again.popleft() if again else next(configs, None)
            if item is None:
                break
            batch.append(item)
        lost = []
        for i, (trial, params) in enumerate(batch):
            try:
                pending[pool.submit(trial_fn, trial, params)] = (trial, params)
            except BrokenProcessPool:
                if not recover:
                    raise
                lost += batch[i:]   # a worker died since the last wait
                break
        if not pending and not lost:
            break
        done, _ = cf.wait(list(pending), return_when=cf.FIRST_COMPLETED)
        if recover and (lost or any(_broke(fut) for fut in done)):
            done, _ = cf.wait(list(pending))   # a broken pool fails all it held
        for fut in done:
            trial, params = pending.pop(fut)
            if trial == solo:
                solo = None
            if recover and _broke(fut):
                lost.append((trial, params))
                continue
            try:
                row = fut.result()
            except Exception as e:  # noqa: BLE001 - e.g. a Dask worker lost
                row = {"trial": trial, **params, "status": "error",
                       "error": f"{type(e).__name__}: {e}",
                       "traceback": "".join(traceback.format_exception(e)),
                       "time": math.nan}
            record(row)
        if recover:
            pool.read_started()
            if lost:
                _after_worker_died(pool, lost, again, alone, record, progress)
        if time.perf_counter() > deadline:
            for fut in list(pending):
                if fut.cancel():
                    pending.pop(fut)


def _broke(fut):
    return not fut.cancelled() and isinstance(fut.exception(), BrokenProcessPool)


def _after_worker_died(pool, lost, again, alone, record, progress):
    """Sort the trials of a broken pool, then start a new pool.

    A trial that had not begun runs again as it was. If one trial had begun, its worker
    died in it: it is recorded as failed. If several had, each runs again by itself."""
    if not pool.started:   # retrying could loop forever
        if pool.ran_trials:
            raise RuntimeError("new worker processes of the search ended before running "
                               "a trial (their error, if any, is printed above); rerun "
                               "with the same results_file to resume")
        raise RuntimeError("the search's worker processes ended before running any "
                           "trial (their error, if any, is printed above). "
                           + _GUARD_HELP + " trial_fn must also be importable in a new "
                           "process (defined in a module or at the top level of the "
                           "script, not in a notebook); executor=\"serial\" runs trials "
                           "in this process.")
    if progress:
        print(f"a worker process died: trials {sorted(t for t, _ in lost)} were running "
              f"or waiting; going on with new workers", flush=True)
    began = sorted((item for item in lost if item[0] in pool.started),
                   key=lambda item: item[0])
    if len(began) == 1:
        trial, params = began[0]
        record({"trial": trial, **params, "status": "error",
                "error": "WorkerDied: the worker process running this trial ended "
                         "abruptly (killed, e.g. by the system for lack of memory, or "
                         "crashed in native code); the search went on with new workers",
                "time": math.nan})
    else:
        alone.extend(began)
    again.extendleft(reversed([item for item in lost if item[0] not in pool.started]))
    pool.restart()


def _record(results, row, results_file, progress):
    results.rows.append(row)
    _save(results, results_file)
    if progress:
        print(_progress_line(results, row), flush=True)


def _progress_line(results, row, metric="dev_accuracy"):
    """One line for a finished trial: "trial 7  ok     dev_accuracy 0.9612  best 0.9722
    (trial 3)  1.20 s"; a failed trial shows its error instead of its score."""
    where = f"round {row['round']} " if "round" in row else ""
    line = f"{where}trial {row['trial']:>3}  {row['status']:<5}  "
    score = row.get(metric)
    if row["status"] != "ok":
        line += (row.get("error") or "").strip().split("\n")[0][:70]
    elif isinstance(score, (int, float)):
        line += f"{metric} {score:.4f}"
    ok = [r for r in results.rows
          if r.get("status") == "ok" and isinstance(r.get(metric), (int, float))
          and not math.isnan(r[metric])]
    if ok:
        best = Results(ok).best(metric)
        line += f"  best {best[metric]:.4f} (trial {best['trial']})"
    return line + f"  {row.get('time', math.nan):.2f} s"


def _prepare(trial_fn, space, data, fixed):
    space = check_space(space)
    if not space:
        raise ValueError("space must name at least one hyperparameter, got {}")
    if fixed is not None and not isinstance(fixed, dict):
        raise TypeError(f"fixed must be a dict name -> value or None, got {fixed!r}")
    if trial_fn is None:
        if data is None:
            raise ValueError("pass trial_fn, or data=(X_train, y_train, X_dev, y_dev) for "
                             "the default MLP trial")
        if not isinstance(data, (tuple, list)):
            raise TypeError(f"data must be a tuple (X_train, y_train, X_dev, y_dev), "
                            f"got {type(data).__name__}")
        if len(data) != 4:
            raise ValueError(f"data must be (X_train, y_train, X_dev, y_dev), got "
                             f"{len(data)} items")
        # up front: a wrong name would otherwise fail every trial, or (in fixed) be
        # ignored while the default trains
        _check_train_mlp_names(space, "space")
        _check_train_mlp_names(fixed or {}, "fixed")
        trial_fn = functools.partial(train_mlp, data=_encode_classes(data),
                                     **(fixed or {}))
    elif not callable(trial_fn):
        raise TypeError(f"trial_fn must be callable, got {trial_fn!r}")
    return trial_fn, space


def _encode_classes(data):
    """``data`` with its labels as class indices 0 .. k-1, y_train and y_dev encoded
    together (``fastdnn.search.cli.encode_labels``), so that any labels work: strings,
    1 .. 10, {0, 5} (two output units, not six).

    Parameters
    ----------
    data : (X_train, y_train, X_dev, y_dev)
        y_train and y_dev: (n,) class labels, numbers or strings.

    Returns
    -------
    (X_train, y_train, X_dev, y_dev)
        The labels as int64 indices into the sorted classes of both.

    Raises
    ------
    ValueError
        For labels that are not (n,) arrays, fractional numbers, fewer than two
        classes, or a y_dev label that y_train lacks (a class without training examples
        cannot be learned).
    """
    from .cli import encode_labels
    X, y, X_dev, y_dev = data
    y, y_dev = np.asarray(y), np.asarray(y_dev)
    for name, labels in (("y_train", y), ("y_dev", y_dev)):
        if labels.ndim != 1:
            raise ValueError(f"data's {name} must be (n,) class labels, got shape "
                             f"{labels.shape}")
    if y.dtype.kind != y_dev.dtype.kind and "O" not in (y.dtype.kind, y_dev.dtype.kind) \
            and {y.dtype.kind, y_dev.dtype.kind} & set("USO"):
        raise ValueError(f"data's y_train and y_dev must hold labels of one kind, got "
                         f"{y.dtype} and {y_dev.dtype}")
    both, _ = encode_labels(np.concatenate([y, y_dev]), "data's y_train and y_dev")
    indices, dev_indices = both[:len(y)], both[len(y):]
    unseen = np.setdiff1d(dev_indices, indices)
    if unseen.size:
        labels = sorted({str(v) for v in y_dev[np.isin(dev_indices, unseen)]})
        raise ValueError(f"data's y_dev holds labels {labels[:10]} that y_train lacks; "
                         f"a class without training examples cannot be learned (split "
                         f"stratified by class, e.g. fastdnn.train_dev_test_split)")
    return X, indices, X_dev, dev_indices


def _check_run_args(n_trials, time_budget, seed, executor, n_workers, max_pending,
                    retry_errors):
    """The arguments random_search and coarse_to_fine share, checked before any work;
    returns (time_budget, max_pending) as used."""
    if n_trials is not None:
        check_int("n_trials", n_trials, 0)
    if time_budget is not None:
        time_budget = check_real("time_budget (seconds)", time_budget, 0.0)
    check_int("seed", seed, 0)
    _check_executor(executor)
    n_workers = check_int("n_workers", n_workers, 1)
    if max_pending is not None:
        max_pending = check_int("max_pending", max_pending, 1)
    if not isinstance(retry_errors, (bool, np.bool_)):
        raise TypeError(f"retry_errors must be True or False, got {retry_errors!r}")
    return time_budget, max_pending or 2 * n_workers


# ---------------------------------------------------------------------- resume
# A results file's record of the search that wrote it: a JSON file beside the CSV (the
# CSV stays a plain table for pandas.read_csv). Resuming compares it with this search's.
_RECORD_SUFFIX = ".search.json"
_RECORD_FORMAT = 1


def _record_path(results_file):
    return os.fspath(results_file) + _RECORD_SUFFIX


def _search_record(search, space, seed, fixed=None, trial_fn=None, data=None, **settings):
    """What makes a search's trials what they are, as JSON types: two searches with the
    same record draw the same configs and train them the same way.

    The space (each dimension's repr; their order sets the draws), seed, fixed, the
    trial function's qualified name (None: the default, train_mlp), a SHA-256 of the
    data (when the default trial function trains on it) and ``settings`` (e.g. coarse to
    fine's trials_per_round). Not what only changes how or how long it runs: n_trials,
    rounds, time_budget, executor, workers, verbose."""
    return {"search": search, "space": {name: repr(s) for name, s in space.items()},
            "seed": int(seed), "fixed": _plain(dict(fixed or {})),
            "trial_fn": None if trial_fn is None else _qualified_name(trial_fn),
            "data": None if data is None else _data_digest(data), **_plain(settings)}


def _plain(value):
    """``value`` in JSON types, the same in every run (objects with get_config, such as
    fastdnn.Augment, by their config; other objects by repr)."""
    if isinstance(value, np.generic):
        value = value.item()
    if hasattr(value, "get_config"):
        return {type(value).__name__: _plain(value.get_config())}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def _qualified_name(fn):
    while isinstance(fn, functools.partial):
        fn = fn.func
    return getattr(fn, "__qualname__", None) or type(fn).__qualname__


def _data_digest(data):
    """SHA-256 of the arrays' shapes, dtypes and bytes (about 1 s per GB)."""
    digest = hashlib.sha256()
    for a in data:
        parts = [a.data, a.indices, a.indptr] if hasattr(a, "indptr") else [a]  # sparse
        digest.update(repr(getattr(a, "shape", None)).encode())
        for part in parts:
            part = np.ascontiguousarray(part)
            digest.update(f"{part.shape}{part.dtype.str};".encode())
            digest.update(repr(part.tolist()).encode() if part.dtype.hasobject
                          else part.reshape(-1).view(np.uint8))
    return digest.hexdigest()


def _write_record(results_file, record):
    with atomic_replace(_record_path(results_file)) as tmp:
        with open(tmp, "w") as f:
            json.dump({"fastdnn_search_record": _RECORD_FORMAT, **record}, f, indent=1)


def _read_record(results_file):
    """The record beside ``results_file``, or None (written by an older fastdnn)."""
    path = _record_path(results_file)
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            record = json.load(f)
        record.pop("fastdnn_search_record")
    except (ValueError, KeyError, AttributeError) as e:
        raise ValueError(f"{path}, the record of the search that wrote results_file "
                         f"{os.fspath(results_file)}, is not readable ({e}); delete both "
                         f"to start over") from None
    return record


def _differences(old, new):
    """How search record ``new`` differs from ``old``, in words."""
    def same(a, b):
        return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)

    out = []
    for key in dict.fromkeys([*old, *new]):
        a, b = old.get(key), new.get(key)
        if same(a, b):
            continue
        if key in ("space", "fixed") and isinstance(a, dict) and isinstance(b, dict):
            named = []
            for name in dict.fromkeys([*a, *b]):
                if name not in a:
                    named.append(f"no {key} {name}, this one has {name} = {b[name]}")
                elif name not in b:
                    named.append(f"{key} {name} = {a[name]}, this one has no {name}")
                elif not same(a[name], b[name]):
                    named.append(f"{key} {name} = {a[name]}, this one has {b[name]}")
            out += named or [f"the space's names in the order {list(a)}, this one "
                             f"{list(b)} (the order sets the draws)"]
        elif key == "data":
            out.append("other data (its arrays' SHA-256 differs)" if a and b else
                       f"{'no' if a is None else 'its'} data for the default trial "
                       f"function, this one {'has' if b else 'has none'}")
        elif key == "trial_fn":
            out.append(f"trial_fn {a or 'None (train_mlp)'}, this one has "
                       f"{b or 'None (train_mlp)'}")
        else:
            out.append(f"{key} {json.dumps(a)}, this one has {key} {json.dumps(b)}")
    return out


def _resume(results_file, params, retry_errors=False, record=None, verbose=0):
    """The table in ``results_file`` and the trials not to run again: all of its rows, or
    with ``retry_errors`` those that did not fail (failed rows are dropped, to run
    again).

    With ``record`` (``_search_record``), a table written by another search is refused
    and one without a record (an older fastdnn's) resumed with a warning; the first
    save writes ``record`` beside the table. ``results.resumed``: the trials read back."""
    fresh = Results([], params)
    fresh.resumed = []
    if results_file is None:
        return fresh, set()
    fresh._unsaved_record = record
    if not os.path.exists(results_file):
        return fresh, set()
    if record is not None:
        _check_record(results_file, record)
    old = Results.from_csv(results_file, params)
    retried = 0
    if retry_errors:
        kept = [r for r in old.rows if r.get("status") != "error"]
        retried, old.rows = len(old.rows) - len(kept), kept
    done = {int(r["trial"]) for r in old.rows if "trial" in r}
    old.resumed, old._unsaved_record = sorted(done), record
    if verbose and (old.rows or retried):
        again = f"; {retried} failed ones run again" if retried else ""
        print(f"resumed {len(old.rows)} trials from {os.fspath(results_file)}{again}",
              flush=True)
    return old, done


def _check_record(results_file, record):
    old = _read_record(results_file)
    if old is None:
        warnings.warn(f"results_file {os.fspath(results_file)} has no record of the "
                      f"search that wrote it (no {_record_path(results_file)}: an older "
                      f"fastdnn's); resuming its trials without checking that this "
                      f"search would have run them", UserWarning, stacklevel=4)
        return
    differences = _differences(old, record)
    if differences:
        raise ValueError(f"results_file {os.fspath(results_file)} was written by a "
                         f"search with {'; '.join(differences)}; use another "
                         f"results_file, or delete it (and "
                         f"{os.path.basename(_record_path(results_file))}) to start over")


def random_search(trial_fn: TrialFn | None = None,
                  space: Mapping[str, SpaceLike] | None = None, *, data: Data | None = None,
                  fixed: Mapping[str, Any] | None = None, n_trials: int | None = None,
                  time_budget: float | None = None, seed: int = 0,
                  executor: ExecutorSpec = None, n_workers: int = 2,
                  results_file: PathLike | None = None, retry_errors: bool = True,
                  max_pending: int | None = None, verbose: int = 0) -> Results:
    """Random search: sample configs from ``space`` and run them as trials.

    Parameters
    ----------
    trial_fn : callable(params: dict) -> dict of metrics, or None
        None trains ``train_mlp`` on ``data`` (picklable, so it runs in processes).
    space : dict name -> Space
        A list is a Choice, a scalar is held fixed, a dict such as {"log_uniform":
        [1e-4, 1e-1]} is read as in ``space_from_config``.
    data : (X_train, y_train, X_dev, y_dev), for the default trial function
        Any class labels (strings, 1 .. 10, ...): y_train and y_dev are encoded
        together as 0 .. k-1, k the number of classes; a y_dev label that y_train lacks
        is refused (a class without training examples cannot be learned).
    fixed : dict, optional
        Defaults for the default trial function (e.g. {"epochs": 30, "backend": "cpu"});
        with it, names train_mlp does not take (in fixed or space) are refused before
        any trial runs.
    n_trials : int >= 0 or None
        Trials 0 .. n_trials - 1; None runs until ``time_budget``.
    time_budget : float >= 0 or None
        Seconds after which no new trial starts (running ones finish).
    seed : int >= 0
        Trial t's config is drawn with numpy.random.default_rng([seed, t]).
    executor : None or "process", "serial", or an Executor
        None / "process": a pool of ``n_workers`` spawned processes (so a script must
        start the search under ``if __name__ == "__main__":``). A worker that dies
        (e.g. killed for lack of memory) fails only the trial it was running; the
        others go on in a new pool. The workers end when the search's process does.
        Or e.g. ``dask.distributed.Client(...).get_executor()``.
    n_workers : int >= 1
    results_file : path or None
        CSV rewritten after every trial; a rerun resumes: trials already in it are
        skipped, except failed ones (status "error"), which run again, and n_trials
        may grow. Beside it, ``<results_file>.search.json`` records the search (space,
        seed, fixed, trial_fn's name, a hash of data): a rerun with another search
        raises ValueError saying what differs (a file without the record, from an
        older fastdnn, resumes with a warning). On Ctrl-C the finished trials are
        there; the KeyboardInterrupt goes on.
    retry_errors : bool
        False skips the failed trials of ``results_file`` too, keeping their rows.
    max_pending : int >= 1 or None
        Trials submitted at once (default 2 x n_workers).
    verbose : 0 or 1 (one line per trial)

    Returns
    -------
    Results
    """
    if n_trials is None and time_budget is None:
        raise ValueError("pass n_trials, time_budget or both")
    time_budget, max_pending = _check_run_args(n_trials, time_budget, seed, executor,
                                               n_workers, max_pending, retry_errors)
    user_fn = trial_fn
    trial_fn, space = _prepare(trial_fn, space, data, fixed)
    record = _search_record("random_search", space, seed, fixed, user_fn,
                            data if user_fn is None else None)
    results, done = _resume(results_file, list(space), retry_errors, record, verbose)
    deadline = time.perf_counter() + (math.inf if time_budget is None else time_budget)

    def configs():
        t = 0
        while n_trials is None or t < n_trials:
            if t not in done:
                yield t, sample_config(space, seed, t)
            t += 1

    with _saved_on_interrupt(results, results_file):
        _run_many(trial_fn, configs(), results, executor=executor, n_workers=n_workers,
                  deadline=deadline, results_file=results_file, max_pending=max_pending,
                  progress=verbose)
    results.rows.sort(key=lambda r: r["trial"])
    results.spaces = [space]
    return results


def coarse_to_fine(trial_fn: TrialFn | None = None,
                   space: Mapping[str, SpaceLike] | None = None, *,
                   data: Data | None = None, fixed: Mapping[str, Any] | None = None,
                   rounds: int = 3, trials_per_round: int = 10, top_k: int = 3,
                   factor: float = 0.5, metric: str = "dev_accuracy", seed: int = 0,
                   executor: ExecutorSpec = None, n_workers: int = 2,
                   results_file: PathLike | None = None, retry_errors: bool = True,
                   time_budget: float | None = None, max_pending: int | None = None,
                   verbose: int = 0) -> Results:
    """Coarse to fine: random search rounds, each over a space narrowed around the best.

    Each round's space is narrowed around the ``top_k`` best trials so far (by
    ``metric``), each dimension on its own scale. Round r runs trials
    r * trials_per_round ... (r + 1) * trials_per_round - 1. The returned Results holds
    every round's rows (column "round") and ``results.spaces``, the space of each round.
    A rerun with the same ``results_file`` resumes, running failed trials again unless
    ``retry_errors=False``; ``rounds`` may grow, but another space, seed, fixed,
    trials_per_round, top_k, factor or metric is refused (as in ``random_search``).

    Parameters
    ----------
    rounds : int >= 1
        Rounds at most (fewer when no trial of the earlier rounds succeeded, or when
        ``time_budget`` runs out).
    trials_per_round : int >= 1
    top_k : int >= 1
        The best trials each narrowing centres on.
    factor : float in (0, 1]
        Each narrowing's width as a fraction of the last (see ``Space.narrow``).
    metric : str
        The column that ranks the trials.
    trial_fn, space, data, fixed, seed, executor, n_workers, results_file
        As in ``random_search``.
    retry_errors, time_budget, max_pending, verbose
        As in ``random_search``.

    Returns
    -------
    Results
    """
    rounds = check_int("rounds", rounds, 1)
    trials_per_round = check_int("trials_per_round", trials_per_round, 1)
    top_k = check_int("top_k", top_k, 1)
    factor = check_real("factor", factor, 0.0, 1.0, low_open=True)
    if not isinstance(metric, str):
        raise TypeError(f"metric must be a column name (str), got {metric!r}")
    time_budget, max_pending = _check_run_args(None, time_budget, seed, executor,
                                               n_workers, max_pending, retry_errors)
    # rounds may grow on a rerun; the rest sets which trial draws from which space
    user_fn = trial_fn
    trial_fn, space = _prepare(trial_fn, space, data, fixed)
    record = _search_record("coarse_to_fine", space, seed, fixed, user_fn,
                            data if user_fn is None else None,
                            trials_per_round=trials_per_round, top_k=top_k,
                            factor=factor, metric=metric)
    results, done = _resume(results_file, list(space), retry_errors, record, verbose)
    deadline = time.perf_counter() + (math.inf if time_budget is None else time_budget)
    with _saved_on_interrupt(results, results_file):
        spaces = _run_rounds(trial_fn, space, results, done, rounds, trials_per_round,
                             top_k, factor, metric, seed, deadline,
                             dict(executor=executor, n_workers=n_workers,
                                  results_file=results_file, max_pending=max_pending,
                                  progress=verbose))
    results.rows.sort(key=lambda r: r["trial"])
    results.spaces = spaces
    return results


def _run_rounds(trial_fn, space, results, done, rounds, trials_per_round, top_k, factor,
                metric, seed, deadline, run_kw):
    """coarse_to_fine's rounds; returns the space of each round run."""
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
        _run_many(_strip_round(trial_fn), configs, results, deadline=deadline, **run_kw)
        if time.perf_counter() > deadline:
            break
    return spaces


@contextlib.contextmanager
def _saved_on_interrupt(results, results_file):
    """On Ctrl-C: the finished trials are in ``results_file`` (saved as each finished);
    the KeyboardInterrupt goes on, with a note saying so."""
    try:
        yield
    except KeyboardInterrupt as e:
        if results_file is not None and hasattr(e, "add_note"):   # Python 3.11+
            e.add_note(f"fastdnn.search: {len(results.rows)} finished trials are saved in "
                       f"{os.fspath(results_file)}; rerun with it to resume")
        raise


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
    """Object form of ``random_search`` / ``coarse_to_fine``.

    ``RandomSearch(space, data=...).run(n_trials=20)``; ``.results`` holds the table
    afterwards.

    Parameters
    ----------
    space, trial_fn, data, fixed, seed, executor, n_workers, results_file, verbose
        As in ``random_search``.
    """

    def __init__(self, space: Mapping[str, SpaceLike], trial_fn: TrialFn | None = None, *,
                 data: Data | None = None, fixed: Mapping[str, Any] | None = None,
                 seed: int = 0, executor: ExecutorSpec = None, n_workers: int = 2,
                 results_file: PathLike | None = None, verbose: int = 0) -> None:
        self.space, self.trial_fn, self.data, self.fixed = space, trial_fn, data, fixed
        self.kw = dict(seed=seed, executor=executor, n_workers=n_workers,
                       results_file=results_file, verbose=verbose)
        self.results = None

    def run(self, n_trials: int | None = None, time_budget: float | None = None, *,
            retry_errors: bool = True) -> Results:
        """Run ``random_search`` with this object's arguments.

        Parameters
        ----------
        n_trials, time_budget
            As in ``random_search``.
        retry_errors : bool
            False keeps a resumed table's failed trials instead of running them again.

        Returns
        -------
        Results
            Also kept as ``self.results``.
        """
        self.results = random_search(self.trial_fn, self.space, data=self.data,
                                     fixed=self.fixed, n_trials=n_trials,
                                     time_budget=time_budget, retry_errors=retry_errors,
                                     **self.kw)
        return self.results

    def run_coarse_to_fine(self, rounds: int = 3, trials_per_round: int = 10,
                           top_k: int = 3, factor: float = 0.5,
                           metric: str = "dev_accuracy", *,
                           retry_errors: bool = True) -> Results:
        """Run ``coarse_to_fine`` with this object's arguments.

        Parameters
        ----------
        rounds, trials_per_round, top_k, factor, metric, retry_errors
            As in ``coarse_to_fine``.

        Returns
        -------
        Results
            Also kept as ``self.results``.
        """
        self.results = coarse_to_fine(self.trial_fn, self.space, data=self.data,
                                      fixed=self.fixed, rounds=rounds,
                                      trials_per_round=trials_per_round, top_k=top_k,
                                      factor=factor, metric=metric,
                                      retry_errors=retry_errors, **self.kw)
        return self.results
