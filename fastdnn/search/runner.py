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
import ctypes
import functools
import math
import multiprocessing
import os
import signal
import sys
import threading
import time
import traceback
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

    p = {"learning_rate": 1e-3, "l2": 0.0, "beta1": 0.9, "beta2": 0.999, "keep_prob": 1.0,
         "hidden_units": 128, "layers": 1, "batch_size": 64, "decay": 0.0, "epochs": 30,
         "activation": "relu", "batchnorm": False, "dtype": "float32", "backend": "auto",
         "seed": 0, "augment": None}
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
        _run_submitted(_AnyExecutor(executor), trial_fn, configs, record, deadline,
                       max_pending, progress)


def _run_submitted(pool, trial_fn, configs, record, deadline, max_pending, progress):
    """The submit / wait loop; on our own pool (a _TrialPool) it survives a worker's
    death."""
    recover = isinstance(pool, _TrialPool)
    configs = iter(configs)
    pending = {}                     # future -> (trial, params)
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
        trial_fn = functools.partial(train_mlp, data=tuple(data), **(fixed or {}))
    elif not callable(trial_fn):
        raise TypeError(f"trial_fn must be callable, got {trial_fn!r}")
    return trial_fn, space


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


def _resume(results_file, params, retry_errors=False):
    """The table in ``results_file`` and the trials not to run again: all of its rows, or
    with ``retry_errors`` those that did not fail (failed rows are dropped, to run
    again)."""
    if results_file is None or not os.path.exists(results_file):
        return Results([], params), set()
    old = Results.from_csv(results_file, params)
    if retry_errors:
        old.rows = [r for r in old.rows if r.get("status") != "error"]
    return old, {int(r["trial"]) for r in old.rows if "trial" in r}


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
    fixed : dict, optional
        Defaults for the default trial function (e.g. {"epochs": 30, "backend": "cpu"}).
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
        skipped, except failed ones (status "error"), which run again.
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
    trial_fn, space = _prepare(trial_fn, space, data, fixed)
    results, done = _resume(results_file, list(space), retry_errors)
    deadline = time.perf_counter() + (math.inf if time_budget is None else time_budget)

    def configs():
        t = 0
        while n_trials is None or t < n_trials:
            if t not in done:
                yield t, sample_config(space, seed, t)
            t += 1

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
    ``retry_errors=False``.

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
    trial_fn, space = _prepare(trial_fn, space, data, fixed)
    results, done = _resume(results_file, list(space), retry_errors)
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
                  max_pending=max_pending, progress=verbose)
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
