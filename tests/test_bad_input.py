"""Bad input, table-driven: every case must raise the named error type with a message that
names the argument and what is expected (issue #15: 0 silent, 0 obscure).

Each row: (case, call, error type, pattern the message must match). A silent case (no
error) or an obscure one (another type, or a message that does not name the argument)
fails. Extend the table whenever a public argument appears.
"""
import json
import os
import re
import tempfile

import numpy as np
import pytest

import fastdnn
from fastdnn import MLP, cpu, reference, search
from fastdnn.io import ModelFileError
from fastdnn import course
from fastdnn.course import initialization, regularization
from fastdnn.sklearn import MLPClassifier, MLPRegressor

RNG = np.random.default_rng(0)
X = RNG.standard_normal((20, 4))
Y3 = np.arange(20) % 3


def _fit(model, X_, y_, **kw):
    return lambda: model().fit(X_, y_, epochs=1, verbose=0, **kw)


def _softmax():
    return MLP([4, 5, 3], backend="cpu", seed=0)


def _sigmoid():
    return MLP([4, 5, 1], output="sigmoid", backend="cpu", seed=0)


def _identity():
    return MLP([4, 5, 1], output="identity", backend="cpu", seed=0)


def _set_weights(**params):
    def call():
        m = _softmax()
        m.set_weights(params)
    return call


def _set_stats(**stats):
    def call():
        m = MLP([4, 5, 3], batchnorm=True, backend="cpu", seed=0)
        m.set_batchnorm_stats(stats)
    return call


def _adam_step(kernels, params, grads):
    return lambda: fastdnn.Adam(backend=kernels).step(params, grads)


def _course_grads():
    p = course.initialize_parameters_he([3, 4, 1])
    g = {"d" + k: np.zeros_like(v) for k, v in p.items()}
    return p, g


def _gd_lr():
    p, g = _course_grads()
    return course.update_parameters_with_gd(p, g, lr=0.1)


def _adam_t():
    p, g = _course_grads()
    v, s = course.initialize_adam(p)
    return course.update_parameters_with_adam(p, g, v, s, step=1)


def _load(data=None, **changes):
    """load() of a file holding ``data``, or of a good model file with entries changed."""
    def call():
        path = os.path.join(tempfile.mkdtemp(), "model.npz")
        if data is not None:
            with open(path, "wb") as f:
                f.write(data)
        else:
            m = MLP([4, 5, 3], backend="numpy", seed=0)
            m.fit(X, Y3, epochs=1, verbose=0)
            m.save(path)
            with np.load(path) as saved:
                entries = dict(saved)
            for key, value in changes.items():
                entries[key] = value(entries[key]) if callable(value) else value
            np.savez(path, **entries)
        return fastdnn.load(path)
    return call


def _good_file_bytes():
    path = os.path.join(tempfile.mkdtemp(), "model.npz")
    m = MLP([4, 5, 3], backend="numpy", seed=0)
    m.fit(X, Y3, epochs=1, verbose=0)
    m.save(path)
    with open(path, "rb") as f:
        return f.read()


def _training(**fields):
    return lambda entry: np.array(json.dumps({**json.loads(str(entry)), **fields}))


def _search(**kwargs):
    def trial(params):
        return {"dev_accuracy": 0.5}
    return lambda: search.random_search(trial, space={"x": search.Uniform(0, 1)},
                                        **{"n_trials": 2, "executor": "serial", **kwargs})


GOOD = _good_file_bytes()
ones = np.ones(5)
CASES = [
    # ---- targets that were silently accepted
    ("one-hot y with negative entries", _fit(_softmax, X, -np.eye(3)[Y3]), ValueError,
     r"y must hold one-hot rows .*\[0, 1\]"),
    ("one-hot rows not summing to 1", _fit(_softmax, X, np.full((20, 3), 0.5)), ValueError,
     r"y's one-hot rows must sum to 1"),
    ("sigmoid y in {0, 1, 2}", _fit(_sigmoid, X, Y3), ValueError,
     r"y must hold labels 0/1"),
    ("complex y", _fit(_identity, X, Y3 + 1j), TypeError, r"y must hold real numbers"),
    ("complex X", _fit(_softmax, X + 1j, Y3), TypeError, r"X must hold real numbers"),
    ("MLP(batchnorm='no')", lambda: MLP([4, 5, 3], batchnorm="no"), TypeError,
     r"batchnorm must be True or False"),
    ("Dense(use_bias='no')", lambda: fastdnn.Dense(4, use_bias="no"), TypeError,
     r"use_bias must be True or False"),
    ("MLP(batch_invariant='yes')", lambda: MLP([4, 3], batch_invariant="yes"), TypeError,
     r"batch_invariant must be True or False"),
    ("set_weights with NaN", _set_weights(W1=np.full((5, 4), np.nan)), ValueError,
     r"weights\['W1'\] contains NaN"),
    ("set_weights with strings", _set_weights(W1=np.full((5, 4), "a")), TypeError,
     r"weights\['W1'\] must hold real numbers"),
    ("set_weights of the wrong shape", _set_weights(W1=np.ones((4, 5))), ValueError,
     r"weights\['W1'\] must have shape \(5, 4\)"),
    ("negative BatchNorm running variance", _set_stats(running_var1=-np.ones(5)),
     ValueError, r"stats\['running_var1'\] is a variance and must be >= 0"),
    ("NaN BatchNorm running mean", _set_stats(running_mean1=np.full(5, np.nan)),
     ValueError, r"stats\['running_mean1'\] contains NaN"),
    ("Adam.step with NaN gradients (cpu)", _adam_step("cpu", [ones.copy()], [ones * np.nan]),
     ValueError, r"grad contains NaN"),
    ("Adam.step with NaN gradients (numpy)",
     _adam_step("numpy", [ones.copy()], [ones * np.nan]), ValueError, r"grad contains NaN"),
    ("Adam.step with NaN in one of several gradients",
     _adam_step("cpu", [ones.copy(), ones.copy()], [ones, ones * np.inf]), ValueError,
     r"grad\[1\] contains NaN or inf"),
    ("optimizer state aliasing param (cpu)",
     (lambda p: lambda: cpu.adam_update(p, ones, p, np.zeros(5), 1, 0.1))(ones.copy()),
     ValueError, r"m shares memory with param"),
    ("optimizer state aliasing param (numpy)",
     (lambda p: lambda: reference.adam_update(p, ones, p, np.zeros(5), 1, 0.1))(ones.copy()),
     ValueError, r"m shares memory with param"),
    ("state aliasing another state (cpu)",
     (lambda m: lambda: cpu.adam_update(ones.copy(), ones, m, m, 1, 0.1))(np.zeros(5)),
     ValueError, r"v shares memory with m"),
    ("load() of NaN weights", _load(params=lambda p: p * np.nan), ModelFileError,
     r"cannot load .*'params'.*NaN"),
    ("load() of string weights", _load(params=lambda p: p.astype(str)), ModelFileError,
     r"cannot load .*'params'"),
    ("load() of step=-5", _load(training=_training(step=-5)), ModelFileError,
     r"cannot load .*step must be in \[0"),
    ("random_search(n_trials=-1)", _search(n_trials=-1), ValueError, r"n_trials"),
    ("random_search(n_trials=1.5)", _search(n_trials=1.5), TypeError, r"n_trials"),
    ("random_search(time_budget=-1)", _search(time_budget=-1), ValueError, r"time_budget"),
    # ---- obscure errors that now name the argument
    ("load() of a truncated file", _load(GOOD[:len(GOOD) // 2]), ModelFileError,
     r"cannot load .*(damaged|truncated)"),
    ("load() of an empty file", _load(b""), ModelFileError, r"cannot load .*empty"),
    ("load() of random bytes", _load(bytes(RNG.integers(0, 256, 3000, np.uint8))),
     ModelFileError, r"cannot load .*not a fastdnn model file"),
    ("load() of a future format", _load(format=np.array(json.dumps("fastdnn-model-2"))),
     ModelFileError, r"cannot load .*newer fastdnn"),
    ("load() of wrong-length weights", _load(params=lambda p: p[:-1]), ModelFileError,
     r"cannot load .*'params'"),
    ("load() of bad architecture JSON", _load(architecture=np.array("{not json")),
     ModelFileError, r"cannot load .*'architecture' is not valid JSON"),
    ("random_search(n_workers=0)", _search(n_workers=0, executor=None), ValueError,
     r"n_workers"),
    ("random_search(seed=-1)", _search(seed=-1), ValueError, r"seed"),
    ("a malformed search space", lambda: search.random_search(
        lambda p: {}, space={"x": {"log_uniform": [1e-4]}}, n_trials=1,
        executor="serial"), ValueError, r"'x'.*log_uniform takes \[low, high\]"),
    ("BatchNorm after the output Dense on cpu",
     lambda: fastdnn.Sequential([fastdnn.Dense(3), fastdnn.BatchNorm()], input_dim=4,
                                backend="cpu"), ValueError,
     r"BatchNorm after the output Dense is not supported by the cpu backend"),
    ("MLP(None)", lambda: MLP(None), TypeError, r"layer_sizes must be a list of widths"),
    ("MLP(12)", lambda: MLP(12), TypeError, r"layer_sizes must be a list of widths"),
    ("MLP('784')", lambda: MLP("784"), TypeError, r"layer_sizes must be a list of widths"),
    ("ragged list as X", _fit(lambda: MLP([2, 3, 3], seed=0), [[1, 2], [3]], [0, 1]),
     ValueError, r"X must be a rectangular array of numbers"),
    ("sparse X holding NaN in MLP.fit",
     lambda: _softmax().fit(__import__("scipy.sparse").sparse.csr_matrix(
         np.where(X > 1, np.nan, X)), Y3, epochs=1, verbose=0), ValueError,
     r"X contains NaN or inf \(in its stored values\)"),
    ("dropout_mask((-1, 5)) (cpu)", lambda: cpu.dropout_mask((-1, 5), 0.5, 1), ValueError,
     r"shape must be a tuple of non-negative integers"),
    ("dropout_mask((-1, 5)) (numpy)", lambda: reference.dropout_mask((-1, 5), 0.5, 1),
     ValueError, r"shape must be a tuple of non-negative integers"),
    ("dropout_mask(shape=None)", lambda: cpu.dropout_mask(None, 0.5, 1), TypeError,
     r"shape must be a tuple"),
    ("dropout_forward(key=nan) (cpu)",
     lambda: cpu.dropout_forward(np.ones((2, 3)), 0.5, float("nan")), TypeError,
     r"key must be an integer"),
    ("dropout_forward(key=nan) (numpy)",
     lambda: reference.dropout_forward(np.ones((2, 3)), 0.5, float("nan")), TypeError,
     r"key must be an integer"),
    ("dropout_forward on a 0-d array (cpu)",
     lambda: cpu.dropout_forward(np.array(1.0), 0.5, 1), ValueError,
     r"A must be an array of at least 1 dimension"),
    ("activation_forward on a 0-d array (numpy)",
     lambda: reference.activation_forward(np.array(1.0), "relu"), ValueError,
     r"Z must be an array of at least 1 dimension"),
    ("MLPClassifier(dtype='foo')", lambda: MLPClassifier(dtype="foo").fit(X, Y3), ValueError,
     r"dtype must be one of \['float32', 'float64'\], got 'foo'"),
    ("MLPRegressor(dtype='int8')", lambda: MLPRegressor(dtype="int8").fit(X, Y3), ValueError,
     r"dtype must be one of \['float32', 'float64'\]"),
    ("MLP(dtype='foo')", lambda: MLP([4, 3], dtype="foo"), ValueError,
     r"dtype must be one of \['float32', 'float64'\], got 'foo'"),
    ("MLP(seed=-1)", lambda: MLP([4, 3], seed=-1), ValueError, r"seed must be in \[0, inf\]"),
    ("course function given lr", _gd_lr, TypeError,
     r"update_parameters_with_gd\(\) takes the course's name 'learning_rate', not 'lr'"),
    ("course function given step", _adam_t, TypeError,
     r"update_parameters_with_adam\(\) takes the course's name 't', not 'step'"),
    ("course model given lr",
     lambda: initialization.model(np.ones((3, 4)), np.ones((1, 4)), lr=0.1), TypeError,
     r"model\(\) takes the course's name 'learning_rate', not 'lr'"),
    ("course.model on transposed X",
     lambda: course.model(np.ones((10, 3)), np.ones((10, 1)), [3, 4, 1], num_epochs=1,
                          print_cost=False), ValueError, r"examples as columns.*pass X\.T"),
    ("regularization.model on transposed X",
     lambda: regularization.model(np.ones((10, 3)), np.ones((1, 10)), num_iterations=1,
                                  print_cost=False), ValueError, r"X must be \(n_x, m\)"),
]


@pytest.mark.parametrize("call, error, pattern", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_input_raises_a_clear_error(call, error, pattern):
    with pytest.raises(Exception) as info:
        call()
    assert type(info.value) is error, f"obscure: {type(info.value).__name__}: {info.value}"
    if pattern is not None:
        assert re.search(pattern, str(info.value)), f"obscure: {info.value}"


def test_the_table_reports_no_silent_and_no_obscure_case():
    """The whole table in one pass, counted as the issue counts it."""
    silent, obscure = [], []
    for name, call, error, pattern in CASES:
        try:
            call()
        except Exception as exc:   # noqa: BLE001  (any error is classified below)
            if type(exc) is not error or (pattern and not re.search(pattern, str(exc))):
                obscure.append(f"{name}: {type(exc).__name__}: {exc}")
        else:
            silent.append(name)
    assert (silent, obscure) == ([], []), f"{len(silent)} silent, {len(obscure)} obscure"
    assert len(CASES) >= 50


def test_the_caller_s_arrays_are_untouched_by_a_refused_update():
    """A refused update changes nothing: the check comes before any write."""
    p, g = [np.ones(5), np.ones(7)], [np.ones(5), np.full(7, np.nan)]
    opt = fastdnn.Adam(backend="cpu")
    with pytest.raises(ValueError):
        opt.step(p, g)
    assert all((a == 1).all() for a in p)


def test_a_refused_set_weights_sets_nothing():
    m = _softmax()
    before = m.get_weights()
    with pytest.raises(ValueError):
        m.set_weights({"W1": np.zeros((5, 4)), "W2": np.full((3, 5), np.nan)})
    after = m.get_weights()
    assert all(np.array_equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 7, 16384, 16385, 100003])
def test_the_finite_check_finds_one_bad_value_anywhere(dtype, n):
    from fastdnn.cpu._common import check_finite
    for where in {0, n // 2, n - 1}:
        for bad in (np.nan, np.inf, -np.inf):
            x = np.ones(n, dtype)
            x[where] = bad
            with pytest.raises(ValueError, match=rf"x contains NaN or inf \(first at index "
                                                 rf"\({where},\)\)"):
                check_finite("x", x)
            p, g = [np.ones(3, dtype), np.ones(n, dtype)], [np.ones(3, dtype), x]
            with pytest.raises(ValueError, match=r"grad\[1\]"):
                cpu.adam_update(p, g, [np.zeros(3, dtype), np.zeros(n, dtype)],
                                [np.zeros(3, dtype), np.zeros(n, dtype)], 1, 0.1)
    check_finite("x", np.ones(n, dtype))
