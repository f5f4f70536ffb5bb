"""Drop-in functions of the "Improving Deep Neural Networks" course (deeplearning.ai, course 2).

The same names, signatures, return structures, dictionary keys, cache tuples and random
draws (``np.random.seed`` semantics) as the week 1 notebooks (initialization,
regularization, gradient checking) and the week 2 notebook (optimization methods), so code
written for them gives the numbers they print. The optimizer updates run through
fastdnn's fused kernels (``fastdnn.cpu``, or the NumPy reference when it is missing).

The notebooks reuse names with different meanings (each has its own ``model``; the
optimization notebook's ``compute_cost`` sums where the others average; the
initialization and optimization helper files key gradients "dz3", "da2" where the others
use "dZ3", "dA2"; gradient checking's ``forward_propagation`` is the 1-D J = theta * x).
So each notebook has its own module, holding its graded functions and the helpers its cells
import, under the notebook's names:

    fastdnn.course.initialization      Initialization (and init_utils)
    fastdnn.course.regularization      Regularization (and reg_utils)
    fastdnn.course.gradient_checking   Gradient Checking (and gc_utils)
    fastdnn.course.optimization        Optimization Methods (and opt_utils_v1a)

This package namespace keeps the flat API of earlier versions: every graded function once,
``forward_propagation`` / ``backward_propagation`` / ``compute_cost`` as in reg_utils, and
the optimization notebook's ``model``.

Dimension key (the course's column layout, not fastdnn's batch-first one):
    m = number of examples, n_x = input width, n_l = width of layer l, L = layers with weights;
    X is (n_x, m), Y is (1, m), W_l is (n_l, n_{l-1}), b_l is (n_l, 1), Z_l, A_l, D_l are (n_l, m).
Dictionaries: parameters "W1", "b1", ...; gradients "dW1", "db1", ... (plus "dZ3", "dA2", ...
from the backward functions); optimizer state v, s keyed "dW1", "db1", ...

The course's 3-layer helpers (LINEAR->RELU->LINEAR->RELU->LINEAR->SIGMOID) accept any
number of layers here: hidden layers are ReLU, the last is sigmoid, and the cache tuple
repeats the course's per-layer group, e.g. (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3).
"""
from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .. import backend
from .._validation import check_int, check_keep_prob, check_real

#: A course array in the column layout: X (n_x, m), Y (1, m), W_l, b_l, Z_l, A_l, ...
#: (float64 in the notebooks; labels Y may be integers).
Array = NDArray[Any]
#: "W1", "b1", ... (parameters) or "dW1", "db1", ... (gradients, optimizer state) -> array.
Arrays = dict[str, Array]
#: A forward function's cache: (Z1, A1, W1, b1, ..., ZL, AL, WL, bL), with D_l after
#: Z_l in the hidden layers' groups under dropout.
Cache = tuple[Array, ...]
_F = TypeVar("_F", bound=Callable[..., Any])

__all__ = [
    "initialize_parameters_zeros", "initialize_parameters_random", "initialize_parameters_he",
    "forward_propagation", "backward_propagation", "compute_cost", "predict", "predict_dec",
    "compute_cost_with_regularization", "backward_propagation_with_regularization",
    "forward_propagation_with_dropout", "backward_propagation_with_dropout",
    "dictionary_to_vector", "vector_to_dictionary", "gradients_to_vector",
    "forward_propagation_n", "backward_propagation_n", "gradient_check_n",
    "update_parameters_with_gd", "random_mini_batches", "initialize_velocity",
    "update_parameters_with_momentum", "initialize_adam", "update_parameters_with_adam",
    "update_lr", "schedule_lr_decay", "model",
]


# --------------------------------------------------------------------------- names
# What other libraries call the course's arguments: a call with one of these names is
# told the course's name instead of Python's bare "unexpected keyword argument".
_OTHER_NAMES = {"lr": "learning_rate", "learning_rate_init": "learning_rate",
                "step": "t", "iteration": "t", "epochs": "num_epochs",
                "n_iterations": "num_iterations", "max_iter": "num_iterations",
                "l2": "lambd", "lambda_": "lambd", "alpha": "lambd",
                "batch_size": "mini_batch_size", "eps": "epsilon", "dropout": "keep_prob"}


def course_names(fn: _F) -> _F:
    """Make ``fn`` name the course's argument when called with another library's name.

    A keyword ``fn`` lacks, but which names one of its arguments in other libraries
    (``lr``, ``step``...), raises a TypeError with the course's name for it.

    Parameters
    ----------
    fn : callable

    Returns
    -------
    callable
        ``fn`` wrapped (functools.wraps: the same name, signature and docstring).
    """
    own = inspect.signature(fn).parameters

    @functools.wraps(fn)
    def call(*args, **kwargs):
        for name in kwargs:
            if name not in own:
                hint = _OTHER_NAMES.get(name)
                if hint in own:
                    raise TypeError(f"{fn.__name__}() takes the course's name "
                                    f"{hint!r}, not {name!r}")
                break   # Python's own error below
        return fn(*args, **kwargs)
    return call


def check_columns(X: ArrayLike, Y: ArrayLike, n_x: int | None = None) -> None:
    """Check the course's layout: X (n_x, m) and Y (1, m), examples as columns.

    Parameters
    ----------
    X, Y : arrays
    n_x : int, optional
        The input width X must have.

    Raises
    ------
    ValueError
        Otherwise (suggesting X.T and Y.T when they look transposed).
    """
    X, Y = np.asarray(X), np.asarray(Y)
    if X.ndim != 2 or Y.ndim != 2 or Y.shape[0] != 1 or X.shape[1] != Y.shape[1] or (
            n_x is not None and X.shape[0] != n_x):
        want = "(n_x, m)" if n_x is None else f"({n_x}, m)"
        transposed = (Y.ndim == 2 and Y.shape[1] == 1 and X.ndim == 2
                      and X.shape[0] == Y.shape[0])
        raise ValueError(f"X must be {want} and Y (1, m), examples as columns as in the "
                         f"course, got X {X.shape} and Y {Y.shape}"
                         + ("; pass X.T and Y.T" if transposed else ""))


# --------------------------------------------------------------------------- kernels

@functools.lru_cache(maxsize=None)
def _kernels():
    """The fused CPU kernels, or the NumPy reference where fastdnn.cpu cannot be imported."""
    try:
        return backend.kernels("cpu")
    except ImportError:
        return backend.kernels("numpy")


# Below this many elements a parallel kernel launch costs more than the arithmetic it
# saves (41-element Adam on a busy 2-core machine: 9 us serial, median 16 ms with two Numba
# threads waiting on each other), and the course's networks are that small; such arrays go
# to the NumPy reference, which computes the same formulas.
SMALL_ARRAY = 4096


def _kernels_for(size):
    return _kernels() if size >= SMALL_ARRAY else backend.kernels("numpy")


def _num_layers(parameters):
    return len(parameters) // 2


def _working_copy(array, dtype, shape, inplace, name):
    """The array a kernel may overwrite: ``array`` itself when updating in place is allowed
    and possible, else a fresh C-contiguous copy (the course rebinds dictionary entries to
    new arrays and never touches the caller's arrays)."""
    if not isinstance(array, np.ndarray) and not np.isscalar(array):
        raise TypeError(f"{name} must be a NumPy array, got {type(array).__name__}")
    if np.shape(array) != shape:
        raise ValueError(f"{name} must have shape {shape}, got {np.shape(array)}")
    if (inplace and isinstance(array, np.ndarray) and array.dtype == dtype
            and array.flags.c_contiguous and array.flags.writeable):
        return array
    return np.array(array, dtype=dtype, order="C")


def _operands(parameters, grads, l, name, inplace):
    """(key, param, grad) for parameter ``name + str(l)``: a common float dtype, grad
    C-contiguous, param the array the kernel will update in place."""
    key = name + str(l)
    if key not in parameters:
        raise KeyError(f"parameters has no key {key!r} (keys: {sorted(parameters)})")
    if "d" + key not in grads:
        raise KeyError(f"grads has no key {'d' + key!r} (keys: {sorted(grads)})")
    param, grad = parameters[key], grads["d" + key]
    dtype = np.result_type(param, grad)
    if dtype not in (np.float32, np.float64):
        dtype = np.dtype(np.float64)
    shape = np.shape(param)
    try:
        grad = np.ascontiguousarray(np.broadcast_to(np.asarray(grad, dtype=dtype), shape))
    except ValueError:
        raise ValueError(f"grads['d{key}'] must have the shape of parameters['{key}'] "
                         f"{shape}, got {np.shape(grads['d' + key])}") from None
    param = _working_copy(param, dtype, shape, inplace, f"parameters['{key}']")
    return key, param, grad


def _flat(array):
    """A 1-D view of a C-contiguous array: one flat 1-D kernel launch per parameter, and the
    kernel's in-place writes land in the array itself."""
    return array.reshape(-1)


def _state(store, key, param, inplace, store_name):
    if key not in store:
        raise KeyError(f"{store_name} has no key {key!r} (keys: {sorted(store)})")
    return _working_copy(store[key], param.dtype, param.shape, inplace, f"{store_name}['{key}']")


# --------------------------------------------------------------------------- initialization

def _check_layers_dims(layers_dims):
    dims = list(layers_dims)
    if len(dims) < 2:
        raise ValueError(f"layers_dims must list at least 2 widths (input and output), got {dims}")
    for i, n in enumerate(dims):
        check_int(f"layers_dims[{i}]", n, 1)
    return dims


def initialize_parameters_zeros(layers_dims: Sequence[int]) -> Arrays:
    """All-zero weights and biases (the course's example of what not to do).

    Parameters
    ----------
    layers_dims : list of int
        Widths [n_x, n_1, ..., n_L].

    Returns
    -------
    parameters : dict
        "W1" (n_1, n_x) ... "WL", "b1" (n_1, 1) ... "bL", float64 zeros.
    """
    dims = _check_layers_dims(layers_dims)
    parameters = {}
    for l in range(1, len(dims)):
        parameters["W" + str(l)] = np.zeros((dims[l], dims[l - 1]))
        parameters["b" + str(l)] = np.zeros((dims[l], 1))
    return parameters


def initialize_parameters_random(layers_dims: Sequence[int]) -> Arrays:
    """Large random weights: ``np.random.seed(3)``, then randn(n_l, n_{l-1}) * 10; zero biases.

    Reseeds NumPy's global generator, as the course does.

    Parameters
    ----------
    layers_dims : list of int
        Widths [n_x, n_1, ..., n_L].

    Returns
    -------
    parameters : dict
        As :func:`initialize_parameters_zeros` returns them.
    """
    dims = _check_layers_dims(layers_dims)
    np.random.seed(3)
    parameters = {}
    for l in range(1, len(dims)):
        parameters["W" + str(l)] = np.random.randn(dims[l], dims[l - 1]) * 10
        parameters["b" + str(l)] = np.zeros((dims[l], 1))
    return parameters


def initialize_parameters_he(layers_dims: Sequence[int]) -> Arrays:
    """He initialization: ``np.random.seed(3)``, then randn(n_l, n_{l-1}) * sqrt(2 / n_{l-1}).

    Biases are zeros. Reseeds NumPy's global generator, as the course does. This is also the
    optimization notebook's ``initialize_parameters``.

    Parameters
    ----------
    layers_dims : list of int
        Widths [n_x, n_1, ..., n_L].

    Returns
    -------
    parameters : dict
        As :func:`initialize_parameters_zeros` returns them.
    """
    dims = _check_layers_dims(layers_dims)
    np.random.seed(3)
    parameters = {}
    for l in range(1, len(dims)):
        parameters["W" + str(l)] = np.random.randn(dims[l], dims[l - 1]) * np.sqrt(2. / dims[l - 1])
        parameters["b" + str(l)] = np.zeros((dims[l], 1))
    return parameters


# --------------------------------------------------------------------------- forward / backward

def _relu(x):
    return np.maximum(0, x)


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _forward(X, parameters, keep_prob=None):
    """Course forward pass; with ``keep_prob`` the hidden layers get inverted dropout with
    masks drawn by np.random.rand after np.random.seed(1), layer by layer."""
    L = _num_layers(parameters)
    if keep_prob is not None:
        np.random.seed(1)
    cache = []
    A = X
    for l in range(1, L + 1):
        W, b = parameters["W" + str(l)], parameters["b" + str(l)]
        Z = np.dot(W, A) + b
        if l == L:
            A = _sigmoid(Z)
            cache += [Z, A, W, b]
        elif keep_prob is None:
            A = _relu(Z)
            cache += [Z, A, W, b]
        else:
            A = _relu(Z)
            D = np.random.rand(A.shape[0], A.shape[1])
            D = (D < keep_prob).astype(int)
            A = A * D
            A = A / keep_prob
            cache += [Z, D, A, W, b]
    return A, tuple(cache)


def _unpack(cache, dropout):
    """Per-layer (Z, D, A, W, b) from a course cache tuple (D is None without dropout)."""
    cache = tuple(cache)
    hidden = 5 if dropout else 4
    if len(cache) < 4 or (len(cache) - 4) % hidden:
        raise ValueError(f"cache must be the tuple returned by the matching forward function, "
                         f"got a tuple of length {len(cache)}")
    layers, i = [], 0
    while i < len(cache) - 4:
        if dropout:
            Z, D, A, W, b = cache[i:i + 5]
        else:
            (Z, A, W, b), D = cache[i:i + 4], None
        layers.append((Z, D, A, W, b))
        i += hidden
    Z, A, W, b = cache[i:]
    layers.append((Z, None, A, W, b))
    return layers


def _backward(X, Y, layers, lambd=0.0, keep_prob=None, mean_first=False, lower=False):
    """Course backward pass over ``layers`` = [(Z, D, A, W, b), ...].

    The regularization and gradient-checking notebooks take 1/m in dW and db
    (dZ3 = A3 - Y; dW3 = 1./m * dZ3 A2^T); the optimization notebook takes it in dZ3
    (dz3 = 1./m * (a3 - Y); dW3 = dz3 a2^T) and spells the keys in lower case
    ("dz3", "da2"): ``mean_first`` and ``lower`` pick that variant.
    """
    m = X.shape[1]
    z, a = ("dz", "da") if lower else ("dZ", "dA")
    L = len(layers)
    gradients = {}
    A_L = layers[-1][2]
    dZ = 1. / m * (A_L - Y) if mean_first else A_L - Y
    for l in range(L, 0, -1):
        W = layers[l - 1][3]
        A_prev = X if l == 1 else layers[l - 2][2]
        if mean_first:
            dW = np.dot(dZ, A_prev.T)
            db = np.sum(dZ, axis=1, keepdims=True)
        else:
            dW = 1. / m * np.dot(dZ, A_prev.T)
            db = 1. / m * np.sum(dZ, axis=1, keepdims=True)
        if lambd:
            dW = dW + lambd / m * W
        gradients[z + str(l)] = dZ
        gradients["dW" + str(l)] = dW
        gradients["db" + str(l)] = db
        if l > 1:
            dA = np.dot(W.T, dZ)
            D_prev = layers[l - 2][1]
            if keep_prob is not None:
                dA = dA * D_prev
                dA = dA / keep_prob
            gradients[a + str(l - 1)] = dA
            dZ = np.multiply(dA, np.int64(A_prev > 0))
    return gradients


def forward_propagation(X: Array, parameters: Arrays) -> tuple[Array, Cache]:
    """LINEAR -> RELU -> ... -> LINEAR -> SIGMOID, as in reg_utils / opt_utils.

    Parameters
    ----------
    X : ndarray (n_x, m)
    parameters : dict
        "W1", "b1", ..., "WL", "bL".

    Returns
    -------
    A3 : ndarray (n_L, m)
        Sigmoid output.
    cache : tuple
        (Z1, A1, W1, b1, ..., ZL, AL, WL, bL).
    """
    return _forward(X, parameters)


def backward_propagation(X: Array, Y: Array, cache: Cache) -> Arrays:
    """Gradients of the mean cross-entropy, as in reg_utils.

    Parameters
    ----------
    X : ndarray (n_x, m)
    Y : ndarray (1, m)
    cache : tuple
        From :func:`forward_propagation`.

    Returns
    -------
    gradients : dict
        "dZ3", "dW3", "db3", "dA2", "dZ2", ..., "dW1", "db1" (for 3 layers), with
        dW_l = 1./m * dZ_l A_{l-1}^T and db_l = 1./m * sum(dZ_l).
    """
    return _backward(X, Y, _unpack(cache, dropout=False))


def compute_cost(a3: Array, Y: Array) -> float:
    """Mean cross-entropy, ``1./m * np.nansum(-Y log a3 - (1 - Y) log(1 - a3))`` (reg_utils).

    (The optimization notebook's helper of the same name returns the sum instead:
    :func:`fastdnn.course.optimization.compute_cost`; :func:`model` uses that sum.)

    Parameters
    ----------
    a3 : ndarray (1, m)
        Sigmoid outputs.
    Y : ndarray (1, m)
        0/1 labels.

    Returns
    -------
    cost : float
    """
    m = Y.shape[1]
    logprobs = np.multiply(-np.log(a3), Y) + np.multiply(-np.log(1 - a3), 1 - Y)
    return 1. / m * np.nansum(logprobs)


def _cost_total(a3, Y):
    logprobs = np.multiply(-np.log(a3), Y) + np.multiply(-np.log(1 - a3), 1 - Y)
    return np.sum(logprobs)


def predict(X: Array, y: Array, parameters: Arrays) -> NDArray[np.int_]:
    """0/1 predictions (a3 > 0.5) of shape (1, m); prints "Accuracy: ..." as the course does.

    Parameters
    ----------
    X : ndarray (n_x, m)
    y : ndarray (1, m)
        The true labels, for the accuracy printed.
    parameters : dict
        "W1", "b1", ..., "WL", "bL".

    Returns
    -------
    p : ndarray (1, m) of int
    """
    m = X.shape[1]
    p = np.zeros((1, m), dtype=int)
    a3, _ = forward_propagation(X, parameters)
    p[0, :] = a3[0, :] > 0.5
    print("Accuracy: " + str(np.mean((p[0, :] == y[0, :]))))
    return p


def predict_dec(parameters: Arrays, X: Array) -> NDArray[np.bool_]:
    """Boolean predictions a3 > 0.5, shape (1, m) (used by the course's decision-boundary plots).

    Parameters
    ----------
    parameters : dict
        "W1", "b1", ..., "WL", "bL".
    X : ndarray (n_x, m)

    Returns
    -------
    predictions : ndarray (1, m) of bool
    """
    a3, _ = forward_propagation(X, parameters)
    return a3 > 0.5


# --------------------------------------------------------------------------- regularization

@course_names
def compute_cost_with_regularization(A3: Array, Y: Array, parameters: Arrays,
                                     lambd: float) -> float:
    """Cross-entropy plus ``(1/m) * (lambd/2) * sum_l ||W_l||_F^2``.

    Parameters
    ----------
    A3 : ndarray (1, m)
    Y : ndarray (1, m)
    parameters : dict
        "W1" ... "WL" (biases are not penalised).
    lambd : float

    Returns
    -------
    cost : float
    """
    m = Y.shape[1]
    cross_entropy_cost = compute_cost(A3, Y)
    squares = 0
    for l in range(1, _num_layers(parameters) + 1):
        squares = squares + np.sum(np.square(parameters["W" + str(l)]))
    L2_regularization_cost = (1 / m) * (lambd / 2) * squares
    return cross_entropy_cost + L2_regularization_cost


@course_names
def backward_propagation_with_regularization(X: Array, Y: Array, cache: Cache,
                                             lambd: float) -> Arrays:
    """:func:`backward_propagation` with ``(lambd/m) * W_l`` added to each dW_l.

    Parameters
    ----------
    X, Y, cache
        As in :func:`backward_propagation`.
    lambd : float
        L2 regularization strength.

    Returns
    -------
    gradients : dict
        As :func:`backward_propagation` returns them.
    """
    return _backward(X, Y, _unpack(cache, dropout=False), lambd=lambd)


@course_names
def forward_propagation_with_dropout(X: Array, parameters: Arrays,
                                     keep_prob: float = 0.5) -> tuple[Array, Cache]:
    """Forward pass with inverted dropout on every hidden layer.

    Calls ``np.random.seed(1)``, then for each hidden layer draws
    ``D = (np.random.rand(*A.shape) < keep_prob).astype(int)`` and sets ``A = A * D / keep_prob``
    (as two steps, as the course does).

    Parameters
    ----------
    X : ndarray (n_x, m)
    parameters : dict
        "W1", "b1", ..., "WL", "bL".
    keep_prob : float in (0, 1]
        Probability of keeping a hidden unit.

    Returns
    -------
    A3 : ndarray (n_L, m)
    cache : tuple
        (Z1, D1, A1, W1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3) for 3 layers; the A_l
        stored are the dropped-out, rescaled activations.
    """
    check_keep_prob("keep_prob", keep_prob)
    return _forward(X, parameters, keep_prob=keep_prob)


@course_names
def backward_propagation_with_dropout(X: Array, Y: Array, cache: Cache,
                                      keep_prob: float) -> Arrays:
    """Backward pass of :func:`forward_propagation_with_dropout`.

    dA_l is masked by D_l and divided by keep_prob before the ReLU derivative.

    Parameters
    ----------
    X : ndarray (n_x, m)
    Y : ndarray (1, m)
    cache : tuple
        From :func:`forward_propagation_with_dropout`.
    keep_prob : float in (0, 1]
        The forward pass's.

    Returns
    -------
    gradients : dict
        The keys :func:`backward_propagation` returns.
    """
    check_keep_prob("keep_prob", keep_prob)
    return _backward(X, Y, _unpack(cache, dropout=True), keep_prob=keep_prob)


# --------------------------------------------------------------------------- gradient checking

def _param_keys(parameters):
    keys = []
    for l in range(1, _num_layers(parameters) + 1):
        keys += ["W" + str(l), "b" + str(l)]
    return keys


def dictionary_to_vector(parameters: Arrays) -> tuple[Array, list[str]]:
    """Roll "W1", "b1", ..., "WL", "bL" into one column.

    Parameters
    ----------
    parameters : dict
        "W1", "b1", ... of any number of layers.

    Returns
    -------
    theta : ndarray (n_params, 1)
    keys : list of str
        The parameter name of every entry of theta.
    """
    keys, pieces = [], []
    for key in _param_keys(parameters):
        new_vector = np.reshape(parameters[key], (-1, 1))
        keys = keys + [key] * new_vector.shape[0]
        pieces.append(new_vector)
    return np.concatenate(pieces, axis=0), keys


def _unroll(theta, shapes):
    sizes = [int(np.prod(shape)) for _, shape in shapes]
    if sum(sizes) != np.shape(theta)[0]:
        raise ValueError(f"theta has {np.shape(theta)[0]} entries, but the layer shapes "
                         f"{[shape for _, shape in shapes]} need {sum(sizes)}")
    parameters, start = {}, 0
    for (key, shape), size in zip(shapes, sizes):
        parameters[key] = theta[start:start + size].reshape(shape)
        start += size
    return parameters


def vector_to_dictionary(theta: Array, layers_dims: Sequence[int] = (4, 5, 3, 1)) -> Arrays:
    """Unroll a column from :func:`dictionary_to_vector` into "W1", "b1", ... (views of theta).

    Parameters
    ----------
    theta : ndarray (n_params, 1)
    layers_dims : list of int
        Widths [n_x, n_1, ..., n_L]; default the gradient-checking notebook's network
        [4, 5, 3, 1] (W1 (5, 4), b1 (5, 1), W2 (3, 5), b2 (3, 1), W3 (1, 3), b3 (1, 1)).

    Returns
    -------
    parameters : dict
        "W1", "b1", ..., "WL", "bL".
    """
    dims = _check_layers_dims(layers_dims)
    shapes = []
    for l in range(1, len(dims)):
        shapes += [("W" + str(l), (dims[l], dims[l - 1])), ("b" + str(l), (dims[l], 1))]
    return _unroll(theta, shapes)


def gradients_to_vector(gradients: Arrays) -> Array:
    """Roll "dW1", "db1", ..., "dWL", "dbL" into one column (n_params, 1).

    Other keys ("dZ3", "dA2", ...) are ignored, as in the course.

    Parameters
    ----------
    gradients : dict

    Returns
    -------
    theta : ndarray (n_params, 1)
    """
    L = sum(1 for key in gradients if key.startswith("dW"))
    pieces = []
    for l in range(1, L + 1):
        pieces += [np.reshape(gradients["dW" + str(l)], (-1, 1)),
                   np.reshape(gradients["db" + str(l)], (-1, 1))]
    return np.concatenate(pieces, axis=0)


def forward_propagation_n(X: Array, Y: Array, parameters: Arrays) -> tuple[float, Cache]:
    """Forward pass and mean cross-entropy ``1./m * np.sum(...)`` (gradient-checking notebook).

    Parameters
    ----------
    X : ndarray (n_x, m)
    Y : ndarray (1, m)
    parameters : dict
        "W1", "b1", ..., "WL", "bL".

    Returns
    -------
    cost : float
    cache : tuple
        As :func:`forward_propagation`.
    """
    m = X.shape[1]
    A3, cache = _forward(X, parameters)
    log_probs = np.multiply(-np.log(A3), Y) + np.multiply(-np.log(1 - A3), 1 - Y)
    cost = 1. / m * np.sum(log_probs)
    return cost, cache


def backward_propagation_n(X: Array, Y: Array, cache: Cache) -> Arrays:
    """Correct gradients for :func:`forward_propagation_n`.

    The notebook's version has planted errors in dW2 and db1 for the exercise. Same as
    :func:`backward_propagation`.

    Parameters
    ----------
    X : ndarray (n_x, m)
    Y : ndarray (1, m)
    cache : tuple
        From :func:`forward_propagation_n`.

    Returns
    -------
    gradients : dict
        As :func:`backward_propagation` returns them.
    """
    return _backward(X, Y, _unpack(cache, dropout=False))


@course_names
def gradient_check_n(parameters: Arrays, gradients: Arrays, X: Array, Y: Array,
                     epsilon: float = 1e-7, print_msg: bool = False) -> float:
    """Relative difference between ``gradients`` and centred differences of the cost.

    The cost is :func:`forward_propagation_n`'s.

    difference = ||grad - gradapprox|| / (||grad|| + ||gradapprox||), with
    gradapprox_i = (J(theta + eps e_i) - J(theta - eps e_i)) / (2 eps).

    Parameters
    ----------
    parameters : dict
        "W1", "b1", ... of any number of layers.
    gradients : dict
        "dW1", "db1", ... to check (e.g. from :func:`backward_propagation_n`).
    X : ndarray (n_x, m)
    Y : ndarray (1, m) or (m,)
    epsilon : float
    print_msg : bool
        Print the course's verdict (threshold 2e-7).

    Returns
    -------
    difference : float
    """
    check_real("epsilon", epsilon, 0.0, low_open=True)
    shapes = [(key, np.shape(parameters[key])) for key in _param_keys(parameters)]
    parameters_values, _ = dictionary_to_vector(parameters)
    grad = gradients_to_vector(gradients)
    num_parameters = parameters_values.shape[0]
    if grad.shape != parameters_values.shape:
        raise ValueError(f"gradients hold {grad.shape[0]} values but parameters hold "
                         f"{num_parameters}")
    J_plus = np.zeros((num_parameters, 1))
    J_minus = np.zeros((num_parameters, 1))
    gradapprox = np.zeros((num_parameters, 1))
    for i in range(num_parameters):
        theta_plus = np.copy(parameters_values)
        theta_plus[i][0] = theta_plus[i][0] + epsilon
        J_plus[i], _ = forward_propagation_n(X, Y, _unroll(theta_plus, shapes))
        theta_minus = np.copy(parameters_values)
        theta_minus[i][0] = theta_minus[i][0] - epsilon
        J_minus[i], _ = forward_propagation_n(X, Y, _unroll(theta_minus, shapes))
        gradapprox[i] = (J_plus[i] - J_minus[i]) / (2 * epsilon)
    difference = _relative_difference(grad, gradapprox)
    if print_msg:
        _print_verdict(difference)
    return difference


def _relative_difference(grad, gradapprox):
    """||grad - gradapprox|| / (||grad|| + ||gradapprox||), in the course's order of operations."""
    numerator = np.linalg.norm(grad - gradapprox)
    denominator = np.linalg.norm(grad) + np.linalg.norm(gradapprox)
    return numerator / denominator


def _print_verdict(difference):
    """The course's coloured verdict on a gradient check (threshold 2e-7)."""
    if difference > 2e-7:
        print("\033[93m" + "There is a mistake in the backward propagation! difference = "
              + str(difference) + "\033[0m")
    else:
        print("\033[92m" + "Your backward propagation works perfectly fine! difference = "
              + str(difference) + "\033[0m")


# --------------------------------------------------------------------------- optimization

@course_names
def update_parameters_with_gd(parameters: Arrays, grads: Arrays, learning_rate: float, *,
                              inplace: bool = False) -> Arrays:
    """One gradient-descent step, W_l -= learning_rate * dW_l, b_l -= learning_rate * db_l.

    Parameters
    ----------
    parameters : dict
        "W1", "b1", ...; its entries are replaced by the updated arrays (the dict is
        modified and returned, as in the course).
    grads : dict
        "dW1", "db1", ... of the same shapes.
    learning_rate : float
    inplace : bool, keyword-only
        False (the course's behaviour): the caller's arrays are left untouched and new arrays
        are stored in ``parameters``. True: float32/float64 C-contiguous writeable arrays are
        overwritten in place (no copy).

    Returns
    -------
    parameters : dict
    """
    for l in range(1, _num_layers(parameters) + 1):
        for name in ("W", "b"):
            key, param, grad = _operands(parameters, grads, l, name, inplace)
            _kernels_for(param.size).sgd_update(_flat(param), _flat(grad), learning_rate)
            parameters[key] = param
    return parameters


@course_names
def random_mini_batches(X: Array, Y: Array, mini_batch_size: int = 64,
                        seed: int = 0) -> list[tuple[Array, Array]]:
    """Shuffle the columns of (X, Y) and cut them into mini-batches.

    The shuffle is ``np.random.seed(seed); np.random.permutation(m)``; the last
    mini-batch holds the m % mini_batch_size left over.

    Parameters
    ----------
    X : ndarray (n_x, m)
    Y : ndarray (1, m)
    mini_batch_size : int >= 1
    seed : int
        Reseeds NumPy's global generator.

    Returns
    -------
    mini_batches : list of (mini_batch_X (n_x, k), mini_batch_Y (1, k))
    """
    check_int("mini_batch_size", mini_batch_size, 1)
    np.random.seed(seed)
    m = X.shape[1]
    mini_batches = []
    permutation = list(np.random.permutation(m))
    shuffled_X = X[:, permutation]
    shuffled_Y = Y[:, permutation].reshape((1, m))
    num_complete_minibatches = math.floor(m / mini_batch_size)
    for k in range(num_complete_minibatches):
        start, stop = k * mini_batch_size, (k + 1) * mini_batch_size
        mini_batches.append((shuffled_X[:, start:stop], shuffled_Y[:, start:stop]))
    if m % mini_batch_size != 0:
        start = num_complete_minibatches * mini_batch_size
        mini_batches.append((shuffled_X[:, start:m], shuffled_Y[:, start:m]))
    return mini_batches


def initialize_velocity(parameters: Arrays) -> Arrays:
    """v["dW1"], v["db1"], ...: float64 zeros of the parameters' shapes.

    Parameters
    ----------
    parameters : dict
        "W1", "b1", ..., "WL", "bL".

    Returns
    -------
    v : dict
    """
    v = {}
    for l in range(1, _num_layers(parameters) + 1):
        v["dW" + str(l)] = np.zeros(np.shape(parameters["W" + str(l)]))
        v["db" + str(l)] = np.zeros(np.shape(parameters["b" + str(l)]))
    return v


@course_names
def update_parameters_with_momentum(parameters: Arrays, grads: Arrays, v: Arrays,
                                    beta: float, learning_rate: float, *,
                                    inplace: bool = False) -> tuple[Arrays, Arrays]:
    """Momentum: v = beta * v + (1 - beta) * dW; W -= learning_rate * v (each W_l, b_l).

    ``parameters`` and ``v`` are modified (entries replaced) and returned, as in the course.

    Parameters
    ----------
    parameters, grads : dict
    v : dict
        Velocities keyed "dW1", "db1", ... (from :func:`initialize_velocity`).
    beta : float
        The momentum.
    learning_rate : float
    inplace : bool, keyword-only
        As in :func:`update_parameters_with_gd` (also for the arrays of ``v``).

    Returns
    -------
    parameters, v : dict, dict
    """
    for l in range(1, _num_layers(parameters) + 1):
        for name in ("W", "b"):
            key, param, grad = _operands(parameters, grads, l, name, inplace)
            velocity = _state(v, "d" + key, param, inplace, "v")
            _kernels_for(param.size).momentum_update(_flat(param), _flat(grad),
                                                     _flat(velocity), learning_rate, beta)
            parameters[key], v["d" + key] = param, velocity
    return parameters, v


def initialize_adam(parameters: Arrays) -> tuple[Arrays, Arrays]:
    """v, s: two dicts keyed "dW1", "db1", ... of float64 zeros of the parameters' shapes.

    Parameters
    ----------
    parameters : dict
        "W1", "b1", ..., "WL", "bL".

    Returns
    -------
    v, s : dict, dict
    """
    return initialize_velocity(parameters), initialize_velocity(parameters)


@course_names
def update_parameters_with_adam(parameters: Arrays, grads: Arrays, v: Arrays, s: Arrays,
                                t: int, learning_rate: float = 0.01, beta1: float = 0.9,
                                beta2: float = 0.999, epsilon: float = 1e-8, *,
                                inplace: bool = False,
                                ) -> tuple[Arrays, Arrays, Arrays, Arrays, Arrays]:
    """Adam with bias correction, as in the course.

    v = beta1 v + (1 - beta1) dW;  s = beta2 s + (1 - beta2) dW^2;
    v_corrected = v / (1 - beta1^t);  s_corrected = s / (1 - beta2^t);
    W -= learning_rate * v_corrected / (sqrt(s_corrected) + epsilon).

    Parameters
    ----------
    parameters, grads : dict
    v, s : dict
        Moment estimates keyed "dW1", "db1", ... (from :func:`initialize_adam`).
    t : int
        Adam step count including this update (>= 1).
    learning_rate, beta1, beta2, epsilon : float
    inplace : bool, keyword-only
        As in :func:`update_parameters_with_gd` (applies to parameters, v and s).

    Returns
    -------
    parameters, v, s, v_corrected, s_corrected : dict
        ``parameters``, ``v`` and ``s`` are the dicts passed in, their entries replaced by the
        updated arrays; v_corrected and s_corrected are new dicts.
    """
    v_corrected, s_corrected = {}, {}
    for l in range(1, _num_layers(parameters) + 1):
        for name in ("W", "b"):
            key, param, grad = _operands(parameters, grads, l, name, inplace)
            first = _state(v, "d" + key, param, inplace, "v")
            second = _state(s, "d" + key, param, inplace, "s")
            _kernels_for(param.size).adam_update(_flat(param), _flat(grad), _flat(first),
                                                 _flat(second), t, learning_rate, beta1,
                                                 beta2, epsilon)
            parameters[key], v["d" + key], s["d" + key] = param, first, second
            v_corrected["d" + key] = first / (1 - np.power(beta1, t))
            s_corrected["d" + key] = second / (1 - np.power(beta2, t))
    return parameters, v, s, v_corrected, s_corrected


@course_names
def update_lr(learning_rate0: float, epoch_num: int, decay_rate: float) -> float:
    """learning_rate0 / (1 + decay_rate * epoch_num).

    Parameters
    ----------
    learning_rate0 : float
        The initial learning rate.
    epoch_num : int
    decay_rate : float

    Returns
    -------
    learning_rate : float
    """
    return learning_rate0 / (1 + decay_rate * epoch_num)


@course_names
def schedule_lr_decay(learning_rate0: float, epoch_num: int, decay_rate: float,
                      time_interval: int = 1000) -> float:
    """learning_rate0 / (1 + decay_rate * floor(epoch_num / time_interval)).

    Parameters
    ----------
    learning_rate0 : float
        The initial learning rate.
    epoch_num : int
    decay_rate : float
    time_interval : int
        Epochs between decays.

    Returns
    -------
    learning_rate : float
    """
    return learning_rate0 / (1 + decay_rate * np.floor(epoch_num / time_interval))


@course_names
def model(X: Array, Y: Array, layers_dims: Sequence[int], optimizer: str = "adam",
          learning_rate: float = 0.0007, mini_batch_size: int = 64, beta: float = 0.9,
          beta1: float = 0.9, beta2: float = 0.999, epsilon: float = 1e-8,
          num_epochs: int = 5000, print_cost: bool = True,
          decay: Callable[[float, int, float], float] | None = None,
          decay_rate: float = 1) -> Arrays:
    """The optimization notebook's training loop, for any number of layers.

    He initialization (seed 3); each epoch i draws ``random_mini_batches(X, Y,
    mini_batch_size, seed=10 + i + 1)``; per mini-batch: forward, summed cost, backward,
    one "gd" / "momentum" / "adam" update (Adam's t counts mini-batches). After each
    epoch ``learning_rate = decay(learning_rate0, i, decay_rate)`` when ``decay`` is given.
    Prints "Cost after epoch i: ..." every 1000 epochs when ``print_cost`` (the course also
    plots the cost; this does not).

    Parameters
    ----------
    X : ndarray (n_x, m)
    Y : ndarray (1, m)
    layers_dims : list of int
        [n_x, n_1, ..., 1]: ReLU hidden layers, sigmoid output.
    optimizer : {"gd", "momentum", "adam"}
    learning_rate : float
    mini_batch_size : int
    beta : float
        Momentum's.
    beta1, beta2, epsilon : float
        Adam's.
    num_epochs : int
    print_cost : bool
    decay : callable, optional
        ``decay(learning_rate0, epoch, decay_rate)``, e.g. :func:`update_lr` or
        :func:`schedule_lr_decay`.
    decay_rate : float

    Returns
    -------
    parameters : dict
    """
    if optimizer not in ("gd", "momentum", "adam"):
        raise ValueError(f"optimizer must be one of ['adam', 'gd', 'momentum'], got {optimizer!r}")
    check_int("num_epochs", num_epochs, 0)
    check_columns(X, Y, layers_dims[0])
    t = 0
    seed = 10
    m = X.shape[1]
    learning_rate0 = learning_rate
    parameters = initialize_parameters_he(layers_dims)
    # One flat buffer each for parameters, gradients and optimizer state, with the dict
    # entries as views into it: an update is then a single 1-D kernel call per mini-batch
    # (the course's arithmetic, element by element, so the numbers are the course's).
    keys = _param_keys(parameters)
    flat = np.concatenate([parameters[key].reshape(-1) for key in keys])
    start = 0
    for key in keys:
        shape = parameters[key].shape
        parameters[key] = flat[start:start + parameters[key].size].reshape(shape)
        start += parameters[key].size
    flat_grad = np.empty_like(flat)
    first, second = np.zeros_like(flat), np.zeros_like(flat)
    k = _kernels_for(flat.size)
    for i in range(num_epochs):
        seed = seed + 1
        minibatches = random_mini_batches(X, Y, mini_batch_size, seed)
        cost_total = 0
        for minibatch_X, minibatch_Y in minibatches:
            a3, caches = _forward(minibatch_X, parameters)
            cost_total += _cost_total(a3, minibatch_Y)
            grads = _backward(minibatch_X, minibatch_Y, _unpack(caches, dropout=False),
                              mean_first=True, lower=True)
            np.concatenate([grads["d" + key].reshape(-1) for key in keys], out=flat_grad)
            if optimizer == "gd":
                k.sgd_update(flat, flat_grad, learning_rate)
            elif optimizer == "momentum":
                k.momentum_update(flat, flat_grad, first, learning_rate, beta)
            else:
                t = t + 1
                k.adam_update(flat, flat_grad, first, second, t, learning_rate, beta1, beta2,
                              epsilon)
        cost_avg = cost_total / m
        if decay:
            learning_rate = decay(learning_rate0, i, decay_rate)
        if print_cost and i % 1000 == 0:
            print("Cost after epoch %i: %f" % (i, cost_avg))
            if decay:
                print("learning rate after epoch %i: %f" % (i, learning_rate))
    return {key: parameters[key].copy() for key in keys}
