"""The cpu engine's choice between its threads and one thread (ThreadChoice): what it
does with the run times a quiet, a busy and a changing machine give, and that a fit's
bits do not depend on it."""
import numpy as np
import pytest

import fastdnn
from fastdnn import config
from fastdnn.engine.cpu import ThreadChoice

M, ALLOWED = 128, 2


def drive(seconds_of, runs):
    """Run ``runs`` runs through a ThreadChoice, run r on n threads taking
    seconds_of(r, n) per step; returns the thread counts used."""
    choice, used = ThreadChoice(), []
    for r in range(runs):
        n = choice.threads(M, ALLOWED)
        choice.record(M, ALLOWED, n, seconds_of(r, n))
        used.append(n)
    return used


def test_a_quiet_machine_costs_two_runs_on_one_thread():
    used = drive(lambda r, n: 1.0 if n > 1 else 1.6, 200)
    assert used.count(1) == ThreadChoice.TRIALS
    assert used[:ThreadChoice.SETTLE_RUNS] == [ALLOWED] * ThreadChoice.SETTLE_RUNS


def test_a_machine_busy_from_the_start_trains_on_one_thread():
    used = drive(lambda r, n: 2.5 if n > 1 else 1.8, 200)
    assert used[10:].count(1) > 0.85 * len(used[10:])   # the threads retried now and then
    assert ALLOWED in used[10:]


def test_the_threads_leave_when_the_machine_gets_busy_and_come_back():
    def seconds(r, n):
        busy = 50 <= r < 150
        return (2.5 if busy else 1.0) if n > 1 else (1.8 if busy else 1.6)
    used = drive(seconds, 250)
    assert used[60:150].count(1) > 0.85 * 90
    assert used[170:].count(ALLOWED) == 80


def test_one_thread_slower_under_load_too_is_left_alone():
    """When the threads are slow but one thread is slower still, the runs stay on the
    threads and try one thread only every RECHECK_RUNS runs."""
    used = drive(lambda r, n: 2.5 if n > 1 else 3.0, 200)
    assert used.count(1) <= 200 // ThreadChoice.RECHECK_RUNS + 1


def test_switched_off_or_one_thread_allowed_keeps_the_count(monkeypatch):
    choice = ThreadChoice()
    for _ in range(20):
        choice.record(M, 1, 1, 2.0)
        assert choice.threads(M, 1) == 1
    monkeypatch.setattr(config, "ADAPT_THREADS", False)
    assert drive(lambda r, n: 2.5 if n > 1 else 1.0, 50) == [ALLOWED] * 50


def test_a_fit_has_the_same_bits_whatever_its_runs_take(monkeypatch):
    """Runs switching between two threads and one mid-epoch give the bits of a fit that
    stays on two threads (the engine's results do not depend on the thread count)."""
    pytest.importorskip("fastdnn.cpu")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3000, 40)).astype(np.float32)
    y = rng.integers(0, 5, 3000)

    def fit():
        with fastdnn.threads(2):
            m = fastdnn.MLP([40, 256, 128, 5], batchnorm=True, keep_prob=0.9,
                            backend="cpu", seed=3)
            m.fit(X, y, epochs=3, batch_size=32, verbose=0)
        return m.get_weights()

    monkeypatch.setattr(config, "ADAPT_THREADS", False)
    steady = fit()
    monkeypatch.setattr(config, "ADAPT_THREADS", True)
    runs = []

    def alternating(self, m, allowed):
        runs.append(allowed)
        return allowed if len(runs) % 2 else 1

    monkeypatch.setattr(ThreadChoice, "threads", alternating)
    switching = fit()
    assert len(runs) > 4 and max(runs) == 2
    for name, value in steady.items():
        np.testing.assert_array_equal(switching[name], value, err_msg=name)
