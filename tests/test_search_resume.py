"""Resuming a search only from its own results file; names, labels, Ctrl-C, ties, the CLI
(the user trial's findings)."""
import functools
import json
import os
import warnings

import numpy as np
import pytest

from fastdnn.search import (Choice, IntUniform, LogUniform, Results, Uniform,
                            caviar_search, coarse_to_fine, random_search)

SPACE = {"x": Uniform(0, 1)}
FIXED = {"epochs": 1, "hidden_units": 8, "backend": "numpy"}


def quick_trial(params):
    return {"dev_accuracy": params["x"], "dev_loss": 1 - params["x"]}


@pytest.fixture(scope="module")
def small():
    """A small digits split: (X_train, y_train, X_dev, y_dev), labels 0 .. 9."""
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    return X[:300], y[:300], X[300:400], y[300:400]


def serial(**kw):
    return dict(executor="serial", **kw)


# ---------------------------------------------------------------------- resume
def test_a_rerun_of_another_search_is_refused_saying_what_differs(tmp_path):
    path = str(tmp_path / "search.csv")
    first = random_search(quick_trial, SPACE, n_trials=3, seed=0, results_file=path,
                          **serial())
    assert os.path.exists(path + ".search.json")
    for kw, match in [(dict(seed=1), "seed 0, this one has seed 1"),
                      (dict(space={"x": Uniform(0, 2)}),
                       r"space x = Uniform\(0.0, 1.0\), this one has Uniform\(0.0, 2.0\)"),
                      (dict(space={"x": Uniform(0, 1), "y": Uniform(0, 1)}),
                       "no space y, this one has y = Uniform"),
                      (dict(trial_fn=lambda p: quick_trial(p)), "trial_fn quick_trial")]:
        kw = {"trial_fn": quick_trial, "space": SPACE, "seed": 0, **kw}
        with pytest.raises(ValueError, match=match) as error:
            random_search(kw.pop("trial_fn"), kw.pop("space"), n_trials=3,
                          results_file=path, **serial(**kw))
        assert "use another results_file, or delete it" in str(error.value)
    # the same search resumes, and may run more trials
    calls = []

    @functools.wraps(quick_trial)
    def counting(params):
        calls.append(params)
        return quick_trial(params)
    more = random_search(counting, SPACE, n_trials=5, seed=0, results_file=path,
                         **serial())
    assert len(calls) == 2 and more.resumed == [0, 1, 2]
    assert more.column("x")[:3] == first.column("x")
    import pandas
    assert len(pandas.read_csv(path)) == 5   # the CSV is still a plain table


def test_the_default_trial_records_fixed_and_the_data(small, tmp_path):
    path = str(tmp_path / "search.csv")
    space = {"learning_rate": LogUniform(1e-3, 1e-1)}
    random_search(space=space, data=small, fixed=FIXED, n_trials=1, results_file=path,
                  **serial())
    with pytest.raises(ValueError, match="fixed epochs = 1, this one has 2"):
        random_search(space=space, data=small, fixed={**FIXED, "epochs": 2}, n_trials=1,
                      results_file=path, **serial())
    other = (small[0] + 0.5, *small[1:])
    with pytest.raises(ValueError, match="other data"):
        random_search(space=space, data=other, fixed=FIXED, n_trials=1,
                      results_file=path, **serial())


def test_a_file_without_a_record_resumes_with_a_warning(tmp_path, capsys):
    path = str(tmp_path / "search.csv")
    random_search(quick_trial, SPACE, n_trials=2, results_file=path, **serial())
    os.remove(path + ".search.json")   # as an older fastdnn wrote it
    with pytest.warns(UserWarning, match="no record of the search"):
        res = random_search(quick_trial, SPACE, n_trials=3, results_file=path,
                            verbose=1, **serial())
    assert res.resumed == [0, 1] and len(res) == 3
    assert f"resumed 2 trials from {path}" in capsys.readouterr().out
    with warnings.catch_warnings():   # the rerun wrote the record: checked from now on
        warnings.simplefilter("error")
        random_search(quick_trial, SPACE, n_trials=3, results_file=path, **serial())
    with pytest.raises(ValueError, match="seed"):
        random_search(quick_trial, SPACE, n_trials=3, seed=4, results_file=path,
                      **serial())


def test_coarse_to_fine_may_add_rounds_but_not_change_them(tmp_path):
    path = str(tmp_path / "c2f.csv")
    kw = dict(trials_per_round=3, top_k=1, results_file=path, **serial())
    two = coarse_to_fine(quick_trial, SPACE, rounds=2, **kw)
    three = coarse_to_fine(quick_trial, SPACE, rounds=3, **kw)
    assert three.resumed == list(range(6)) and len(three) == 9
    assert three.rows[:6] == two.rows and three.spaces[:2] == two.spaces
    with pytest.raises(ValueError, match="trials_per_round 3, this one has "
                                         "trials_per_round 4"):
        coarse_to_fine(quick_trial, SPACE, rounds=3, **{**kw, "trials_per_round": 4})
    with pytest.raises(ValueError, match="search \"coarse_to_fine\", this one has "
                                         "search \"random_search\""):
        random_search(quick_trial, SPACE, n_trials=3, results_file=path, **serial())


def test_caviar_search_resumes_its_own_file_only(small, tmp_path, capsys):
    path = str(tmp_path / "caviar.csv")
    space = {"learning_rate": LogUniform(1e-3, 1e-1)}
    kw = dict(fixed={"epochs": 1, "hidden_units": 8}, backend="numpy", results_file=path)
    caviar_search(space, small, n_trials=4, **kw)
    res = caviar_search(space, small, n_trials=6, max_models=1, verbose=1, **kw)
    assert res.resumed == [0, 1, 2, 3] and len(res) == 6
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"resumed 4 trials from {path}"
    # a running count of this run's trials, not "1 trials done" per group
    assert [line.split(",")[0] for line in out[1:]] == ["1/2 trials done",
                                                        "2/2 trials done"]
    assert "best dev accuracy so far" in out[-1]
    with pytest.raises(ValueError, match="seed 0, this one has seed 1"):
        caviar_search(space, small, n_trials=6, seed=1, **kw)


# ---------------------------------------------------------------------- names
def test_unknown_names_are_refused_before_any_trial(small, tmp_path):
    space = {"learning_rate": LogUniform(1e-3, 1e-1)}
    path = tmp_path / "search.csv"
    for fixed, space_, match in [
            ({"epoch": 3}, space, r"\['epoch'\] in fixed \('epoch': did you mean "
                                  r"'epochs'\?\); train_mlp takes \["),
            ({"max_iter": 3}, space, "'max_iter' is scikit-learn's name for epochs"),
            ({"optimiser": "sgd"}, space, "train_mlp trains with Adam only"),
            ({}, {"hidden_unit": IntUniform(8, 16)},
             r"in space \('hidden_unit': did you mean 'hidden_units'\?\)")]:
        with pytest.raises(ValueError, match=match):
            random_search(space=space_, data=small, fixed=fixed, n_trials=2,
                          results_file=str(path), **serial())
        with pytest.raises(ValueError, match=match):
            coarse_to_fine(space=space_, data=small, fixed=fixed, rounds=1,
                           trials_per_round=1, **serial())
    assert not path.exists()   # no trial ran
    with pytest.raises(ValueError, match=r"caviar_search cannot vary or fix \['epoch'\] "
                                         r"in fixed \('epoch': did you mean 'epochs'"):
        caviar_search(space, small, fixed={"epoch": 3}, n_trials=1)
    with pytest.raises(ValueError, match=r"cannot vary or fix \['momentum'\] in space"):
        caviar_search({"momentum": [0.9]}, small, n_trials=1)


# ---------------------------------------------------------------------- labels
def test_any_class_labels_work_and_mean_the_same(small):
    X, y, Xd, yd = small
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven",
                      "eight", "nine"])
    space = {"learning_rate": Choice([0.01])}
    kw = dict(space=space, fixed=FIXED, n_trials=1, **serial())
    plain = random_search(data=small, **kw).rows[0]
    # the classes in sorted order: the names' order is not the digits'
    order = np.argsort(names)
    rank = np.empty(10, np.int64)
    rank[order] = np.arange(10)
    for data in [(X, names[y], Xd, names[yd]), (X, y + 1, Xd, yd + 1),
                 (X, (y + 1) * 3, Xd, (yd + 1) * 3)]:
        row = random_search(data=data, **kw).rows[0]
        assert row["status"] == "ok", row.get("error")
        if data[1].dtype.kind == "U":   # another class order: another network
            assert 0.1 < row["dev_accuracy"] <= 1
        else:   # the same classes in the same order: the same network
            assert row["dev_accuracy"] == plain["dev_accuracy"]
            assert row["dev_loss"] == plain["dev_loss"]
    # two labels far apart make two output units, as labels 0 and 1 do
    two = (y[y < 2], yd[yd < 2])
    a = random_search(data=(X[y < 2], two[0], Xd[yd < 2], two[1]), **kw).rows[0]
    b = random_search(data=(X[y < 2], two[0] * 5, Xd[yd < 2], two[1] * 5), **kw).rows[0]
    assert a["dev_loss"] == b["dev_loss"]
    res = caviar_search(space, (X, names[y], Xd, names[yd]), fixed={"epochs": 1},
                        n_trials=2, backend="numpy")
    assert len(res.ok) == 2


def test_a_dev_label_missing_from_training_is_refused(small):
    X, y, Xd, yd = small
    keep = y != 7
    with pytest.raises(ValueError, match=r"y_dev holds labels \['7'\] that y_train lacks"):
        random_search(space={"learning_rate": [0.01]}, data=(X[keep], y[keep], Xd, yd),
                      n_trials=1, **serial())
    with pytest.raises(ValueError, match="y_train lacks"):
        caviar_search({"learning_rate": [0.01]}, (X[keep], y[keep], Xd, yd), n_trials=1)


# ---------------------------------------------------------------------- Ctrl-C
def test_ctrl_c_keeps_the_finished_trials(tmp_path):
    path = str(tmp_path / "search.csv")

    calls = []

    @functools.wraps(quick_trial)
    def interrupted_in_trial_3(params):
        calls.append(params)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return quick_trial(params)
    with pytest.raises(KeyboardInterrupt) as stop:
        random_search(interrupted_in_trial_3, SPACE, n_trials=6, results_file=path,
                      **serial())
    if hasattr(stop.value, "add_note"):   # Python 3.11+: the note says so
        assert stop.value.__notes__ == [f"fastdnn.search: 3 finished trials are saved in "
                                        f"{path}; rerun with it to resume"]
    assert len(Results.from_csv(path)) == 3
    res = random_search(quick_trial, SPACE, n_trials=6, results_file=path, **serial())
    assert res.resumed == [0, 1, 2] and len(res) == 6


def test_ctrl_c_in_caviar_search_keeps_the_finished_groups(small, tmp_path, monkeypatch):
    import fastdnn.search.caviar as C
    path = str(tmp_path / "caviar.csv")
    task, groups = C._caviar_task, []

    def interrupted_in_group_3(data, fixed, trials, *args):
        groups.append(trials)
        if len(groups) == 3:
            raise KeyboardInterrupt
        return task(data, fixed, trials, *args)
    monkeypatch.setattr(C, "_caviar_task", interrupted_in_group_3)
    with pytest.raises(KeyboardInterrupt) as stop:
        caviar_search({"learning_rate": LogUniform(1e-3, 1e-1)}, small,
                      fixed={"epochs": 1, "hidden_units": 8}, n_trials=8, max_models=2,
                      backend="numpy", results_file=path)
    saved = Results.from_csv(path)
    assert sorted(r["trial"] for r in saved) == sorted(t for g in groups[:2] for t, _ in g)
    if hasattr(stop.value, "add_note"):   # Python 3.11+: the note says so
        assert stop.value.__notes__ == [f"fastdnn.search: 4 finished trials are saved in "
                                        f"{path}; rerun with it to resume"]


# ---------------------------------------------------------------------- ties
def test_ties_go_to_the_lower_dev_loss_then_the_earlier_trial():
    rows = [{"trial": 0, "x": 0.1, "dev_accuracy": 0.9, "dev_loss": 0.5, "status": "ok"},
            {"trial": 1, "x": 0.2, "dev_accuracy": 0.9, "dev_loss": 0.3, "status": "ok"},
            {"trial": 2, "x": 0.3, "dev_accuracy": 0.8, "dev_loss": 0.1, "status": "ok"},
            {"trial": 3, "x": 0.4, "dev_accuracy": 0.9, "dev_loss": 0.3, "status": "ok"},
            {"trial": 4, "x": 0.5, "status": "error", "error": "E: e"}]
    res = Results(rows, ["x"])
    assert res.best()["trial"] == 1 and res.ok.best()["trial"] == 1
    assert [r["trial"] for r in res.sort()] == [1, 3, 0, 2, 4]
    assert "best dev_accuracy 0.9 (trial 1)" in res.summary()
    assert Results(rows[::-1], ["x"]).best()["trial"] == 1   # not the row order


# ---------------------------------------------------------------------- the CLI
def write_config(tmp_path, name="s.json", **cfg):
    path = tmp_path / name
    if name.endswith(".json"):
        path.write_text(json.dumps(cfg))
    return path


def test_cli_refuses_a_changed_config_and_counts_only_trials_run_now(tmp_path, capsys):
    from fastdnn.cli import main
    cfg = {"method": "mlp", "n_trials": 2, "workers": 1, "fixed": FIXED,
           "space": {"learning_rate": {"log_uniform": [1e-3, 1e-1]}},
           "results_file": str(tmp_path / "r.csv")}
    path = write_config(tmp_path, **cfg)
    assert main(["search", str(path)]) == 0
    capsys.readouterr()
    assert main(["search", str(path)]) == 0
    out = capsys.readouterr().out
    assert "0 trials (0 ok) in" in out and "trials/min" not in out
    assert f"2 resumed from {tmp_path / 'r.csv'}" in out
    cfg["fixed"] = {**FIXED, "epochs": 2}
    path = write_config(tmp_path, **cfg)
    with pytest.raises(SystemExit, match=r"^fastdnn search: .*s.json: results_file .*"
                                         r"fixed epochs = 1, this one has 2"):
        main(["search", str(path)])


def test_cli_config_errors_are_one_line(tmp_path):
    from fastdnn.cli import main
    bad = tmp_path / "bad.toml"
    bad.write_text("n_trials = \n")
    with pytest.raises(SystemExit, match=r"^fastdnn search: .*bad.toml: "):
        main(["search", str(bad)])
    for cfg, match in [({"fixed": {"epoch": 3}}, r"caviar_search cannot vary or fix "
                                                 r"\['epoch'\] in fixed"),
                       ({"mode": "coarse_to_fine", "method": "caviar"},
                        r"method = \"caviar\" runs a random search only"),
                       ({"method": "MLP"}, "method must be 'caviar' or 'mlp'")]:
        path = write_config(tmp_path, workers=1, space={"learning_rate": [0.01]}, **cfg)
        with pytest.raises(SystemExit, match=r"^fastdnn search: .*s.json: " + match):
            main(["search", str(path)])


def test_cli_ctrl_c_says_where_the_trials_are(tmp_path, capsys, monkeypatch):
    import fastdnn.search.caviar as C
    from fastdnn.cli import main
    results_file = tmp_path / "r.csv"
    path = write_config(tmp_path, n_trials=4, workers=1, fixed={"epochs": 1},
                        space={"learning_rate": [0.01, 0.1]},
                        results_file=str(results_file))

    def interrupted(*args, **kwargs):
        Results([{"trial": 0, "status": "ok"}]).to_csv(results_file)
        raise KeyboardInterrupt
    monkeypatch.setattr(C, "caviar_search", interrupted)
    with pytest.raises(SystemExit) as stop:
        main(["search", str(path)])
    assert stop.value.code == 130
    assert (f"interrupted: 1 trials saved in {results_file}; rerun the same command to "
            f"resume") in capsys.readouterr().err


# ---------------------------------------------------------------------- plots
def test_integer_log_axes_get_plain_tick_labels():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    space = {"hidden_units": IntUniform(30, 90, log=True),
             "batch_size": IntUniform(16, 1024, log=True)}
    rows = [{"trial": t, "hidden_units": h, "batch_size": b, "dev_accuracy": 0.5 + t / 100,
             "status": "ok"}
            for t, (h, b) in enumerate(zip([30, 41, 52, 63, 77, 90, 35, 45],
                                           [16, 40, 100, 300, 700, 1024, 20, 64]))]
    fig = Results(rows, list(space), [space]).plot()
    fig.canvas.draw()
    for ax in fig.axes[:2]:
        labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
        labels += [t.get_text() for t in ax.get_xticklabels(minor=True) if t.get_text()]
        assert labels and all(label.isdigit() for label in labels), labels
    plt.close(fig)
