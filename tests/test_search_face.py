"""The search's faces (#16): a short Trial and Results summary, to_frame, plots on each
hyperparameter's scale, and ``fastdnn search`` on the user's CSV / .npz data with a
line per finished trial."""
import json
import math
import pickle
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from fastdnn.cli import main
from fastdnn.search import (Choice, LogUniform, OneMinusLogUniform, Results, Trial,
                            random_search)
from fastdnn.search.cli import load_config, load_data

SPACE = {"learning_rate": LogUniform(1e-4, 1e-1), "beta1": OneMinusLogUniform(0.8, 0.999),
         "activation": Choice(["relu", "tanh", "sigmoid"]), "epochs": 5}


def fake_trial(params):
    """Cheap and deterministic: best near learning_rate = 1e-2; sigmoid always fails."""
    if params["activation"] == "sigmoid":
        raise RuntimeError("sigmoid is not wanted here")
    score = 1 - 0.1 * (math.log10(params["learning_rate"]) + 2) ** 2
    curve = list(np.linspace(0.1, score, params["epochs"]))
    return {"train_loss": 0.5, "train_accuracy": score, "dev_loss": 1 - score,
            "dev_accuracy": score, "epochs": params["epochs"],
            "history": {"loss": [0.5] * 5, "val_accuracy": curve}}


@pytest.fixture(scope="module")
def results():
    return random_search(fake_trial, SPACE, n_trials=24, seed=1, executor="serial")


# ---------------------------------------------------------------------- summaries
def test_best_is_a_dict_that_prints_a_short_summary(results):
    best = results.best()
    row = max(results.ok, key=lambda r: r["dev_accuracy"])
    assert isinstance(best, Trial) and isinstance(best, dict) and best == row
    assert best["dev_accuracy"] == row["dev_accuracy"] and "history" in best
    text = repr(best)
    assert text == str(best) and len(text) < 400 and "val_accuracy" not in text
    assert text.startswith(f"Trial {row['trial']} (ok, 5 epochs, ")
    for name in ("learning_rate=", "beta1=", "activation=", "dev: accuracy=",
                 "train: accuracy="):
        assert name in text
    assert best.hyperparameters == {k: row[k] for k in SPACE}
    assert pickle.loads(pickle.dumps(best)) == best
    assert json.loads(json.dumps(best)) == json.loads(json.dumps(row))


def test_a_failed_trial_prints_its_error():
    text = repr(Trial({"trial": 3, "x": 0.5, "status": "error", "time": 0.1,
                       "error": "RuntimeError: bad x\nmore", "traceback": "Traceback..."},
                      ["x"]))
    assert text.splitlines() == ["Trial 3 (error, 0.10 s)", "  x=0.5",
                                 "  error: RuntimeError: bad x"]


def test_results_summary_counts_trials_and_shows_the_best(results):
    n_failed = sum(r["activation"] == "sigmoid" for r in results)
    assert 0 < n_failed < len(results)
    text = repr(results)
    best = results.best()
    lines = text.splitlines()
    assert lines[0] == (f"Results: 24 trials, {24 - n_failed} ok, {n_failed} failed "
                        f"({n_failed} RuntimeError; see .failed)")
    assert lines[1].startswith(f"best dev_accuracy {best['dev_accuracy']:.4g} "
                               f"(trial {best['trial']}); the 5 best:")
    assert len(lines) == 2 + 1 + 5 and "history" not in text and len(text) < 2000
    assert lines[3].split()[0] == str(best["trial"])   # the table, best first
    assert len(results.summary(k=2).splitlines()) == 2 + 1 + 2
    assert "no trial" not in Results([]).summary() and \
        Results([]).summary() == "Results: 0 trials, 0 ok, 0 failed"


def test_to_frame_has_one_row_per_trial_without_histories(results):
    pytest.importorskip("pandas")
    frame = results.to_frame()
    assert list(frame.index) == list(range(24)) and frame.index.name == "trial"
    assert list(frame.columns) == ["learning_rate", "beta1", "activation", "epochs",
                                   "train_loss", "train_accuracy", "dev_loss",
                                   "dev_accuracy", "time", "status", "error"]
    assert frame["learning_rate"].dtype == np.float64
    assert frame.loc[results.best()["trial"], "dev_accuracy"] == \
        results.best()["dev_accuracy"]
    failed = frame[frame["status"] == "error"]
    assert failed["dev_accuracy"].isna().all()
    assert failed["error"].str.startswith("RuntimeError").all()


def test_missing_optional_packages_are_named(results, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match="to_frame needs pandas: pip install pandas"):
        results.to_frame()
    with pytest.raises(ImportError, match="Results.plot needs matplotlib"):
        results.plot()


def test_progress_prints_a_line_per_finished_trial(capsys):
    res = random_search(fake_trial, SPACE, n_trials=8, seed=1, executor="serial",
                        verbose=1)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 8
    for row, line in zip(res, lines):
        assert line.startswith(f"trial {row['trial']:>3}  {row['status']:<5}  ")
        if row["status"] == "ok":
            assert f"dev_accuracy {row['dev_accuracy']:.4f}" in line
        else:
            assert "RuntimeError: sigmoid is not wanted here" in line
    best = res.best()
    assert lines[-1].endswith(f"best {best['dev_accuracy']:.4f} (trial {best['trial']})"
                              f"  {res[-1]['time']:.2f} s")


# ---------------------------------------------------------------------- plots
def _panels(fig):
    return [ax for ax in fig.axes if ax.get_visible()]


def test_plot_draws_each_hyperparameter_on_its_scale(results, pyplot, tmp_path):
    from matplotlib.image import imread
    path = tmp_path / "scores.png"
    fig = results.plot(path=path)
    lr, beta1, activation = _panels(fig)   # "epochs" never changed: no panel
    assert [ax.get_xlabel() for ax in (lr, beta1, activation)] == \
        ["learning_rate", "beta1", "activation"]
    assert lr.get_xscale() == "log" and beta1.get_xscale() == "log"
    assert activation.get_xscale() == "linear"
    assert beta1.xaxis_inverted()              # larger beta1 to the right
    assert beta1.xaxis.get_major_formatter()(0.01, 0) == "0.99"
    assert [t.get_text() for t in activation.get_xticklabels()] == \
        ["relu", "tanh", "sigmoid"]            # the space's order, even unseen ones
    best = results.best()
    assert f"best: trial {best['trial']}" in [t.get_text() for t in
                                             lr.get_legend().get_texts()]
    star = lr.collections[-1].get_offsets()[0]
    assert np.allclose(star, [best["learning_rate"], best["dev_accuracy"]])
    n_ok = len(results.ok)
    assert sum(len(c.get_offsets()) for c in lr.collections[:-1]) == n_ok
    assert fig._suptitle.get_text().startswith(f"dev_accuracy of {n_ok} trials")
    image = imread(path)
    assert image.ndim == 3 and image.shape[1] > image.shape[0] and image.std() > 0.05


def test_plot_of_a_table_read_back_guesses_the_scales(results, pyplot, tmp_path):
    results.to_csv(tmp_path / "r.csv")
    back = Results.from_csv(tmp_path / "r.csv")
    fig = back.plot("dev_loss")
    lr, beta1, activation = _panels(fig)
    assert (lr.get_xscale(), beta1.get_xscale()) == ("log", "log")
    assert lr.get_ylabel() == "dev_loss"
    best = back.best("dev_loss")   # the smallest loss
    assert best["dev_loss"] == min(r["dev_loss"] for r in back.ok)
    assert np.allclose(lr.collections[-1].get_offsets()[0],
                       [best["learning_rate"], best["dev_loss"]])


def test_plot_colours_coarse_to_fine_rounds(pyplot):
    from fastdnn.search import coarse_to_fine
    res = coarse_to_fine(fake_trial, {**SPACE, "activation": "relu"}, rounds=2,
                         trials_per_round=5, executor="serial")
    fig = res.plot()
    labels = [t.get_text() for t in _panels(fig)[0].get_legend().get_texts()]
    assert labels[:2] == ["round 0", "round 1"] and len(_panels(fig)) == 2


def test_plot_errors_name_the_problem(results, pyplot):
    with pytest.raises(ValueError, match="metric 'dev_f1'.*numeric columns"):
        results.plot("dev_f1")
    with pytest.raises(ValueError, match="metric 'dev_accuracy'"):
        results.failed.plot()


# ---------------------------------------------------------------------- the user's data
def _blobs(n_per_class=30, seed=0):
    rng = np.random.default_rng(seed)
    names = np.array(["cat", "dog", "owl"])
    y = np.repeat(np.arange(3), n_per_class)
    X = rng.normal(size=(len(y), 3)) * 2 + 10 * y[:, None]   # far from standardized
    return X, names[y]


def _write_csv(path, X, labels, header="a,b,label,c"):
    lines = [header] + [f"{x[0]},{x[1]},{lab},{x[2]}" for x, lab in zip(X, labels)]
    path.write_text("\n".join(lines) + "\n")


def test_load_data_reads_a_csv_stratifies_and_standardizes(tmp_path):
    X, labels = _blobs()
    _write_csv(tmp_path / "zoo.csv", X, labels)
    (X_train, y_train, X_dev, y_dev), text = load_data(
        {"path": "zoo.csv", "target": "label", "dev_fraction": 0.2}, seed=0,
        base_dir=tmp_path)
    assert X_train.shape == (72, 3) and X_dev.shape == (18, 3)
    assert X_train.dtype == np.float32 and y_train.dtype == np.int64
    assert np.bincount(y_dev).tolist() == [6, 6, 6]   # stratified
    assert np.allclose(X_train.mean(axis=0), 0, atol=1e-5)
    assert np.allclose(X_train.std(axis=0), 1, atol=1e-4)
    assert text == ("data: zoo.csv: 90 rows, 3 features -> 3 classes (cat, dog, owl); "
                    "72 train / 18 dev, standardized")
    (X_raw, *_), text = load_data({"path": "zoo.csv", "target": "label",
                                   "features": ["c", "a"], "standardize": False},
                                  base_dir=tmp_path)
    assert X_raw.shape[1] == 2 and X_raw.mean() > 5 and "standardized" not in text


def test_load_data_reads_an_npz(tmp_path):
    X, labels = _blobs()
    images = X.reshape(-1, 3, 1)
    one_hot = np.eye(3)[np.repeat(np.arange(3), 30)]
    np.savez(tmp_path / "d.npz", images=images, y=one_hot)
    (X_train, y_train, X_dev, y_dev), text = load_data(
        {"path": str(tmp_path / "d.npz"), "features": "images"})
    assert X_train.shape[1] == 3 and set(y_train) == {0, 1, 2}   # one-hot to classes
    assert "90 rows, 3 features -> 3 classes (0, 1, 2)" in text


@pytest.mark.parametrize("spec, contents, message", [
    ({"target": "lable"}, None, r"zoo.csv has no column 'lable'; columns: a, b, label, c"),
    ({"target": "label", "features": ["a", "zz"]}, None, "has no column 'zz'"),
    ({"target": "label", "features": ["a", "label"]}, None,
     "features must not include the target 'label'"),
    ({}, None, "name the target column with target"),
    ({"target": "label"}, "a,b,label,c\n1,2,cat,3\n1,x,dog,3\n",
     r"zoo.csv line 3, column 'b': 'x' is not a finite number"),
    ({"target": "label"}, "a,b,label,c\n1,2,cat,3\n1,nan,dog,3\n", "line 3, column 'b'"),
    ({"target": "label"}, "a,b,label,c\n1,2,cat,3\n1,2,dog\n",
     "line 3 has 3 values; the header has 4 columns"),
    ({"target": "label"}, "a,b,label,c\n1,2,,3\n", "line 2: the target column 'label' "
     "is empty"),
    ({"target": "label"}, "a,b,label,c\n", "has a header but no rows"),
    ({"target": "label"}, "", "zoo.csv is empty; expected a header row"),
    ({"target": "b", "features": ["a", "c"]}, "a,b,label,c\n1,2.5,cat,3\n1,2,dog,3\n",
     r"column 'b' holds fractional numbers \(e.g. 2.5\).*class labels"),
    ({"target": "label"}, "a,b,label,c\n1,2,cat,3\n1,2,cat,3\n", "holds 1 class"),
    ({"target": "label", "dev_fraction": 1.0}, None, r"dev_fraction must be in \(0, 1\)"),
    ({"target": "label", "standardize": "yes"}, None, "standardize must be true or false"),
    ({"target": "label", "shuffle": True}, None, r"unknown \[data\] keys \['shuffle'\]"),
])
def test_csv_errors_name_the_file_and_column(tmp_path, spec, contents, message):
    X, labels = _blobs()
    if contents is None:
        _write_csv(tmp_path / "zoo.csv", X, labels)
    else:
        (tmp_path / "zoo.csv").write_text(contents)
    with pytest.raises((TypeError, ValueError), match=message):
        load_data({"path": "zoo.csv", **spec}, base_dir=tmp_path)


def test_file_and_npz_errors_name_the_file_and_key(tmp_path):
    np.savez(tmp_path / "d.npz", X=np.ones((4, 2)), labels=np.arange(4))
    (tmp_path / "d.txt").write_text("1,2\n")
    (tmp_path / "fake.npz").write_text("1,2\n")
    (tmp_path / "latin1.csv").write_bytes("a,label\n1,caf\xe9\n".encode("latin-1"))
    np.savez(tmp_path / "objects.npz", X=np.ones((2, 1)), y=np.array(["a", None], object))
    cases = [({"path": "nope.csv"}, "data file '.*nope.csv' not found"),
             ({"path": "d.npz"}, r"d.npz has no array 'y'; arrays: X, labels"),
             ({"path": "d.npz", "target": "labels", "features": "labels"},
              r"array 'labels' must be real numbers of shape \(n, n_features\)"),
             ({"path": "d.txt"}, r"d.txt': expected a .csv or .npz file"),
             ({"path": "fake.npz"}, r"fake.npz is not a .npz file"),
             ({"path": "objects.npz"}, r"objects.npz holds object arrays"),
             ({"path": "latin1.csv", "target": "label"}, r"latin1.csv is not UTF-8 text"),
             ({}, r"\[data\] needs path")]
    for spec, message in cases:
        with pytest.raises(ValueError, match=message):
            load_data(spec, base_dir=tmp_path)
    np.savez(tmp_path / "short.npz", X=np.ones((4, 2)), y=np.arange(3))
    with pytest.raises(ValueError, match=r"'y' must hold one label per row of 'X'"):
        load_data({"path": "short.npz"}, base_dir=tmp_path)


# ---------------------------------------------------------------------- the command
def _config(tmp_path, **extra):
    cfg = {"mode": "random", "method": "mlp", "n_trials": 3, "workers": 1,
           "fixed": {"epochs": 2, "hidden_units": 8, "backend": "numpy"},
           "space": {"learning_rate": {"log_uniform": [1e-3, 1e-1]},
                     "beta1": {"one_minus_log_uniform": [0.8, 0.99]}}, **extra}
    path = tmp_path / "search.json"
    path.write_text(json.dumps(cfg))
    return str(path)


def test_search_command_on_a_csv_shows_progress_and_plots(tmp_path, capsys, pyplot):
    from matplotlib.image import imread
    X, labels = _blobs()
    _write_csv(tmp_path / "zoo.csv", X, labels)
    config = _config(tmp_path, data={"path": "zoo.csv", "target": "label"})
    plot = tmp_path / "scores.png"
    assert main(["search", config, "--plot", str(plot)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("data: zoo.csv: 90 rows, 3 features -> 3 classes")
    progress = [line for line in out if re.match(r"trial +\d+ ", line)]
    assert [line.split()[1] for line in progress] == ["0", "1", "2"]
    assert all(" ok " in line and "dev_accuracy" in line and " best " in line
               for line in progress)
    assert "3 trials (3 ok)" in out[4] and out[5].startswith("Results: 3 trials, 3 ok")
    assert out[-1] == f"plot: {plot}"
    assert imread(plot).shape[2] in (3, 4)


def test_search_command_takes_the_data_from_flags(tmp_path, capsys):
    X, labels = _blobs()
    np.savez(tmp_path / "zoo.npz", features=X, y=labels)
    config = _config(tmp_path, data={"features": "features", "dev_fraction": 0.3})
    assert main(["search", config, "--data", str(tmp_path / "zoo.npz"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "3 classes (cat, dog, owl); 63 train / 27 dev" in out
    assert "trial   0" not in out and "3 trials (3 ok)" in out
    _write_csv(tmp_path / "zoo.csv", X, labels)
    with pytest.raises(SystemExit, match="zoo.csv has no column 'kind'; columns: a, b"):
        main(["search", config, "--data", str(tmp_path / "zoo.csv"), "--target", "kind"])
    with pytest.raises(SystemExit, match=r"unknown \[data\] keys \['file'\]"):
        main(["search", _config(tmp_path, data={"file": "x.csv"})])


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib")
def test_csv_example_config_reads_iris(tmp_path):
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_iris
    example = Path(__file__).parents[1] / "examples" / "search_csv.toml"
    shutil.copy(example, tmp_path)
    load_iris(as_frame=True).frame.to_csv(tmp_path / "iris.csv", index=False)
    cfg = load_config(tmp_path / "search_csv.toml")
    (X_train, y_train, X_dev, y_dev), text = load_data(cfg["data"], cfg["seed"],
                                                       base_dir=tmp_path)
    assert X_train.shape == (120, 4) and np.bincount(y_dev).tolist() == [10, 10, 10]
    assert "150 rows, 4 features -> 3 classes" in text
