"""Tests for fastdnn.export: ONNX graphs run by onnxruntime predict as fastdnn does, for
every layer kind (hidden activations, BatchNorm folded or explicit, dropout, each
output), both dtypes, the CPU and NumPy backends, Sequential and MLP, and the
scikit-learn estimators; the file round trip and the errors.

n = rows (odd, and a batch of 1), n_x = input width, k = output width.
"""
import sys
import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import fastdnn  # noqa: E402
from fastdnn import Activation, BatchNorm, Dense, Dropout, Sequential  # noqa: E402
from fastdnn.export import sklearn_to_onnx, to_onnx  # noqa: E402
from helpers import assert_close  # noqa: E402

N_X = 5


def _tolerance(dtype, expected, explicit_bn=False):
    """rtol and atol for assert_close. Float32 graphs compute in float32 where
    fastdnn's CPU backends go through float64, so errors grow with the values; float64
    ones differ by the order of operations only, but for explicit BatchNormalization,
    whose epsilon ONNX holds as a float32 attribute (1e-3 to 5e-11)."""
    scale = max(1.0, float(np.abs(expected).max()))
    if np.dtype(dtype) == np.float32:
        return {"rtol": 1e-5, "atol": 2e-6 * scale}
    if explicit_bn:
        return {"rtol": 1e-8, "atol": 1e-9 * scale}
    return {"rtol": 1e-9, "atol": 1e-11 * scale}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(16)
    X = rng.normal(size=(37, N_X))
    return X, rng


def _run(proto, X):
    """{output name: array} of onnxruntime on X."""
    session = ort.InferenceSession(proto.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {"X": X})))


def _targets(output, k, n, rng):
    if output == "softmax":
        return rng.integers(0, k, n)
    if output == "sigmoid":
        return rng.integers(0, 2, (n, k)).astype(float)
    if output == "exp":
        return rng.poisson(2.0, (n, k)).astype(float)
    return rng.normal(size=(n, k))


def _trained(model, data, epochs=2):
    X, rng = data
    k = model.blocks[-1].n_out
    model.fit(X, _targets(model.output, k, len(X), rng), epochs=epochs, batch_size=8,
              verbose=0)
    return model


def _check_model(model, proto, X):
    """The graph's outputs equal the model's on X and on its first row alone."""
    explicit_bn = "BatchNormalization" in _op_types(proto)
    for rows in (X, X[:1]):
        got = _run(proto, rows.astype(model.dtype))
        expected = {"logits": model.decision_function(rows)}
        if model.output in ("softmax", "sigmoid"):
            expected["probabilities"] = model.predict_proba(rows)
            assert np.array_equal(got["predictions"], model.predict(rows))
            assert got["predictions"].dtype == np.int64
        else:
            expected["predictions"] = model.predict(rows)
        assert set(got) == set(expected) | {"predictions"}
        for name, want in expected.items():
            assert got[name].dtype == model.dtype, name
            assert_close(got[name], want, **_tolerance(model.dtype, want, explicit_bn),
                         name=name)


def _op_types(proto):
    return [node.op_type for node in proto.graph.node]


# ---------------------------------------------------------------- fastdnn models
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "tanh", "sigmoid",
                                        "identity"])
def test_hidden_activations(activation, dtype, data):
    model = _trained(fastdnn.MLP([N_X, 7, 6, 3], activation=activation, dtype=dtype,
                                 backend="numpy", seed=1), data)
    proto = to_onnx(model)
    _check_model(model, proto, data[0])
    expected_op = {"relu": "Relu", "tanh": "Tanh", "sigmoid": "Sigmoid",
                   "leaky_relu": "LeakyRelu" if dtype == "float32" else "Max"}
    assert _op_types(proto).count("Gemm") == 3
    if activation in expected_op:
        assert _op_types(proto).count(expected_op[activation]) == 2


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("fold", [True, False])
def test_batchnorm_and_dropout(fold, dtype, backend, data):
    model = _trained(fastdnn.MLP([N_X, 8, 6, 3], batchnorm=True, keep_prob=[0.8, 0.6],
                                 dtype=dtype, backend=backend, seed=2), data)
    stats = model.get_batchnorm_stats()
    assert not np.allclose(stats["running_var1"], 1)   # training moved them
    proto = to_onnx(model, fold_batchnorm=fold)
    _check_model(model, proto, data[0])
    ops = _op_types(proto)
    assert ops.count("BatchNormalization") == (0 if fold else 2)
    assert "Dropout" not in ops


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("output, k", [("softmax", 3), ("sigmoid", 1), ("sigmoid", 2),
                                       ("identity", 1), ("identity", 2), ("exp", 1)])
def test_outputs(output, k, dtype, data):
    model = _trained(fastdnn.MLP([N_X, 6, k], output=output, dtype=dtype,
                                 backend="numpy", seed=3), data)
    proto = to_onnx(model)
    _check_model(model, proto, data[0])
    shapes = {o.name: [d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim]
              for o in proto.graph.output}
    assert shapes["logits"] == ["N", k]
    assert shapes["predictions"] == (["N"] if k == 1 or output == "softmax" else ["N", k])


def _sequential(dtype, backend, output_batchnorm=True):
    """Every layer kind in one stack: a Dense without bias or activation, BatchNorm
    with its own eps and momentum, dropout, and BatchNorm on the output layer."""
    return Sequential([
        Dense(6, use_bias=False), Activation("tanh"),
        Dense(5, init="xavier"),
        Dense(7), BatchNorm(momentum=0.5, eps=1e-3), Activation("leaky_relu"),
        Dropout(keep_prob=0.7),
        Dense(4), Activation("sigmoid"),
        Dense(3), *([BatchNorm(momentum=0.6)] if output_batchnorm else []),
        Activation("softmax"),
    ], input_dim=N_X, dtype=dtype, backend=backend, seed=4)


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("fold", [True, False])
def test_sequential(fold, dtype, backend, data):
    # (the CPU engine refuses a BatchNorm on the output layer: test_output_batchnorm...)
    model = _trained(_sequential(dtype, backend, output_batchnorm=backend != "cpu"),
                     data)
    proto = to_onnx(model, fold_batchnorm=fold)
    _check_model(model, proto, data[0])
    initializers = {init.name for init in proto.graph.initializer}
    assert "b1" not in initializers           # Dense(use_bias=False)
    bn = [n for n in proto.graph.node if n.op_type == "BatchNormalization"]
    if not fold:
        eps = [onnx.helper.get_attribute_value(n.attribute[0]) for n in bn]
        assert eps == pytest.approx([1e-3, 1e-5][:len(bn)], rel=1e-6)


def test_output_batchnorm_is_refused_on_cpu(data):
    # the CPU engine normalizes hidden layers only; it once skipped an output BatchNorm
    with pytest.raises(ValueError, match="BatchNorm after the output Dense"):
        _sequential("float64", "cpu")


def test_graph_interface(data):
    model = _trained(fastdnn.MLP([N_X, 4, 3], batchnorm=True, seed=5, backend="numpy"),
                     data)
    proto = to_onnx(model)
    (x,) = proto.graph.input
    assert x.name == "X"
    assert x.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    dims = [d.dim_param or d.dim_value for d in x.type.tensor_type.shape.dim]
    assert dims == ["N", N_X]
    assert [o.name for o in proto.graph.output] == ["probabilities", "predictions",
                                                    "logits"]
    assert proto.opset_import[0].version == 17
    assert proto.ir_version == 8                 # the oldest that holds opset 17
    assert proto.producer_name == "fastdnn"
    assert _op_types(proto) == ["Gemm", "Relu", "Gemm", "Softmax", "ArgMax"]


def test_opset_13(data):
    model = _trained(fastdnn.MLP([N_X, 6, 2], batchnorm=True, activation="leaky_relu",
                                 dtype="float64", backend="numpy", seed=6), data)
    proto = to_onnx(model, opset=13, fold_batchnorm=False)
    assert proto.opset_import[0].version == 13
    _check_model(model, proto, data[0])


def test_file_round_trip(tmp_path, data):
    model = _trained(fastdnn.MLP([N_X, 6, 3], batchnorm=True, seed=7, backend="numpy"),
                     data)
    path = tmp_path / "model.onnx"
    proto = to_onnx(model, path)
    assert onnx.load(path) == proto
    assert list(tmp_path.iterdir()) == [path]     # no temporary file left behind
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    X = data[0].astype(np.float32)
    assert_close(session.run(["probabilities"], {"X": X})[0], model.predict_proba(X),
                 rtol=1e-5, atol=2e-6)
    to_onnx(model, str(path), fold_batchnorm=False)   # a str path, replacing the file
    assert onnx.load(path) != proto


def test_unbuilt_model():
    model = Sequential([Dense(3), Activation("softmax")])
    with pytest.raises(fastdnn.NotFittedError, match="not built"):
        to_onnx(model)


def test_bad_arguments(data):
    model = fastdnn.MLP([N_X, 3], backend="numpy", seed=8)
    with pytest.raises(TypeError, match="model must be a fastdnn.MLP"):
        to_onnx(object())
    with pytest.raises(ValueError, match=r"opset must be in \[13, "):
        to_onnx(model, opset=12)
    with pytest.raises(TypeError, match="fold_batchnorm must be True or False"):
        to_onnx(model, fold_batchnorm="no")


def test_missing_onnx(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)    # import onnx raises ImportError
    with pytest.raises(ImportError, match=r"pip install fastdnn\[onnx\]"):
        to_onnx(fastdnn.MLP([N_X, 3], backend="numpy"))


# ---------------------------------------------------------------- scikit-learn
def _fit(estimator, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # ConvergenceWarning after 2 epochs
        return estimator.fit(X, y)


def _check_estimator(estimator, X):
    """The graph's outputs equal predict_proba's and predict's (labels exactly)."""
    dtype = estimator.model_.dtype
    proto = sklearn_to_onnx(estimator)
    for rows in (X, X[:1]):
        got = _run(proto, rows.astype(dtype))
        want = estimator.predict(rows)
        if hasattr(estimator, "predict_proba"):
            assert np.array_equal(got["predictions"], want)
            want = estimator.predict_proba(rows)
            assert_close(got["probabilities"], want, **_tolerance(dtype, want),
                         name="probabilities")
        else:
            assert_close(got["predictions"], want, **_tolerance(dtype, want),
                         name="predictions")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["multiclass", "binary", "multilabel", "one class"])
def test_sklearn_classifier(kind, dtype, data):
    from fastdnn.sklearn import MLPClassifier
    X, rng = data
    X = X.astype(dtype)
    names = np.array(["cat", "dog", "emu"])
    y = {"multiclass": lambda: names[rng.integers(0, 3, len(X))],
         "binary": lambda: rng.choice([-3, 7], len(X)),
         "multilabel": lambda: rng.integers(0, 2, (len(X), 3)),
         "one class": lambda: np.full(len(X), 4)}[kind]()
    estimator = _fit(MLPClassifier((6, 5), max_iter=2, batchnorm=kind == "binary",
                                   keep_prob=0.9, backend="numpy", random_state=0), X, y)
    assert estimator.model_.dtype == dtype
    _check_estimator(estimator, X)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("loss, targets", [("squared_error", 1), ("squared_error", 2),
                                           ("poisson", 1)])
def test_sklearn_regressor(loss, targets, dtype, data):
    from fastdnn.sklearn import MLPRegressor
    X, rng = data
    X = X.astype(dtype)
    y = rng.poisson(2.0, (len(X), targets)) if loss == "poisson" else \
        rng.normal(size=(len(X), targets))
    estimator = _fit(MLPRegressor(loss=loss, hidden_layer_sizes=(6,), max_iter=2,
                                  activation="tanh", batchnorm=True, backend="cpu",
                                  random_state=0), X, y[:, 0] if targets == 1 else y)
    _check_estimator(estimator, X)


def test_sklearn_assigned_weights_and_file(tmp_path, data):
    from fastdnn.sklearn import MLPRegressor
    X, rng = data
    estimator = _fit(MLPRegressor(hidden_layer_sizes=(4,), max_iter=2, backend="numpy",
                                  random_state=0), X, rng.normal(size=len(X)))
    estimator.coefs_[0] = np.ones_like(estimator.coefs_[0])   # as scikit-learn allows
    path = tmp_path / "regressor.onnx"
    proto = sklearn_to_onnx(estimator, path, fold_batchnorm=False)
    assert onnx.load(path) == proto
    W1 = {i.name: i for i in proto.graph.initializer}["W1"]
    assert (onnx.numpy_helper.to_array(W1) == 1).all()
    got = _run(proto, X)["predictions"]
    assert_close(got, estimator.predict(X), rtol=1e-9, atol=1e-11)


def test_sklearn_errors():
    from sklearn.exceptions import NotFittedError
    from fastdnn.sklearn import MLPClassifier
    with pytest.raises(NotFittedError):
        sklearn_to_onnx(MLPClassifier())
    with pytest.raises(TypeError, match="estimator must be a fastdnn.sklearn"):
        sklearn_to_onnx(fastdnn.MLP([N_X, 3], backend="numpy"))


def test_the_methods_export_what_the_functions_do(data, tmp_path):
    model = _trained(fastdnn.MLP([N_X, 4, 3], seed=5, backend="cpu"), data)
    proto = model.to_onnx(tmp_path / "m.onnx")
    _check_model(model, proto, data[0])
    assert (tmp_path / "m.onnx").exists()
    with pytest.raises(fastdnn.NotFittedError):
        fastdnn.MLP([N_X, 4, 3], seed=5).to_onnx()
    from fastdnn.sklearn import MLPClassifier
    est = MLPClassifier(hidden_layer_sizes=(4,), max_iter=3).fit(data[0],
                                                                 np.arange(37) % 3)
    assert est.to_onnx().graph.output[0].name == "probabilities"
