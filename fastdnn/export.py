"""Export for serving: a trained model as a standard ONNX graph (the optional ``onnx``
extra, ``pip install fastdnn[onnx]``).

N = batch size (a symbolic dimension of the graph), n_x = input width, k = output width,
l = block number from 1 (as in ``get_weights``: "W1", "gamma1", ...).

Each dense block becomes Gemm(X, W, b, transB=1) (W kept (n_out, n_in), as fastdnn
stores it), then BatchNormalization on the running statistics, either folded into the
Gemm's W and b (the default: one op fewer per block) or as an explicit node, then its
hidden activation: Relu, LeakyRelu (Max(z, 0.01 z) in float64), Tanh, Sigmoid, none for
identity. Dropout is the identity at inference and leaves no node. The last block's
output is the graph output "logits"; the output activation (Softmax, Sigmoid, Exp) gives
what ``predict_proba`` and ``predict`` return. The graph computes in the model's dtype
(float32 or float64: onnxruntime's CPU kernels take both for every op used here).
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from ._files import atomic_replace
from ._validation import check_bool, check_int
from .reference.activations import LEAKY_RELU_SLOPE

if TYPE_CHECKING:
    import onnx

    from .model import Sequential
    from .sklearn import MLPClassifier, MLPRegressor

#: The opset written when none is asked for: ops as in ONNX 1.12 / onnxruntime 1.12 and
#: later, so that older serving runtimes load the file too.
DEFAULT_OPSET = 17
#: The oldest opset accepted: Softmax works on one axis from 13 on (before, it
#: flattened the trailing axes: the same on (N, k), but one rule is simpler to state).
MIN_OPSET = 13


def _leaky_relu(graph, z, name):
    """z if z > 0 else 0.01 z, as fastdnn computes it in the graph's dtype."""
    if graph.dtype == np.float32:
        return graph.node("LeakyRelu", [z], name, alpha=LEAKY_RELU_SLOPE)
    # ONNX holds LeakyRelu's slope as a float32 attribute, 0.01 only to 2e-10, and
    # onnxruntime has no float64 PRelu: max(z, slope z) is z > 0 ? z : slope z
    slope = graph.constant("leaky_relu_slope", LEAKY_RELU_SLOPE)
    return graph.node("Max", [z, graph.node("Mul", [z, slope], f"{name}_negative")],
                      name)


#: Hidden activation -> function(graph, input name, output name) adding its nodes.
HIDDEN_ACTIVATIONS = {
    "identity": lambda graph, z, name: z,
    "relu": lambda graph, z, name: graph.node("Relu", [z], name),
    "leaky_relu": _leaky_relu,
    "tanh": lambda graph, z, name: graph.node("Tanh", [z], name),
    "sigmoid": lambda graph, z, name: graph.node("Sigmoid", [z], name),
}


def to_onnx(model: Sequential, path: str | os.PathLike[str] | None = None, *,
            fold_batchnorm: bool = True, opset: int | None = None) -> onnx.ModelProto:
    """A built fastdnn model as an ONNX graph that predicts as the model does.

    Parameters
    ----------
    model : fastdnn.MLP or fastdnn.Sequential
        Built (fitted, or made with ``input_dim``), on any backend: its current weights
        and BatchNorm running statistics are exported.
    path : str or os.PathLike, optional
        Where to write the graph too (written whole or not at all).
    fold_batchnorm : bool, default True
        Fold each BatchNorm (running statistics, gamma, beta) into the preceding Gemm's
        W and b; False writes explicit BatchNormalization nodes.
    opset : int, optional
        The ONNX opset, from 13 to the installed onnx's newest; default 17.

    Returns
    -------
    onnx.ModelProto
        Checked by ``onnx.checker.check_model``. Input "X" (N, n_x) in the model's
        dtype (cast float64 data to float32 for a float32 model). Outputs:

        - softmax or sigmoid output: "probabilities" (N, k) = ``predict_proba``;
          "predictions" = ``predict``: int64 class indices (N,) for softmax, int64 0/1
          labels for sigmoid ((N,) when k = 1, else (N, k)); "logits" (N, k).
        - identity or exp output: "predictions" = ``predict``: the values, or exp(z)
          for exp ((N,) when k = 1, else (N, k)); "logits" (N, k).

    Raises
    ------
    ImportError
        When the onnx package is missing.
    fastdnn.NotFittedError
        When the model is not built (no input width, so no weights yet). A built
        model is exported with the weights it has, trained or not.

    Notes
    -----
    The outputs agree with fastdnn's to rounding, not bit for bit: a float32 model
    predicts through float64 on the CPU backends (``batch_invariant``), the graph in
    float32; folding rounds W * gamma / sqrt(var + eps) once more. ONNX holds
    BatchNormalization's epsilon as a float32 attribute.
    """
    onnx = _import_onnx()
    from .model import NotFittedError, Sequential
    if not isinstance(model, Sequential):
        raise TypeError(f"model must be a fastdnn.MLP or fastdnn.Sequential, got "
                        f"{type(model).__name__}; for fastdnn.sklearn's estimators use "
                        "sklearn_to_onnx")
    if model.input_dim is None:
        raise NotFittedError(f"this {type(model).__name__} is not built yet, so it has "
                             "no weights to export: fit it (or pass input_dim)")
    graph = _Graph(onnx, model.dtype)
    logits = _add_blocks(graph, model, check_bool("fold_batchnorm", fold_batchnorm))
    k = model.blocks[-1].n_out
    if model.output == "softmax":
        graph.output(graph.node("Softmax", [logits], "probabilities", axis=1),
                     model.dtype, k)
        graph.output(graph.node("ArgMax", [logits], "predictions", axis=1, keepdims=0),
                     np.int64)
    elif model.output == "sigmoid":
        graph.output(graph.node("Sigmoid", [logits], "probabilities"), model.dtype, k)
        positive = graph.node("Greater", [logits, graph.constant("zero", 0)], "positive")
        labels = graph.node("Cast", [positive], "labels", to=onnx.TensorProto.INT64)
        _add_predictions(graph, labels, np.int64, k)
    else:
        values = graph.node("Exp", [logits], "means") if model.output == "exp" else logits
        _add_predictions(graph, values, model.dtype, k)
    graph.output(logits, model.dtype, k)
    return _finish(onnx, graph, model, repr(model), opset, path)


def sklearn_to_onnx(estimator: MLPClassifier | MLPRegressor,
                    path: str | os.PathLike[str] | None = None, *,
                    fold_batchnorm: bool = True, opset: int | None = None,
                    ) -> onnx.ModelProto:
    """A fitted fastdnn.sklearn MLPClassifier or MLPRegressor as an ONNX graph.

    Parameters
    ----------
    estimator : fastdnn.sklearn.MLPClassifier or fastdnn.sklearn.MLPRegressor
        Fitted.
    path, fold_batchnorm, opset :
        As in ``to_onnx``.

    Returns
    -------
    onnx.ModelProto
        Input "X" (N, n_features_in_) in the training dtype
        (``estimator.model_.dtype``). A classifier's outputs: "probabilities" =
        ``predict_proba`` (N, n_classes), (N, 2) for two classes; "predictions" =
        ``predict``: labels from ``classes_`` (numbers or strings) (N,), or the int64
        indicator matrix (N, k) for multi-label y; "logits" (N, k). A regressor's:
        "predictions" = ``predict`` ((N,) for one target, else (N, k)); "logits" (N, k).

    Raises
    ------
    ImportError
        When the onnx package is missing.
    sklearn.exceptions.NotFittedError
        When the estimator is not fitted.
    """
    onnx = _import_onnx()
    from sklearn.utils.validation import check_is_fitted

    from .sklearn import MLPClassifier, MLPRegressor
    if not isinstance(estimator, (MLPClassifier, MLPRegressor)):
        raise TypeError(f"estimator must be a fastdnn.sklearn MLPClassifier or "
                        f"MLPRegressor, got {type(estimator).__name__}")
    check_is_fitted(estimator, "model_")
    # coefs_ / intercepts_ assigned by hand become the model's, as before a predict
    estimator._adopt_assigned()
    model = estimator.model_
    graph = _Graph(onnx, model.dtype)
    logits = _add_blocks(graph, model, check_bool("fold_batchnorm", fold_batchnorm))
    k = estimator.n_outputs_
    if isinstance(estimator, MLPClassifier):
        _add_classifier_outputs(onnx, graph, estimator, logits)
    else:
        values = graph.node("Exp", [logits], "means") if model.output == "exp" else logits
        _add_predictions(graph, values, model.dtype, k)
    graph.output(logits, model.dtype, k)
    return _finish(onnx, graph, model, type(estimator).__name__, opset, path)


# ---------------------------------------------------------------------- building
class _Graph:
    """The nodes, initializers and outputs of one graph; constants default to its
    dtype."""

    def __init__(self, onnx, dtype):
        self.onnx, self.dtype = onnx, np.dtype(dtype)
        self.nodes, self.initializers, self.outputs = [], [], []
        self._constants = set()

    def constant(self, name, value, dtype=None):
        """Add an initializer (once: later calls with the same name reuse it)."""
        if name not in self._constants:
            array = np.asarray(value, dtype=self.dtype if dtype is None else dtype)
            self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
            self._constants.add(name)
        return name

    def node(self, op, inputs, output, **attributes):
        """Add one node, named after its single output; returns the output's name."""
        self.nodes.append(self.onnx.helper.make_node(op, inputs, [output], name=output,
                                                     **attributes))
        return output

    def output(self, name, dtype, k=None):
        """Declare ``name`` a graph output of ``dtype``, (N,) or with ``k`` (N, k)."""
        helper = self.onnx.helper
        shape = ["N"] if k is None else ["N", k]
        self.outputs.append(helper.make_tensor_value_info(
            name, helper.np_dtype_to_tensor_dtype(np.dtype(dtype)), shape))


def _add_blocks(graph, model, fold_batchnorm):
    """Add the dense blocks on input "X"; returns the name of the logits (N, k)."""
    params = stats = model.get_weights()   # with BatchNorm's running statistics
    current, last = "X", len(model.blocks)
    for l, block in enumerate(model.blocks, start=1):
        W, b = params[f"W{l}"], params.get(f"b{l}")
        explicit_bn = block.bn is not None and not fold_batchnorm
        if block.bn is not None and fold_batchnorm:
            # gamma (W x + b - mean) / sqrt(var + eps) + beta, in float64, rounded once
            scale = params[f"gamma{l}"] / np.sqrt(
                stats[f"running_var{l}"].astype(np.float64) + block.bn.eps)
            W = W * scale[:, None]
            b = (0.0 if b is None else b) - stats[f"running_mean{l}"] * scale + \
                params[f"beta{l}"]
        inputs = [current, graph.constant(f"W{l}", W)]
        if b is not None:
            inputs.append(graph.constant(f"b{l}", b))
        current = graph.node("Gemm", inputs, "logits" if l == last and not explicit_bn
                             else f"dense{l}", transB=1)
        if explicit_bn:
            names = [graph.constant(name, source[name]) for name, source in (
                (f"gamma{l}", params), (f"beta{l}", params), (f"running_mean{l}", stats),
                (f"running_var{l}", stats))]
            current = graph.node("BatchNormalization", [current] + names,
                                 "logits" if l == last else f"batchnorm{l}",
                                 epsilon=float(block.bn.eps))
        if l < last:
            if block.activation not in HIDDEN_ACTIVATIONS:
                raise ValueError(f"block {l}'s activation {block.activation!r} has no "
                                 f"ONNX export; exportable: {sorted(HIDDEN_ACTIVATIONS)}")
            current = HIDDEN_ACTIVATIONS[block.activation](graph, current,
                                                           f"{block.activation}{l}")
    return current


def _add_predictions(graph, values, dtype, k, name="predictions"):
    """Output ``values`` (N, k) as predict returns it: (N,) when k = 1."""
    if k == 1:
        shape = graph.constant("vector_shape", [-1], np.int64)
        graph.output(graph.node("Reshape", [values, shape], name), dtype)
    else:   # an Identity, since ``values`` may be another output ("logits")
        graph.output(graph.node("Identity", [values], name), dtype, k)


def _add_classifier_outputs(onnx, graph, estimator, logits):
    """Add predict_proba's and predict's outputs of an MLPClassifier."""
    dtype, k = estimator.model_.dtype, estimator.n_outputs_
    classes = _class_labels(estimator.classes_)
    if estimator.out_activation_ == "softmax":
        proba = graph.node("Softmax", [logits], "probabilities", axis=1)
        index = graph.node("ArgMax", [proba], "class_index", axis=1, keepdims=0)
        graph.output(proba, dtype, k)
        labels = graph.constant("classes", classes, classes.dtype)
        graph.output(graph.node("Gather", [labels, index], "predictions"), classes.dtype)
        return
    positive = graph.node("Sigmoid", [logits], "positive_probability")
    # LabelBinarizer's threshold: a label is on when its probability is above one half
    on = graph.node("Greater", [positive, graph.constant("half", 0.5)], "on")
    on = graph.node("Cast", [on], "on_int64", to=onnx.TensorProto.INT64)
    if k > 1:                          # multi-label: sigmoid units, an indicator matrix
        graph.output(graph.node("Identity", [positive], "probabilities"), dtype, k)
        graph.output(graph.node("Identity", [on], "predictions"), np.int64, k)
        return
    negative = graph.node("Sub", [graph.constant("one", 1), positive],
                          "negative_probability")
    graph.output(graph.node("Concat", [negative, positive], "probabilities", axis=1),
                 dtype, 2)
    index = graph.node("Reshape", [on, graph.constant("vector_shape", [-1], np.int64)],
                       "class_index")
    # a single class seen in fit is predicted whatever its probability
    pair = classes if len(classes) == 2 else np.repeat(classes[:1], 2)
    labels = graph.constant("classes", pair, pair.dtype)
    graph.output(graph.node("Gather", [labels, index], "predictions"), pair.dtype)


def _class_labels(classes):
    """classes_ as an array ONNX can hold: numbers and bools as they are, strings as
    an object array of str."""
    classes = np.asarray(classes)
    if classes.dtype.kind in "biuf":
        return classes
    if classes.dtype.kind in "UO" and all(isinstance(c, str) for c in classes):
        return np.array([str(c) for c in classes], dtype=object)
    raise TypeError(f"estimator.classes_ must hold numbers, bools or strings to be "
                    f"exported, got dtype {classes.dtype}: {classes[:5]!r}")


def _finish(onnx, graph, model, description, opset, path):
    """The checked ModelProto, written to ``path`` when given."""
    helper = onnx.helper
    opset = DEFAULT_OPSET if opset is None else check_int(
        "opset", opset, MIN_OPSET, onnx.defs.onnx_opset_version())
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(model.dtype))
    inputs = [helper.make_tensor_value_info("X", elem, ["N", model.input_dim])]
    names = ", ".join(v.name for v in graph.outputs)
    graph_proto = helper.make_graph(graph.nodes, "fastdnn", inputs, graph.outputs,
                                    graph.initializers)
    opsets = [helper.make_opsetid("", opset)]
    # the oldest IR version that holds this opset, so that older runtimes load it
    proto = helper.make_model(
        graph_proto, opset_imports=opsets,
        ir_version=helper.find_min_ir_version_for(opsets),
        producer_name="fastdnn", producer_version=_version(),
        doc_string=f"{description}: input X (N, {model.input_dim}) {model.dtype}; "
                   f"outputs {names}")
    onnx.checker.check_model(proto, full_check=True)
    if path is not None:
        with atomic_replace(os.fspath(path)) as tmp:
            with open(tmp, "wb") as f:
                f.write(proto.SerializeToString())
    return proto


def _import_onnx():
    try:
        import onnx
        import onnx.checker
        import onnx.numpy_helper
    except ImportError as err:
        raise ImportError("exporting to ONNX needs the onnx package: pip install "
                          "fastdnn[onnx] (or pip install onnx)") from err
    return onnx


def _version():
    from . import __version__
    return __version__
