"""Random search and coarse to fine: results table, executors, failures, resume."""
import concurrent.futures as cf
import functools
import math
import os

import numpy as np
import pytest

from fastdnn.search import (IntUniform, LogUniform, OneMinusLogUniform, RandomSearch,
                            Results, coarse_to_fine, random_search, train_mlp)


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    return X[:240], y[:240], X[240:360], y[240:360]


FIXED = {"epochs": 2, "hidden_units": 16, "backend": "numpy", "batch_size": 32}
SPACE = {"learning_rate": LogUniform(1e-4, 1e-1), "l2": LogUniform(1e-6, 1e-1),
         "beta1": OneMinusLogUniform(0.8, 0.99)}


def quadratic(params):
    """A cheap trial: best at x = 0.3 (log10 x = -0.52)."""
    x = params["x"]
    if params.get("fail"):
        raise RuntimeError(f"bad trial x={x}")
    return {"dev_accuracy": 1 - (math.log10(x) - math.log10(0.3)) ** 2, "epochs": 1}


def test_default_trial_trains_an_mlp(digits):
    out = train_mlp({"learning_rate": 1e-2}, digits, **FIXED)
    assert out["epochs"] == 2 and 0 <= out["dev_accuracy"] <= 1
    assert len(out["history"]["val_accuracy"]) == 2
    assert out["dev_accuracy"] == out["history"]["val_accuracy"][-1]
    with pytest.raises(ValueError, match="unknown hyperparameters"):
        train_mlp({"learnig_rate": 1e-2}, digits)


def test_random_search_serial_table(digits, tmp_path):
    res = random_search(space=SPACE, data=digits, fixed=FIXED, n_trials=4, seed=3,
                        executor="serial")
    assert len(res) == 4 and [r["trial"] for r in res] == [0, 1, 2, 3]
    for r in res:
        assert r["status"] == "ok" and 1e-4 <= r["learning_rate"] <= 1e-1
        assert {"train_accuracy", "dev_accuracy", "dev_loss", "time", "epochs"} <= set(r)
    best = res.best()
    assert best["dev_accuracy"] == max(res.column("dev_accuracy"))
    assert res.sort("dev_loss")[0]["dev_loss"] == min(res.column("dev_loss"))
    path = tmp_path / "r.csv"
    res.to_csv(path)
    back = Results.from_csv(path)
    assert back.column("learning_rate") == res.column("learning_rate")
    assert back[0]["history"] == res[0]["history"]
    assert "dev_accuracy" in res.table()
    try:
        import pandas  # noqa: F401
    except ImportError:
        return
    assert list(res.to_pandas()["trial"]) == [0, 1, 2, 3]


def test_results_file_is_written_through_a_fresh_temporary_file(tmp_path):
    """A symlink planted where the old fixed temporary name was (<file>.tmp) is not
    written through; the table is replaced whole."""
    from fastdnn.search.results import Results
    from fastdnn.search.runner import _save
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    results_file = tmp_path / "results.csv"
    os.symlink(victim, f"{results_file}.tmp")
    results = Results([{"trial": 0, "status": "ok", "dev_accuracy": 0.5}])
    _save(results, str(results_file))
    assert victim.read_text() == "keep me"
    assert Results.from_csv(results_file).rows[0]["dev_accuracy"] == 0.5
    assert sorted(os.listdir(tmp_path)) == ["results.csv", "results.csv.tmp", "victim.txt"]


def test_failed_trial_is_recorded_and_search_goes_on():
    def fn(p):
        return quadratic({**p, "fail": p["x"] > 0.5})
    res = random_search(fn, {"x": LogUniform(1e-2, 1)}, n_trials=12, executor="serial")
    assert len(res) == 12
    failed = res.failed
    assert len(failed) > 0 and len(res.ok) > 0
    assert all("RuntimeError: bad trial" in r["error"] for r in failed)
    assert "Traceback" in failed[0]["traceback"]
    assert res.best()["status"] == "ok"


def test_resume_skips_done_trials(tmp_path):
    path = str(tmp_path / "search.csv")
    calls = []

    def fn(p):
        calls.append(p["x"])
        return quadratic(p)
    first = random_search(fn, {"x": LogUniform(1e-2, 1)}, n_trials=3, seed=5,
                          executor="serial", results_file=path)
    assert os.path.exists(path) and len(calls) == 3
    full = random_search(fn, {"x": LogUniform(1e-2, 1)}, n_trials=6, seed=5,
                         executor="serial", results_file=path)
    assert len(calls) == 6 and len(full) == 6
    fresh = random_search(quadratic, {"x": LogUniform(1e-2, 1)}, n_trials=6, seed=5,
                          executor="serial")
    assert full.column("x") == fresh.column("x")   # same seed -> same configs
    assert full.column("x")[:3] == first.column("x")


def test_time_budget_stops_new_trials():
    res = random_search(quadratic, {"x": LogUniform(1e-2, 1)}, time_budget=0.0,
                        executor="serial")
    assert len(res) == 0
    with pytest.raises(ValueError, match="n_trials"):
        random_search(quadratic, {"x": LogUniform(1e-2, 1)})


def test_any_executor_and_default_process_pool(digits):
    with cf.ThreadPoolExecutor(2) as ex:
        a = random_search(quadratic, {"x": LogUniform(1e-2, 1)}, n_trials=5, seed=1,
                          executor=ex)
    b = random_search(quadratic, {"x": LogUniform(1e-2, 1)}, n_trials=5, seed=1,
                      executor="serial")
    assert a.column("dev_accuracy") == b.column("dev_accuracy")
    # the default: a local process pool running the (picklable) default MLP trial
    c = random_search(space=SPACE, data=digits, fixed=FIXED, n_trials=2, seed=3)
    d = random_search(space=SPACE, data=digits, fixed=FIXED, n_trials=2, seed=3,
                      executor="serial")
    assert c.column("dev_accuracy") == d.column("dev_accuracy")


def test_coarse_to_fine_narrows_around_the_best():
    res = coarse_to_fine(quadratic, {"x": LogUniform(1e-4, 1e2)}, rounds=3,
                         trials_per_round=8, top_k=2, factor=0.4, seed=0,
                         executor="serial")
    assert len(res) == 24 and res.column("round") == [0] * 8 + [1] * 8 + [2] * 8
    widths = [math.log10(s["x"].high / s["x"].low) for s in res.spaces]
    assert widths[0] == pytest.approx(6) and widths[1] < widths[0] and widths[2] < widths[1]
    assert res.spaces[2]["x"].low <= res.best()["x"] <= res.spaces[2]["x"].high
    first = max(r["dev_accuracy"] for r in res if r["round"] == 0)
    assert res.best()["dev_accuracy"] >= first
    assert abs(math.log10(res.best()["x"]) - math.log10(0.3)) < 0.3


def test_coarse_to_fine_resume(tmp_path):
    path = str(tmp_path / "c2f.csv")
    kw = dict(rounds=2, trials_per_round=4, top_k=2, seed=2, executor="serial")
    a = coarse_to_fine(quadratic, {"x": LogUniform(1e-3, 10)}, results_file=path, **kw)
    calls = []

    @functools.wraps(quadratic)   # the same trial function (its name is recorded)
    def fn(p):
        calls.append(p)
        return quadratic(p)
    b = coarse_to_fine(fn, {"x": LogUniform(1e-3, 10)}, results_file=path, **kw)
    assert calls == [] and b.column("x") == a.column("x")
    assert b.spaces[1] == a.spaces[1]


def test_search_object(digits):
    s = RandomSearch({"x": IntUniform(1, 9)}, quadratic, executor="serial", seed=4)
    res = s.run(n_trials=3)
    assert s.results is res and len(res) == 3


def test_process_pool_after_numba_threads_ran(digits, monkeypatch):
    """Workers are spawned: a forked child of a process whose Numba (GNU OpenMP) threads
    have run aborts as soon as it runs a parallel kernel itself."""
    import fastdnn.cpu as C
    from fastdnn.cpu import _common
    monkeypatch.setattr(_common, "SPIN_GUARD", False)   # really start Numba's threads
    p = np.zeros(100_000, np.float32)
    C.adam_update(p, p + 1, np.zeros_like(p), np.zeros_like(p), 1, 1e-3)
    res = random_search(space=SPACE, data=digits, fixed={**FIXED, "backend": "cpu"},
                        n_trials=2, seed=3, n_workers=2)
    assert len(res.ok) == 2, res.failed.rows[:1]
