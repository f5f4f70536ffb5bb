"""The engine's threads: a pool that runs one compiled function on several threads at once.

A run hands out numbered work items ("tickets") from one shared counter. Every thread,
the caller's included, runs the same compiled function: it claims the next ticket, waits
until the items its ticket depends on are done, does the item and counts it done. Work is
never assigned to a thread in advance, so a thread that starts late or is descheduled by
the OS holds up only the one item it is doing: the others, the caller's thread included,
take the rest. Items are numbered so that all those of one phase of a training step
come before the next phase's, and an item of phase p waits only until every ticket
before phase p is done (``wait_for``); no thread ever waits for another thread to arrive.

A waiting thread spins for a short while (``SPIN`` pause instructions, about the time a
small item takes), then naps (``NAP_US``): a nap leaves its core idle, so that on a busy
machine the kernel moves a descheduled thread of ours there and the item it holds gets
done (measured in kernels/engine_threads.py).

The ``ctl`` array of a run: [0] = generation << 32 | closed << 31 | next ticket,
[1] = items done, [2] = ticket limit (the run stops before it; lowered to stop early).
A late thread still holding a finished run's arguments sees another generation in
``ctl[0]`` and returns at once.

One run at a time per pool; a caller that finds the pool busy (another thread training
or predicting) runs its work alone on its own thread. Threads are started on first use
and again after ``fork()`` in the child (they do not survive a fork).
"""
import os
import threading

import numpy as np
from numba import njit

from .. import config
from .._cache import harden_caches
from ._sync import compare_exchange, fetch_add, load, nap, pause, store

SPIN = 4000        # pause instructions before napping: ~20-40 us
NAP_US = 20        # microseconds per nap (the kernel rounds up to its timer slack)
_CLOSED = 1 << 31
_TICKETS = _CLOSED - 1


@njit(**config.INTERNAL)
def claim(ctl, gen):
    """The next ticket of run ``gen``, or -1 when none is left."""
    while True:
        word = load(ctl, 0)
        if (word >> 32) != gen or word & _CLOSED:
            return -1
        ticket = word & _TICKETS
        if ticket >= load(ctl, 2):
            return -1
        if compare_exchange(ctl, 0, word, word + 1):
            return ticket


@njit(**config.INTERNAL)
def wait_for(ctl, done):
    """Wait until at least ``done`` items are done."""
    spins = 0
    while load(ctl, 1) < done:
        if spins < SPIN:
            pause()
            spins += 1
        else:
            nap(NAP_US)


@njit(**config.INTERNAL)
def wait_turn(ctl, done, ticket):
    """Wait until at least ``done`` items are done; False (at once) when the run was
    stopped before ``ticket`` (the item must then be skipped, and counted done)."""
    spins = 0
    while load(ctl, 1) < done:
        if ticket >= load(ctl, 2):
            return False
        if spins < SPIN:
            pause()
            spins += 1
        else:
            nap(NAP_US)
    return ticket < load(ctl, 2)


@njit(**config.INTERNAL)
def finish(ctl):
    """Count one item done."""
    fetch_add(ctl, 1, 1)


@njit(**config.INTERNAL)
def stop_before(ctl, ticket):
    """Hand out no ticket from ``ticket`` on (for a run that must end early)."""
    while True:
        limit = load(ctl, 2)
        if limit <= ticket or compare_exchange(ctl, 2, limit, ticket):
            return


@njit(**config.INTERNAL)
def close(ctl, gen):
    """End run ``gen`` (the caller's thread, when it has no ticket left): no more
    tickets are handed out; returns once every ticket handed out is done or skipped."""
    while True:
        word = load(ctl, 0)
        if compare_exchange(ctl, 0, word, word | _CLOSED):
            break
    wait_for(ctl, word & _TICKETS)


@njit(cache=config.CACHE, nogil=True)
def open_run(ctl, gen, tickets):
    store(ctl, 1, 0)
    store(ctl, 2, tickets)
    store(ctl, 0, gen << 32)


class Pool:
    """Worker threads that join the caller's runs of compiled SPMD functions.

    ``run(fn, args, threads)`` calls ``fn(ctl, gen, *args, tid)`` on the caller's thread
    (tid 0) and on up to ``threads - 1`` workers (tid 1, 2, ...); ``fn`` must be compiled
    with ``nogil=True``, hand its work out with ``claim`` / ``wait_for`` / ``finish`` and,
    on tid 0, end with ``close``.
    """

    def __init__(self):
        self._reset()

    def _reset(self):
        self._lock = threading.Lock()       # held by the run in progress
        self._cond = threading.Condition()
        self._job = None                    # (fn, args, threads) of the latest run
        self._generation = 0
        self._workers = []
        self._ctl = np.zeros(3, np.int64)

    def _grow(self, threads):
        while len(self._workers) < threads - 1:
            tid = len(self._workers) + 1
            worker = threading.Thread(target=self._work, args=(tid,),
                                      name=f"fastdnn-worker-{tid}", daemon=True)
            self._workers.append(worker)
            worker.start()

    def _work(self, tid):
        seen = 0
        while True:
            with self._cond:
                while self._generation == seen:
                    self._cond.wait()
                seen = self._generation
                job = self._job
            if job is not None and tid < job[2]:
                fn, args, _ = job
                fn(*args, tid)

    def run(self, fn, args, tickets, threads):
        """Run ``fn`` over ``tickets`` work items on up to ``threads`` threads."""
        if threads <= 1 or not self._lock.acquire(blocking=False):
            # alone (or the pool is busy): a ctl of this thread's own, no other reader
            ctl = getattr(_solo, "ctl", None)
            if ctl is None:
                ctl = _solo.ctl = np.zeros(3, np.int64)
            ctl[0], ctl[1], ctl[2] = 1 << 32, 0, tickets
            fn(ctl, 1, *args, 0)
            return
        try:
            self._generation += 1
            gen, ctl = self._generation, self._ctl
            open_run(ctl, gen, tickets)
            self._grow(threads)
            with self._cond:
                self._job = (fn, (ctl, gen) + tuple(args), threads)
                self._cond.notify_all()
            fn(ctl, gen, *args, 0)
        finally:
            self._job = None
            self._lock.release()


_POOL = Pool()
_solo = threading.local()   # each thread's ctl for the runs it does alone


def default_pool():
    return _POOL


def _after_fork_in_child():
    # the parent's workers do not exist in the child, and its locks may be held
    _POOL._reset()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


harden_caches(__name__)
