"""The search survives faults and refuses bad input: a worker process killed mid-trial,
a killed search (its workers must exit), a rerun retrying failed trials, values that
must read back with their types, a script without the __main__ guard, bad arguments."""
import functools
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from fastdnn.search import (Choice, IntUniform, LogUniform, RandomSearch, Results,
                            Uniform, coarse_to_fine, random_search, sample_config,
                            space_from_config)

posix_only = pytest.mark.skipif(os.name != "posix", reason="SIGKILL")


def sleepy_trial(params):
    """Sleeps, so that both workers are busy when one dies; x above kill_above kills
    the worker it runs in, as the kernel's out-of-memory killer would."""
    time.sleep(0.3)
    if params["x"] > params["kill_above"]:
        os.kill(os.getpid(), signal.SIGKILL)
    return {"dev_accuracy": params["x"]}


def quick_trial(params):
    return {"dev_accuracy": params["x"]}


@posix_only
def test_a_killed_worker_fails_only_its_trial(tmp_path):
    space = {"x": Uniform(0, 1), "kill_above": 0.885}
    n_trials, seed = 8, 0
    killers = {t for t in range(n_trials) if sample_config(space, seed, t)["x"] > 0.885}
    assert 0 < len(killers) < n_trials   # the seed gives both kinds
    path = tmp_path / "search.csv"
    res = random_search(sleepy_trial, space, n_trials=n_trials, seed=seed, n_workers=2,
                        results_file=str(path))
    assert [r["trial"] for r in res] == list(range(n_trials))
    failed = {r["trial"] for r in res if r["status"] == "error"}
    assert failed == killers
    assert all("worker process" in r["error"] and "memory" in r["error"]
               for r in res if r["status"] == "error")
    assert all(r["dev_accuracy"] == r["x"] for r in res if r["status"] == "ok")
    saved = Results.from_csv(path)
    assert sorted(r["trial"] for r in saved) == list(range(n_trials))
    assert {r["trial"] for r in saved if r["status"] == "error"} == killers


def failing_below(params):
    if params["x"] < 0.5:
        raise RuntimeError("a failure")
    return quick_trial(params)


def test_a_rerun_retries_failed_trials_unless_told_not_to(tmp_path):
    path = str(tmp_path / "search.csv")
    space = {"x": Uniform(0, 1)}
    first = random_search(failing_below, space, n_trials=8, executor="serial",
                          results_file=path)
    failed = [r["trial"] for r in first.failed]
    assert 0 < len(failed) < 8
    calls = []

    @functools.wraps(failing_below)   # failing_below fixed: the same trial function
    def counting(params):
        calls.append(params["x"])
        return quick_trial(params)

    kept = random_search(counting, space, n_trials=8, executor="serial",
                         results_file=path, retry_errors=False)
    assert calls == [] and [r["trial"] for r in kept.failed] == failed
    kept = RandomSearch(space, counting, executor="serial", results_file=path).run(
        n_trials=8, retry_errors=False)
    assert calls == [] and len(kept.failed) == len(failed)
    again = random_search(counting, space, n_trials=8, executor="serial",
                          results_file=path)
    assert len(calls) == len(failed)
    assert len(again) == 8 and len(again.ok) == 8   # the failed rows were replaced
    assert len(Results.from_csv(path).ok) == 8
    # coarse to fine too
    path = str(tmp_path / "c2f.csv")
    kw = dict(rounds=2, trials_per_round=4, top_k=1, executor="serial",
              results_file=path)
    first = coarse_to_fine(failing_below, space, **kw)
    n_failed = len(first.failed)
    assert n_failed > 0
    calls.clear()
    coarse_to_fine(counting, space, retry_errors=False, **kw)
    assert calls == []
    again = coarse_to_fine(counting, space, **kw)
    assert len(calls) >= n_failed and len(again.failed) == 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_exit_when_the_search_is_killed(tmp_path):
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    script = tmp_path / "search.py"
    script.write_text(textwrap.dedent(f"""
        import os, time
        from fastdnn.search import Uniform, random_search

        def trial(params):
            open(os.path.join({str(pid_dir)!r}, str(os.getpid())), "w").close()
            time.sleep(60)
            return {{"dev_accuracy": 0.0}}

        if __name__ == "__main__":
            random_search(trial, {{"x": Uniform(0, 1)}}, n_trials=4, n_workers=2)
        """))
    search = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path,
                              stderr=subprocess.DEVNULL)
    workers = []
    try:
        deadline = time.monotonic() + 60
        while len(workers) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
            workers = [int(name) for name in os.listdir(pid_dir)]
        assert len(workers) == 2, "the workers never started their trials"
        search.kill()
        search.wait()
        deadline = time.monotonic() + 5
        while any(map(_alive, workers)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [pid for pid in workers if _alive(pid)], "workers outlived the search"
    finally:
        search.kill()
        search.wait()
        for pid in filter(_alive, workers):   # only this test's own workers
            os.kill(pid, signal.SIGKILL)


def _alive(pid):
    """Running (a zombie whose parent died counts as gone: nothing reaps it here)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def test_resumed_parameters_keep_their_types(tmp_path):
    path = str(tmp_path / "search.csv")
    space = {"x": Uniform(0, 1),
             "text": Choice(["001", "1e3", "True", "", "nan", "[1]", "relu"]),
             "whole": Choice([1, 1000]), "real": Choice([1.0, 1e3]),
             "flag": Choice([True, False]), "units": IntUniform(1, 9)}
    first = random_search(quick_trial, space, n_trials=40, seed=1, executor="serial",
                          results_file=path)
    resumed = random_search(quick_trial, space, n_trials=40, seed=1, executor="serial",
                            results_file=path)
    for a, b in zip(first, resumed):
        for name in space:
            assert type(b[name]) is type(a[name]) and b[name] == a[name], (name, a, b)
    assert {type(v) for v in resumed.column("text")} == {str}
    assert set(resumed.column("text")) >= {"001", "1e3", "True"}
    # a resumed coarse to fine narrows the choices over the values read back
    path = str(tmp_path / "c2f.csv")
    kw = dict(rounds=2, trials_per_round=6, top_k=2, executor="serial",
              results_file=path)
    space = {"x": Uniform(0, 1), "text": Choice(["001", "1e3", "True"])}
    first = coarse_to_fine(quick_trial, space, **kw)
    resumed = coarse_to_fine(quick_trial, space, **kw)
    assert resumed.spaces[1]["text"] == first.spaces[1]["text"]
    assert resumed.column("text") == first.column("text")


def test_a_script_without_the_main_guard_gets_one_clear_error(tmp_path):
    body = textwrap.dedent("""
        from fastdnn.search import Uniform, random_search

        def trial(params):
            return {"dev_accuracy": params["x"]}

        """)
    call = ('random_search(trial, {"x": Uniform(0, 1)}, n_trials=4, n_workers=2, '
            'results_file="search.csv")\n')
    (tmp_path / "unguarded.py").write_text(body + call)
    (tmp_path / "guarded.py").write_text(body + 'if __name__ == "__main__":\n    '
                                         + call)
    run = subprocess.run([sys.executable, "unguarded.py"], cwd=tmp_path, timeout=120,
                         capture_output=True, text=True)
    assert run.returncode != 0
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("RuntimeError") and 'if __name__ == "__main__":' in last, \
        run.stderr[-2000:]
    assert not (tmp_path / "search.csv").exists()   # no table of failed trials
    run = subprocess.run([sys.executable, "guarded.py"], cwd=tmp_path, timeout=120,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert len(Results.from_csv(tmp_path / "search.csv").ok) == 4


SPACE = {"x": Uniform(0, 1)}
BAD_SEARCH_ARGUMENTS = [
    (dict(n_trials=-1), ValueError, "n_trials"),
    (dict(n_trials=1.5), TypeError, "n_trials"),
    (dict(n_trials=2, time_budget=-1), ValueError, "time_budget"),
    (dict(n_trials=2, time_budget="1h"), TypeError, "time_budget"),
    (dict(n_trials=2, n_workers=0), ValueError, "n_workers"),
    (dict(n_trials=2, seed=-1), ValueError, "seed"),
    (dict(n_trials=2, max_pending=0), ValueError, "max_pending"),
    (dict(n_trials=2, retry_errors="no"), TypeError, "retry_errors"),
    (dict(n_trials=2, executor="threads"), TypeError, "executor"),
    (dict(n_trials=2, space={}), ValueError, "space"),
    (dict(n_trials=2, space=[("x", Uniform(0, 1))]), TypeError, "space"),
    (dict(n_trials=2, space={"x": []}), ValueError, "'x'.*empty"),
    (dict(n_trials=2, space={"trial": [1, 2]}), ValueError, "'trial'.*taken"),
    (dict(n_trials=2, space={"x": {"log_uniform": [1e-4]}}), ValueError,
     r"'x'.*log_uniform takes \[low, high\]"),
    (dict(n_trials=2, space={"x": {"log_uniform": 1e-4}}), TypeError,
     r"'x'.*log_uniform takes \[low, high\]"),
    (dict(n_trials=2, space={"x": {"log_uniform": ["1e-4", 0.1]}}), TypeError,
     "'x'.*low must be a real number"),
    (dict(n_trials=2, space={"x": {"log_uniform": [1e-4, 0.1], "base": 2}}),
     ValueError, "'x'.*unknown key 'base'"),
    (dict(n_trials=2, space={"x": {"log": True}}), ValueError, "'x'.*one kind"),
    (dict(n_trials=2, space={"x": {"int": [1, 8], "log": "yes"}}), TypeError,
     "'x'.*log must be True or False"),
    (dict(n_trials=2, space={"x": {"choice": "relu"}}), TypeError,
     "'x'.*options must be a list"),
]


@pytest.mark.parametrize("kwargs, error, match", BAD_SEARCH_ARGUMENTS)
def test_bad_search_arguments_name_themselves(kwargs, error, match):
    kwargs = {"space": SPACE, "executor": "serial", **kwargs}
    with pytest.raises(error, match=match):
        random_search(quick_trial, **kwargs)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(rounds=1.5), TypeError, "rounds"), (dict(top_k=0), ValueError, "top_k"),
    (dict(trials_per_round=0), ValueError, "trials_per_round"),
    (dict(factor=0), ValueError, "factor"), (dict(n_workers=0), ValueError, "n_workers"),
    (dict(retry_errors=None), TypeError, "retry_errors")])
def test_bad_coarse_to_fine_arguments_name_themselves(kwargs, error, match):
    with pytest.raises(error, match=match):
        coarse_to_fine(quick_trial, SPACE, executor="serial", **kwargs)


@pytest.mark.parametrize("make, error, match", [
    (lambda: LogUniform(low=-1), TypeError, "high"),
    (lambda: LogUniform(-1, 1), ValueError, "low must be > 0"),
    (lambda: LogUniform(1, 0.1), ValueError, "low must be <= high"),
    (lambda: Choice([]), ValueError, "options must not be empty"),
    (lambda: Choice("relu"), TypeError, "options must be a list"),
    (lambda: Choice({"relu", "tanh"}), TypeError, "options must be a list"),
    (lambda: Choice([1, 2], p=[1.5, -0.5]), ValueError, r"p\[0\]"),
    (lambda: IntUniform(1, 8, log="yes"), TypeError, "log must be True or False"),
    (lambda: space_from_config({"lr": {"uniform": [0, 1], "log": True}}), ValueError,
     "'lr'.*unknown key 'log'"),
    (lambda: space_from_config("lr = 1"), TypeError, "space must be a dict")])
def test_bad_spaces_name_themselves(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_search_command_names_a_bad_config_entry(tmp_path):
    import json

    from fastdnn.cli import main
    for entry, match in [({"workers": "two"}, "workers must be an integer"),
                         ({"seed": -1}, r"seed must be in \[0"),
                         ({"space": {"lr": {"log_uniform": [1e-4]}}},
                          r"'lr'.*log_uniform takes \[low, high\]")]:
        path = tmp_path / "search.json"
        path.write_text(json.dumps({"space": {"x": [1, 2]}, **entry}))
        with pytest.raises(SystemExit, match=match):
            main(["search", str(path)])
