"""The caviar fast path: K MLPs of one architecture, each with its own hyperparameters,
trained together on the same mini-batches.

K = number of models, m = batch size, n = examples, n_in, n_out = layer widths,
k = classes, P = parameters per model, G = models per chunk of the compiled engine.

Two engines (``train_caviar(..., backend=...)``):

- ``"numpy"``, the oracle: weights stacked W_l: (K, n_out, n_in) inside one (K, P) flat
  buffer (W1, b1, W2, b2, ... per model, the MLP's layout), Adam's moments (K, P) too,
  per-model hyperparameters (lr, beta1, beta2, eps, l2, keep_prob, decay) as (K,)
  arrays. A step is a handful of stacked NumPy calls (np.matmul over the K models). Its
  operations are the reference's, in the same order and dtype, so each model matches
  ``fastdnn.MLP(..., backend="numpy").fit`` with the same seed BIT FOR BIT.
- ``"cpu"``, the training engine (fastdnn.engine, which also trains ``MLP.fit``; the
  default without a GPU): each epoch of all K models is one compiled call. Parameters
  are layer-major (W1 of all models contiguous, (K n_1, n_0)), so the first layer of a
  group of G models is one GEMM, X @ W1_group^T, and so is its gradient; the engine's
  threads take groups in turn. It matches the NumPy engine TO ROUNDING, not bit for bit
  (about 1e-15 relative per step in float64, 1e-7 in float32; training amplifies it, so
  tests allow 1e-10 and 1e-5 over a few epochs): BLAS blocks a (G n_1)-wide GEMM
  differently from K narrow ones, the sums run in another order, and Adam's formula is
  arranged with one division. Its results do not depend on the thread count (groups are
  fixed by G and every reduction has a fixed order). It also trains BatchNorm and every
  optimizer.
- ``"cuda"``: fastdnn.cuda.caviar, the compiled engine's layout on a GPU.

Each model follows what ``MLP.fit`` does with the same seed: He initialisation from
default_rng([seed, 0]), epoch order from default_rng([seed, 1]) (all models share the
first model's order: one batch for all; augmented batches, with ``augment``, by the
first model's draws too), dropout masks from dropout_key(seed, step, layer), Adam with
bias correction, inverse-time decay per epoch.
"""
from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Union

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from .._cache import harden_cache
from .._validation import check_choice, check_int
from ..augment import as_augment
from ..layers import HIDDEN_ACTIVATIONS
from ..reference.activations import activation_backward, activation_forward
from ..reference.augment import augment_rows
from ..reference.dropout import dropout_mask
from ..reference.init import initialize_weights
from ..reference.schedules import inverse_time
from ..formulas import ACTIVATION_CODES
from ..rng import MASK64, dropout_key

if TYPE_CHECKING:
    from ..augment import Augment
    from .results import Results
    from .runner import Data, ExecutorSpec, PathLike
    from .spaces import SpaceLike

#: Per-model hyperparameters: a dict per model, or a dict of equal-length lists.
Hyperparameters = Union[Sequence[Mapping[str, float]], Mapping[str, Sequence[float]]]

HYPERPARAMETERS = {"learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
                   "l2": 0.0, "keep_prob": 1.0, "decay": 0.0, "seed": 0}
PREDICT_CHUNK = 4096


class CaviarResult:
    """What ``train_caviar`` returns.

    Parameters
    ----------
    trainer : the stack of models that trained
        Its ``p`` holds the stacked weights (``get_params``).
    histories : list of dict
    errors : list of str or None
    hyper : list of dict
        Kept as ``hyperparameters``.
    seconds : float
        Kept as ``time``.

    Attributes
    ----------
    histories : list of dict
        Per model: loss, accuracy, val_loss, val_accuracy, lr per epoch (as ``fit``).
    errors : list of str or None
        Why a model stopped (its loss became NaN / inf), else None.
    hyperparameters : list of dict
    time : float
        Seconds for the whole training.
    """

    def __init__(self, trainer: _Stack | _EngineStack,
                 histories: list[dict[str, list[float]]], errors: list[str | None],
                 hyper: list[dict[str, float]], seconds: float) -> None:
        self._trainer = trainer
        self.histories, self.errors = histories, errors
        self.hyperparameters, self.time = hyper, seconds

    def get_params(self, i: int) -> dict[str, NDArray[np.floating]]:
        """Model i's weights, named as MLP.get_weights() names them.

        W1, b1, W2, ...; with BatchNorm gamma, beta and the running statistics
        (running_mean1, running_var1, ...).

        Parameters
        ----------
        i : int
            The model's index, 0 .. K - 1.

        Returns
        -------
        dict name -> array
            Copies.
        """
        weights = {name: view[i].copy() for name, view in self._trainer.p.items()}
        params = getattr(self._trainer, "params", None)   # the engine's layout
        if params is not None:
            means, variances = params.running_views(params.running, stacked=True)
            for l in means:
                weights[f"running_mean{l}"] = means[l][i].copy()
                weights[f"running_var{l}"] = variances[l][i].copy()
        return weights

    def __len__(self):
        return len(self.histories)


class _Stack:
    """K stacked MLPs: parameters, Adam state and the training step."""

    def __init__(self, sizes, activation, dtype, hyper):
        self.sizes, self.activation, self.dtype = sizes, activation, np.dtype(dtype)
        self.K = K = len(hyper)
        self.layout, P = [], 0
        for l, (n_in, n_out) in enumerate(zip(sizes, sizes[1:]), start=1):
            for name, shape in ((f"W{l}", (n_out, n_in)), (f"b{l}", (n_out,))):
                self.layout.append((name, P, shape))
                P += int(np.prod(shape))
        self.flat = np.zeros((K, P), self.dtype)
        self.grad = np.zeros((K, P), self.dtype)
        self.m1 = np.zeros((K, P), self.dtype)
        self.m2 = np.zeros((K, P), self.dtype)
        self.p, self.g = self._views(self.flat), self._views(self.grad)
        self.L = len(sizes) - 1
        h = {key: np.array([float(x[key]) for x in hyper]) for key in HYPERPARAMETERS}
        self.h = h
        self.seeds = [int(x["seed"]) for x in hyper]
        col = lambda a: a.astype(self.dtype)[:, None]  # noqa: E731  (K, 1) in dtype
        self.beta1, self.beta2 = col(h["beta1"]), col(h["beta2"])
        self.one_minus_beta1, self.one_minus_beta2 = col(1 - h["beta1"]), col(1 - h["beta2"])
        self.eps = col(h["eps"])
        self.beta1_list = [float(x["beta1"]) for x in hyper]
        self.beta2_list = [float(x["beta2"]) for x in hyper]
        self.lr0 = h["learning_rate"]
        self.lr = self.lr0.copy()
        self.t = 0
        for i, seed in enumerate(self.seeds):   # MLP._initialize, model by model
            rng = np.random.default_rng([seed, 0])
            for l, (n_in, n_out) in enumerate(zip(sizes, sizes[1:]), start=1):
                self.p[f"W{l}"][i] = initialize_weights("he", n_in, n_out, rng, np.float64)

    def _views(self, flat):
        K = flat.shape[0]
        return {name: flat[:, o:o + int(np.prod(s))].reshape((K,) + s)
                for name, o, s in self.layout}

    # ---------------------------------------------------------------- forward / backward
    def forward(self, X, step=None):
        """Output logits (K, m, k); with ``step``, training mode (dropout) and caches."""
        A, cache = X, []
        for l in range(1, self.L + 1):
            W, b = self.p[f"W{l}"], self.p[f"b{l}"]
            Z = np.matmul(A, W.transpose(0, 2, 1)) + b[:, None, :]
            if l == self.L:
                cache.append((A, Z, None))
                return Z, cache
            act = activation_forward(Z, self.activation)
            out = act
            if step is not None:
                out = self._dropout(act, step, l)
            cache.append((A, act, out))
            A = out

    def _dropout(self, act, step, l):
        keep = self.h["keep_prob"]
        if np.all(keep == 1.0):
            return act
        out = act.copy()
        shape = act.shape[1:]
        for i in range(self.K):
            if keep[i] < 1.0:
                mask = dropout_mask(shape, keep[i], dropout_key(self.seeds[i], step, l))
                out[i] = act[i] * mask / act.dtype.type(keep[i])
        return out

    def step(self, X, Y, step):
        """One Adam update of every model on the batch (X, Y); returns per-model loss
        (L2 term included) and number right, both (K,)."""
        m = X.shape[0]
        Z, cache = self.forward(X, step)
        shifted = Z - Z.max(axis=2, keepdims=True)
        E = np.exp(shifted)
        S = E.sum(axis=2, keepdims=True)
        dZ = (E / S - Y) / self.dtype.type(m)
        # the loss only feeds the history: vectorised sums (float tolerance, not bits)
        logp = shifted - np.log(S)
        loss = -(Y * logp).reshape(self.K, -1).sum(axis=1, dtype=np.float64) / m
        if np.any(self.h["l2"]):
            sq = sum(np.square(self.p[f"W{l}"], dtype=np.float64).sum(axis=(1, 2))
                     for l in range(1, self.L + 1))
            loss += self.h["l2"] / (2 * m) * sq
        right = (Z.argmax(axis=2) == Y.argmax(axis=1)).sum(axis=1)
        # backward, layer by layer (dense_backward's operations)
        lam = np.array([float(self.h["l2"][i]) / m for i in range(self.K)],
                       self.dtype)[:, None, None]
        keep = self.h["keep_prob"]
        for l in range(self.L, 0, -1):
            A_in, act, _ = cache[l - 1]
            W = self.p[f"W{l}"]
            if l < self.L:
                d = self._dropout(d, step, l) if np.any(keep < 1) else d
                dZ = activation_backward(d, act, self.activation)
            dW = np.matmul(dZ.transpose(0, 2, 1), A_in)
            self.g[f"W{l}"][...] = dW + lam * W   # as dense_backward, also when l2 = 0
            self.g[f"b{l}"][...] = dZ.sum(axis=1)
            if l > 1:
                d = np.matmul(dZ, W)
        self._adam()
        return loss, right

    def _adam(self):
        """adam_update on the (K, P) buffers with per-model (K, 1) hyperparameters."""
        self.t += 1
        t = self.t
        g, m, v = self.grad, self.m1, self.m2
        # Python's pow, as the reference's scalar ``1 - beta1**step`` (NumPy's differs in
        # the last bit for some inputs)
        c1 = np.array([1 - b ** t for b in self.beta1_list], self.dtype)[:, None]
        c2 = np.array([1 - b ** t for b in self.beta2_list], self.dtype)[:, None]
        lr = self.lr.astype(self.dtype)
        kernel = _adam_kernel()
        if kernel is not None:
            kernel(self.flat, g, m, v, self.beta1[:, 0], self.one_minus_beta1[:, 0],
                   self.beta2[:, 0], self.one_minus_beta2[:, 0], c1[:, 0], c2[:, 0], lr,
                   self.eps[:, 0])
            return
        m *= self.beta1
        m += self.one_minus_beta1 * g
        v *= self.beta2
        v += self.one_minus_beta2 * g * g
        m_hat = m / c1
        v_hat = v / c2
        self.flat -= lr[:, None] * m_hat / (np.sqrt(v_hat) + self.eps)

    def evaluate(self, X, Y):
        """Per-model loss (no L2 term) and accuracy in inference mode, both (K,)."""
        n = len(X)
        loss, right = np.zeros(self.K), np.zeros(self.K, np.int64)
        Zs = []
        for s in range(0, n, PREDICT_CHUNK):
            Z, _ = self.forward(X[s:s + PREDICT_CHUNK])
            Zs.append(Z)
        Z = np.concatenate(Zs, axis=1) if len(Zs) > 1 else Zs[0]
        shifted = Z - Z.max(axis=2, keepdims=True)
        logp = shifted - np.log(np.exp(shifted).sum(axis=2, keepdims=True))
        for i in range(self.K):
            loss[i] = float(-(Y * logp[i]).sum() / n)
        right = (Z.argmax(axis=2) == Y.argmax(axis=1)).sum(axis=1)
        return loss, right / n


_ADAM = []
# The fused Numba Adam below is bit-equal to the NumPy path but measured no faster on
# digits-sized stacks (K = 60, P = 9610: 0.10 vs 0.09 s per trial), so it is opt-in.
USE_NUMBA_ADAM = False


def _adam_kernel():
    """The fused Numba Adam over (K, P) buffers, or None (NumPy then)."""
    if not USE_NUMBA_ADAM:
        return None
    if not _ADAM:
        try:
            import numba
        except ImportError:
            _ADAM.append(None)
            return None

        @numba.njit(cache=True)
        def adam_stacked(p, g, m, v, b1, omb1, b2, omb2, c1, c2, lr, eps):
            # over models k, then parameters j; the reference's operations in its order
            # (each rounded separately, no fused multiply-add), so results match it
            for k in range(p.shape[0]):
                for j in range(p.shape[1]):
                    gj = g[k, j]
                    mj = m[k, j] * b1[k]
                    mj = mj + omb1[k] * gj
                    vj = v[k, j] * b2[k]
                    vj = vj + (omb2[k] * gj) * gj
                    m[k, j] = mj
                    v[k, j] = vj
                    p[k, j] = p[k, j] - (lr[k] * (mj / c1[k])) / (np.sqrt(vj / c2[k]) + eps[k])

        _ADAM.append(harden_cache(adam_stacked))
    return _ADAM[0]


class _EngineStack:
    """K stacked MLPs on the training engine (fastdnn.engine): one flat layer-major
    buffer W1 (K, n_1, n_0), b1 (K, n_1), W2 ... (gamma and beta too with BatchNorm), the
    optimizer's state alike; the engine trains groups of CHUNK_MODELS models, one
    group per thread at a time, and the first layer of a group is one product."""

    def __init__(self, sizes, activation, dtype, hyper, batchnorm=False, optimizer="adam"):
        from ..engine.layout import Block, Parameters
        from ..layers import BatchNorm
        from ..rng import keep_threshold
        self.sizes, self.dtype = np.array(sizes, np.int64), np.dtype(dtype)
        self.K = K = len(hyper)
        self.L = L = len(sizes) - 1
        blocks = [Block(n_in, n_out, "he", l == L - 1 or not batchnorm,
                        BatchNorm() if batchnorm and l < L - 1 else None,
                        activation if l < L - 1 else "identity", 1.0)
                  for l, (n_in, n_out) in enumerate(zip(sizes, sizes[1:]))]
        self.params = Parameters(blocks, dtype, models=K)
        h = {key: np.array([float(x[key]) for x in hyper]) for key in HYPERPARAMETERS}
        self.h, self.seeds = h, [int(x["seed"]) for x in hyper]
        keep = np.tile(h["keep_prob"], (L, 1))
        keep[L - 1] = 1.0              # never dropout on the output layer
        self.optimizer = _per_model_optimizer(optimizer, h)
        self.lr0 = h["learning_rate"]
        self.lr = self.lr0.copy()
        self.p = self.params.views(self.params.flat, stacked=True)   # (K, ...) each
        rv = self.params.running_views(self.params.running, stacked=True)[1]
        for i, seed in enumerate(self.seeds):   # MLP._initialize, model by model
            rng = np.random.default_rng([seed, 0])
            for l, (n_in, n_out) in enumerate(zip(sizes, sizes[1:]), start=1):
                self.p[f"W{l}"][i] = initialize_weights("he", n_in, n_out, rng,
                                                        np.float64)
                if batchnorm and l < L:
                    self.p[f"gamma{l}"][i] = 1
                    rv[l][i] = 1
        # what fastdnn.cuda.caviar reads (Adam's state, offsets, per-model arrays)
        self.flat = self.params.flat
        self.m1, self.m2 = (self.optimizer.flat_state(self.flat) + [None, None])[:2]
        self.woff = np.array([self.params.offset(f"W{l}") for l in range(1, L + 1)])
        self.boff = np.array([self.params.offset(f"b{l}") for l in range(1, L + 1)])
        cast = lambda a: np.ascontiguousarray(a, self.dtype)  # noqa: E731
        self.b1, self.omb1 = cast(h["beta1"]), cast(1 - h["beta1"])
        self.b2, self.omb2 = cast(h["beta2"]), cast(1 - h["beta2"])
        self.eps, self.keep = cast(h["eps"]), cast(h["keep_prob"])
        self.th = np.array([keep_threshold(kp) for kp in h["keep_prob"]], np.uint64)
        self.code = ACTIVATION_CODES[activation]
        self.batchnorm = batchnorm
        self._keep = keep

    def dropout_keys(self, n_steps):
        """(K, n_steps, L - 1) uint64: dropout_key(seed_k, step, layer) for the models
        with dropout (zeros for the others; (K, 1, 1) when none has dropout)."""
        from ..reference.dropout import splitmix64
        drop = self.th < 2**32
        keys = np.zeros((self.K, n_steps if drop.any() else 1, max(self.L - 1, 1)),
                        np.uint64)
        if drop.any():   # rng.dropout_key, vectorised over models, steps and layers
            seeds = np.array([s & MASK64 for s in self.seeds], np.uint64)[drop]
            steps = np.arange(n_steps, dtype=np.uint64)
            layers = np.arange(1, self.L, dtype=np.uint64)
            inner = splitmix64(splitmix64(seeds)[:, None] ^ steps[None, :])
            keys[drop] = splitmix64(inner[:, :, None] ^ layers[None, None, :])
        return keys

    def train(self, X, Y, orders, lrs, batch_size, X_dev, Y_dev, dev_at=None,
              augment=None):
        """Train every model through all epochs (epoch e in orders[e] with learning
        rates lrs[e]), the batches augmented by ``augment`` (a fastdnn.Augment; the
        first model's draws, for all); returns (epochs, K) sums: training loss x n,
        right answers, dev loss x n_dev, dev right answers (the dev set scored after the
        epochs where the bool array dev_at is True; default all)."""
        from ..engine.cpu import CpuEngine
        engine = CpuEngine(self.params, "softmax", self.seeds, keep=self._keep,
                           group=CHUNK_MODELS)
        K, n = self.K, len(X)
        epochs = len(orders)
        n_steps = -(-n // batch_size)
        out = [np.zeros((epochs, K)), np.zeros((epochs, K), np.int64),
               np.zeros((epochs, K)), np.zeros((epochs, K), np.int64)]
        for e in range(epochs):
            rates = np.asarray(lrs[e], np.float64)
            result = engine.train((X, Y, orders[e], np.empty(0, X.dtype)), batch_size,
                                  self.optimizer, lambda i: rates, e * n_steps,
                                  self.h["l2"], stop_on_nan=False, augment=augment)
            out[0][e], out[1][e] = result.loss, result.correct
            if len(X_dev) and (dev_at is None or dev_at[e]):
                _, out[2][e], out[3][e] = engine.infer(X_dev, Y_dev)
        return out


# Models per group on the engine: the unit of parallel work and of the first layer's
# product. Results depend on it (BLAS blocking), never on the thread count.
CHUNK_MODELS = 4


def _per_model_optimizer(name, h):
    """An optimizer whose hyperparameters are (K,) arrays (one per model), which the
    engine reads model by model."""
    from ..optim import get_optimizer
    opt = get_optimizer(name)
    for attr, key in (("beta1", "beta1"), ("beta", "beta1"), ("beta2", "beta2"),
                      ("eps", "eps")):
        if hasattr(opt, attr):
            setattr(opt, attr, h[key].copy())
    return opt


def train_caviar(X: ArrayLike, y: ArrayLike, layer_sizes: Sequence[int],
                 hyperparameters: Hyperparameters, *, epochs: int = 10,
                 batch_size: int = 64, activation: str = "relu",
                 dtype: DTypeLike = "float32",
                 validation_data: tuple[ArrayLike, ArrayLike] | None = None,
                 backend: str = "auto", dev_curves: bool = True, batchnorm: bool = False,
                 optimizer: str = "adam", augment: Augment | None = None) -> CaviarResult:
    """Train K MLPs with softmax outputs together on the same mini-batches.

    Each model has its own set of hyperparameters.

    Parameters
    ----------
    X : (n, n_x) array
    y : (n,) int class indices in [0, k)
    layer_sizes : list of int
        [n_x, n_1, ..., k], shared by every model.
    hyperparameters : list of dict (one per model) or dict of equal-length lists
        Keys: learning_rate, beta1, beta2, eps, l2, keep_prob (all hidden layers), decay
        (inverse-time per epoch), seed. Missing keys take ``HYPERPARAMETERS``.
    epochs, batch_size : int
    activation : hidden activation
    dtype : "float32" or "float64"
    validation_data : (X_dev, y_dev) or None

    backend : "auto", "cpu", "numpy" or "cuda"
        "cpu" (and "auto" without a GPU) is the training engine (fastdnn.engine), which
        trains groups of models in parallel; "numpy" the stacked NumPy oracle, "cuda"
        the GPU one.
    dev_curves : bool
        Score the validation data after every epoch (learning curves), or, when False,
        after the last epoch only, as scikit-learn's searches do (the other epochs'
        ``val_loss`` and ``val_accuracy`` are NaN): about 10% less work on digits.
    batchnorm : bool
        BatchNorm after every hidden layer (backend "cpu" only).
    optimizer : "adam", "adamw", "sgd", "momentum", "nesterov" or "rmsprop"
        Each model's optimizer, with its learning_rate, beta1 (the momentum's beta),
        beta2 and eps (backend "cpu" only for optimizers other than "adam").
    augment : fastdnn.Augment, optional
        Augment the training batches as ``MLP.fit(augment=...)`` does, with the first
        model's seed: every model trains on the same augmented batches, as on the same
        order.

    Returns
    -------
    CaviarResult
        Model i equals ``MLP(layer_sizes, activation=activation, keep_prob=kp, l2=l2,
        dtype=dtype, backend="numpy", seed=seed)`` fit with ``Adam(lr, beta1, beta2,
        eps)`` and ``InverseTime(decay)`` (when decay > 0), provided every model has
        the first model's seed (which sets the shared batch order): bit for bit with
        backend="numpy", to rounding with "cpu" and "cuda" (see the module docstring).
    """
    hyper = _as_list(hyperparameters)
    epochs = check_int("epochs", epochs, 0)
    batch_size = check_int("batch_size", batch_size, 1)
    check_choice("activation", activation, HIDDEN_ACTIVATIONS)
    sizes = [check_int(f"layer_sizes[{i}]", s, 1) for i, s in enumerate(layer_sizes)]
    dtype = np.dtype(dtype)
    X = np.array(X, dtype=dtype, order="C", copy=True)
    if X.ndim != 2 or X.shape[1] != sizes[0]:
        raise ValueError(f"X must have shape (n, {sizes[0]}), got {X.shape}")
    n, k = len(X), sizes[-1]
    Y = _one_hot(y, n, k, dtype, "y")
    augment = as_augment(augment, X)
    if augment is not None and not augment.active:
        augment = None
    if validation_data is not None:
        X_dev = np.array(validation_data[0], dtype=dtype, order="C", copy=True)
        Y_dev = _one_hot(validation_data[1], len(X_dev), k, dtype, "validation_data[1]")
    backend = _resolve_backend(backend)
    check_choice("optimizer", optimizer, ("adam", "adamw", "sgd", "momentum", "nesterov",
                                          "rmsprop"))
    if backend != "cpu" and (batchnorm or optimizer != "adam"):
        raise ValueError(f"backend={backend!r} trains Adam without BatchNorm; "
                         "batchnorm=True and other optimizers need backend='cpu'")
    dev = (X_dev, Y_dev) if validation_data is not None else None
    dev_at = np.ones(epochs, np.bool_)
    if not isinstance(dev_curves, (bool, np.bool_)):
        raise TypeError(f"dev_curves must be True or False, got {dev_curves!r}")
    if not dev_curves:
        dev_at[:-1] = False
    if backend == "cuda":
        from ..cuda.caviar import make_stack
        stack = make_stack(_EngineStack)
    else:
        stack = _EngineStack if backend == "cpu" else _Stack
    make = lambda: stack(sizes, activation, dtype, hyper, **(  # noqa: E731
        dict(batchnorm=batchnorm, optimizer=optimizer) if backend == "cpu" else {}))
    return _train(X, Y, hyper, epochs, batch_size, validation_data, dev, dev_at, make,
                  augment)


def _resolve_backend(backend):
    check_choice("backend", backend, ("auto", "numpy", "cpu", "cuda"))
    if backend == "auto":
        from ..backend import resolve
        return resolve("auto")
    return backend


def _train(X, Y, hyper, epochs, batch_size, validation_data, dev, dev_at, make,
           augment=None):
    """The epoch loop shared by the NumPy stack (_Stack, step by step) and the engine's
    (_EngineStack: all epochs in one call); ``augment``: an active fastdnn.Augment or
    None."""
    n = len(X)
    start = time.perf_counter()
    net = make()
    order_rng = np.random.default_rng([net.seeds[0], 1])
    batch_size = min(batch_size, n)
    histories = [dict(loss=[], accuracy=[], val_loss=[], val_accuracy=[], lr=[])
                 for _ in hyper]
    errors = [None] * len(hyper)
    step = 0
    lrs = [np.array([inverse_time(lr0, epoch, dr) if dr else lr0
                     for lr0, dr in zip(net.lr0, net.h["decay"])]) for epoch in range(epochs)]
    engine = isinstance(net, _EngineStack)
    if engine:   # every epoch in one call
        X_dev, Y_dev = dev if dev is not None else (X[:0], Y[:0])
        orders = np.array([order_rng.permutation(n) for _ in range(epochs)],
                          np.int64).reshape(epochs, n)
        sums = net.train(X, Y, orders, np.array(lrs).reshape(epochs, net.K), batch_size,
                         X_dev, Y_dev, dev_at, augment)
    for epoch in range(epochs):
        net.lr = lrs[epoch]
        if engine:
            total, right = sums[0][epoch], sums[1][epoch]
            if dev is not None:
                val_loss, val_acc = sums[2][epoch] / len(X_dev), sums[3][epoch] / len(X_dev)
        else:
            order = order_rng.permutation(n)
            total, right = np.zeros(net.K), np.zeros(net.K, np.int64)
            for s in range(0, n, batch_size):
                idx = order[s:s + batch_size]
                Xb = X[idx]
                if augment is not None:   # the first model's draws, as the engine's
                    augment_rows(Xb, (net.seeds[0], step), augment.image_shape,
                                 augment.flip, augment.shift, augment.noise, out=Xb)
                with np.errstate(all="ignore"):  # a diverging model must not stop others
                    loss, r = net.step(Xb, Y[idx], step)
                step += 1
                total += loss * len(idx)
                right += r
            if dev is not None and dev_at[epoch]:
                with np.errstate(all="ignore"):
                    val_loss, val_acc = net.evaluate(*dev)
        for i in range(net.K):
            if errors[i] is None and not np.isfinite(total[i]):
                errors[i] = (f"FloatingPointError: training diverged: the loss is "
                             f"{total[i] / n} in epoch {epoch + 1}")
        for i, h in enumerate(histories):
            if errors[i] is not None and len(h["loss"]) and not np.isfinite(h["loss"][-1]):
                continue
            h["loss"].append(float(total[i] / n))
            h["accuracy"].append(float(right[i] / n))
            if validation_data is not None:
                scored = dev_at[epoch]
                h["val_loss"].append(float(val_loss[i]) if scored else float("nan"))
                h["val_accuracy"].append(float(val_acc[i]) if scored else float("nan"))
            h["lr"].append(float(net.lr[i]))
    if validation_data is None:
        for h in histories:
            del h["val_loss"], h["val_accuracy"]
    return CaviarResult(net, histories, errors, hyper, time.perf_counter() - start)


def _as_list(hyper):
    if isinstance(hyper, dict):
        lengths = {len(v) for v in hyper.values()}
        if len(lengths) != 1:
            raise ValueError("hyperparameters as a dict must hold lists of one length")
        hyper = [dict(zip(hyper, vals)) for vals in zip(*hyper.values())]
    hyper = [dict(h) for h in hyper]
    if not hyper:
        raise ValueError("hyperparameters must describe at least one model")
    for i, h in enumerate(hyper):
        unknown = set(h) - set(HYPERPARAMETERS)
        if unknown:
            raise ValueError(f"hyperparameters[{i}] has unknown keys {sorted(unknown)}; "
                             f"allowed: {sorted(HYPERPARAMETERS)}")
        for key, default in HYPERPARAMETERS.items():
            h.setdefault(key, default)
        if not 0 < h["keep_prob"] <= 1:
            raise ValueError(f"hyperparameters[{i}]['keep_prob'] must lie in (0, 1], got "
                             f"{h['keep_prob']!r}")
    return hyper


def _one_hot(y, n, k, dtype, name):
    y = np.asarray(y)
    if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{name} must be ({n},) integer class indices, got shape "
                         f"{y.shape} dtype {y.dtype}")
    if y.min() < 0 or y.max() >= k:
        raise ValueError(f"{name} class indices must lie in [0, {k})")
    Y = np.zeros((n, k), dtype)
    Y[np.arange(n), y] = 1
    return Y


# ---------------------------------------------------------------------- search
_ARCHITECTURE = {"hidden_units": 128, "layers": 1, "batch_size": 64, "epochs": 30,
                 "activation": "relu", "dtype": "float32"}
_PER_MODEL = {"learning_rate": "learning_rate", "beta1": "beta1", "beta2": "beta2",
              "l2": "l2", "keep_prob": "keep_prob", "decay": "decay", "seed": "seed",
              "eps": "eps"}


def _caviar_task(data, fixed, trials, backend="auto", dev_curves=True, augment=None):
    """Train one group of same-architecture trials together; returns their rows."""
    import traceback
    X, y, X_dev, y_dev = data
    arch = {**_ARCHITECTURE, **{k: v for k, v in fixed.items() if k in _ARCHITECTURE}}
    per_fixed = {k: v for k, v in fixed.items() if k in _PER_MODEL}
    configs = [{**arch, **per_fixed, **params} for _, params in trials]
    arch.update({k: configs[0][k] for k in _ARCHITECTURE if k in configs[0]})
    start = time.perf_counter()
    try:
        k = int(max(np.max(y), np.max(y_dev))) + 1   # caviar_search encoded the labels
        sizes = [X.shape[1]] + [int(arch["hidden_units"])] * int(arch["layers"]) + [k]
        hyper = [{key: c[key] for key in _PER_MODEL if key in c} for c in configs]
        res = train_caviar(X, y, sizes, hyper, epochs=int(arch["epochs"]),
                           batch_size=int(arch["batch_size"]),
                           activation=arch["activation"], dtype=arch["dtype"],
                           validation_data=(X_dev, y_dev), backend=backend,
                           dev_curves=dev_curves, augment=augment)
    except Exception as e:  # noqa: BLE001 - the group's failure is recorded per trial
        return [{"trial": t, **params, "status": "error", "error": f"{type(e).__name__}: {e}",
                 "traceback": traceback.format_exc(),
                 "time": (time.perf_counter() - start) / len(trials)}
                for t, params in trials]
    rows = []
    for i, (t, params) in enumerate(trials):
        h = res.histories[i]
        row = {"trial": t, **params}
        if h["loss"]:
            row.update(train_loss=h["loss"][-1], train_accuracy=h["accuracy"][-1],
                       dev_loss=h["val_loss"][-1], dev_accuracy=h["val_accuracy"][-1])
        row.update(epochs=len(h["loss"]),
                   history={key: h[key] for key in ("loss", "accuracy", "val_loss",
                                                    "val_accuracy")},
                   status="ok" if res.errors[i] is None else "error",
                   time=res.time / len(trials))
        if res.errors[i] is not None:
            row["error"] = res.errors[i]
        rows.append(row)
    return rows


def caviar_search(space: Mapping[str, SpaceLike], data: Data, *,
                  fixed: Mapping[str, Any] | None = None, n_trials: int = 20, seed: int = 0,
                  executor: ExecutorSpec = "serial", n_workers: int = 2,
                  max_models: int | None = None, results_file: PathLike | None = None,
                  verbose: int = 0, backend: str = "auto",
                  dev_curves: bool = True, retry_errors: bool = True,
                  augment: Augment | None = None) -> Results:
    """Random search whose trials are trained in groups by ``train_caviar``.

    Trials sharing an architecture (hidden_units, layers, batch_size, epochs,
    activation, dtype) are trained together, up to ``max_models`` per group, split in
    ``n_workers`` groups per architecture when an executor runs them in parallel. With
    the compiled engine (backend "cpu", the default where Numba and SciPy are there) the
    fastest choice is the default in-process ``executor="serial"``: one group holds up
    to 256 models and Numba's threads train its chunks of models in parallel, with no
    worker processes to start. The NumPy engine takes 16 models per group (measured
    fastest on digits: the stacked activations stay in cache). The
    configs are those of ``random_search`` with the same space and seed (trial t drawn
    with default_rng([seed, t])), and the result rows have the same columns; a row's
    time is its group's time divided by the group size. Per-model hyperparameters:
    learning_rate, beta1, beta2, eps, l2, keep_prob, decay, seed (Adam, softmax output).

    Parameters
    ----------
    space : dict name -> Space
    data : (X_train, y_train, X_dev, y_dev)
        Any class labels, encoded as in ``random_search``.
    fixed : dict, optional
        Values for keys not in ``space`` (e.g. {"epochs": 30, "hidden_units": 128}).
    n_trials : int >= 0
        Trials 0 .. n_trials - 1.
    seed : int
        Trial t's config is drawn with numpy.random.default_rng([seed, t]).
    executor : "serial", None (a ProcessPoolExecutor of ``n_workers``) or an Executor
    n_workers : int >= 1
        Processes of the default pool (``executor=None``), and the groups each
        architecture is split in when ``executor`` is not "serial".
    max_models : int, optional
        Models per group (default 256 with the compiled engine, 16 with NumPy's).
    results_file : path or None
        CSV written after each group; a rerun resumes: trials already in it are
        skipped, except failed ones (status "error"), which run again. A rerun of
        another search (space, seed, fixed, data, augment) is refused, as in
        ``random_search``; backend, max_models and the executor may change (the
        engines agree to rounding). On Ctrl-C the finished groups are there (a group
        trains as one: an unfinished one is lost); the KeyboardInterrupt goes on.
    verbose : 0 or 1
        A line per finished group: trials done so far of those to run, and the best dev
        accuracy so far (and "resumed N trials from FILE" on a rerun).
    backend : "auto", "cpu", "numpy" or "cuda"
        The engine of ``train_caviar``.
    dev_curves : bool
        As in ``train_caviar``: False scores the dev set after the last epoch only (the
        rows' dev metrics are the same; their dev curves hold NaN before it).
    retry_errors : bool
        False skips the failed trials of ``results_file`` too, keeping their rows (as
        ``random_search``).
    augment : fastdnn.Augment, optional
        Augment every trial's training batches (``train_caviar``'s ``augment``).

    Returns
    -------
    Results
    """
    import concurrent.futures as cf

    from .runner import (_check_train_mlp_names, _encode_classes, _executor, _resume,
                         _save, _saved_on_interrupt, _search_record)
    from .spaces import as_space, sample_config

    space = {name: as_space(s) for name, s in space.items()}
    fixed = dict(fixed or {})
    takes = {**_ARCHITECTURE, **_PER_MODEL}
    for where, names in (("space", space), ("fixed", fixed)):
        _check_train_mlp_names(names, where, takes, "caviar_search",
                               head="caviar_search cannot vary or fix")
    if max_models is None:
        max_models = 16 if _resolve_backend(backend) == "numpy" else 256
    max_models = check_int("max_models", max_models, 1)
    if not isinstance(retry_errors, (bool, np.bool_)):
        raise TypeError(f"retry_errors must be True or False, got {retry_errors!r}")
    if not isinstance(data, (tuple, list)) or len(data) != 4:
        raise TypeError(f"data must be a tuple (X_train, y_train, X_dev, y_dev), got "
                        f"{type(data).__name__}"
                        + (f" of {len(data)} items" if isinstance(data, (tuple, list))
                           else ""))
    # the engine is the same to rounding whatever backend and grouping: not recorded
    record = _search_record("caviar_search", space, check_int("seed", seed, 0), fixed,
                            data=data, augment=augment)
    results, done = _resume(results_file, list(space), retry_errors, record, verbose)
    groups = {}
    for t in range(check_int("n_trials", n_trials, 0)):
        if t in done:
            continue
        params = sample_config(space, seed, t)
        key = tuple(repr(params.get(k, fixed.get(k))) for k in _ARCHITECTURE)
        groups.setdefault(key, []).append((t, params))
    parallel = 1 if executor == "serial" else n_workers
    tasks = []
    for trials in groups.values():
        n_chunks = max(parallel, -(-len(trials) // max_models))
        size = -(-len(trials) // n_chunks)
        tasks += [trials[i:i + size] for i in range(0, len(trials), size)]
    data = _encode_classes(data)   # any labels: strings, 1 .. 10, {0, 5}
    if augment is not None and np.ndim(data[0]) == 2:   # fails here, not in every trial
        as_augment(augment, np.asarray(data[0]))
    n_to_run, n_run = sum(len(trials) for trials in tasks), 0

    def save(rows):
        nonlocal n_run
        results.rows.extend(rows)
        _save(results, results_file)
        n_run += len(rows)
        if verbose:
            best = (f"best dev accuracy so far {results.best()['dev_accuracy']:.4f}"
                    if len(results.ok) else "none finished without error yet")
            print(f"{n_run}/{n_to_run} trials done, {best}", flush=True)

    ex, own = _executor(executor, n_workers)
    futures = {}
    with _saved_on_interrupt(results, results_file):
        try:
            if not hasattr(ex, "submit"):
                for trials in tasks:
                    save(_caviar_task(data, fixed, trials, backend, dev_curves, augment))
            else:
                futures = {ex.submit(_caviar_task, data, fixed, trials, backend,
                                     dev_curves, augment): trials
                           for trials in tasks}
                for fut in cf.as_completed(futures):
                    try:
                        rows = fut.result()
                    except Exception as e:  # noqa: BLE001 - e.g. a worker died
                        rows = [{"trial": t, **p, "status": "error",
                                 "error": f"{type(e).__name__}: {e}"}
                                for t, p in futures[fut]]
                    save(rows)
                    futures[fut] = None   # saved
        except KeyboardInterrupt:
            # keep the groups that finished meanwhile; cancel those not started
            for fut, trials in futures.items():
                if trials is not None and fut.done() and not fut.cancelled() \
                        and fut.exception() is None:
                    save(fut.result())
                elif trials is not None:
                    fut.cancel()
            raise
        finally:
            if own:
                ex.shutdown(wait=True, cancel_futures=True)
    results.rows.sort(key=lambda r: r["trial"])
    results.spaces = [space]
    return results
