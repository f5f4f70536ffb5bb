"""scikit-learn estimators on fastdnn: MLPClassifier and MLPRegressor.

They take scikit-learn's ``sklearn.neural_network`` parameters with the same meanings
and defaults, plus fastdnn's own (batchnorm, keep_prob, augment, backend, dtype), and
train a fastdnn.MLP (``model_``) on the fused kernels. Drop-in: they pass scikit-learn's
``check_estimator`` on every backend and scikit-learn's own MLP tests (all but one,
which calls its internals), and work
in Pipeline, GridSearchCV and RandomizedSearchCV. Sparse X is accepted and densified.
They train in X's dtype, as scikit-learn does (``dtype`` overrides it).

n = number of samples, n_features = input width, k = n_outputs_ (classes, labels or
targets). coefs_[i] is (n_in, n_out) as in scikit-learn, i.e. fastdnn's W.T.

How the settings map onto fastdnn (so that the same settings mean the same thing):

* initial weights and biases: scikit-learn's Glorot-uniform draw, from the same
  ``random_state`` stream in the same order; the epoch shuffles and the early-stopping
  split also use that stream, so a float64 fit follows scikit-learn's to rounding error.
* lbfgs: SciPy's L-BFGS-B, as scikit-learn calls it, on the full-batch loss and gradient
  that fastdnn computes.
* ``coefs_`` and ``intercepts_`` are views of the model's parameters (host backends):
  editing them, or assigning arrays into the lists, changes the model.
* ``alpha`` is fastdnn's L2 ``lambd``: both add (alpha / 2m) * sum ||W||^2 to the loss of
  a batch of m samples, and (alpha / m) W to the gradient.
* regression with k > 1 targets: scikit-learn reports half the squared error averaged
  over the targets too, but its gradient is that of the error summed over the targets
  (as fastdnn's loss is); the model trains on fastdnn's loss, which gives
  scikit-learn's updates, and loss_curve_ reports scikit-learn's value.
* sgd with momentum: scikit-learn uses v = momentum * v - lr * g (the PyTorch form);
  fastdnn's Momentum / Nesterov keep an average v = beta v + (1 - beta) g and step
  lr * v. With beta = momentum and a learning rate lr / (1 - momentum) the two give
  the same steps while the learning rate is constant; when it changes
  ("invscaling", "adaptive") scikit-learn's velocity keeps the old rates of past
  gradients whereas fastdnn scales the whole average by the new rate, so the
  trajectories then differ slightly. momentum=1 is therefore refused.
* adam: scikit-learn folds the bias corrections into the learning rate, which puts
  epsilon / sqrt(1 - beta_2^t) where fastdnn's Adam puts epsilon; the estimators pass
  that epsilon to fastdnn's adam kernel at each step, so the updates are the same.
* ``augment`` (fastdnn.Augment) runs as in fastdnn.MLP.fit: its draws are keyed by
  the model's seed, which is drawn from ``random_state`` after the initial weights
  only when dropout or an active augment needs one (as dropout's always was), and by
  the training step, so the per-batch steps of k targets with L2 get the draws fit
  would give them.
* ``warm_start=True`` keeps the optimizer state (Adam moments, velocity, step count and
  current learning rate) between fits; scikit-learn starts a fresh optimizer on each
  fit. ``partial_fit`` keeps it in both.
"""
from __future__ import annotations

import importlib
import math
import numbers
import os
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state, column_or_1d
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import type_of_target, unique_labels
from sklearn.utils.validation import check_is_fitted

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _validate_data
except ImportError:  # pragma: no cover - older scikit-learn
    def _validate_data(est, *args, **kwargs):
        return est._validate_data(*args, **kwargs)

from ._validation import check_choice, check_dtype, check_int, check_keep_prob, check_real
from .augment import Augment
from .model import MLP, model_from_config
from .optim import SGD, Adam, Momentum, Nesterov
from .reference.losses import check_sample_weight

if TYPE_CHECKING:
    import onnx

    from .model import Inputs

__all__ = ["MLPClassifier", "MLPRegressor"]

#: scikit-learn's hidden activation names -> fastdnn's.
ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
#: An estimator's own type, for the methods that return it (fit on an MLPClassifier
#: gives the MLPClassifier).
EstimatorT = TypeVar("EstimatorT", bound="_BaseMLP")


def _shuffled(indices, rng):
    """``sklearn.utils.shuffle(indices, random_state=rng)``: the same draw from ``rng``
    (a shuffled arange), without its argument validation (about 1.3 ms a call, a
    quarter of an epoch on digits)."""
    order = np.arange(len(indices))
    rng.shuffle(order)
    return indices[order]


def _dense(X):
    """fastdnn's kernels are dense: a sparse X is densified (n * n_features memory)."""
    return X.toarray() if hasattr(X, "toarray") else X


def _rows_as(X, dtype):
    """X in ``dtype``: a sparse X stays sparse, as CSR (row slices), for fastdnn's
    models densify it a batch at a time."""
    if hasattr(X, "tocsr"):
        return X.tocsr().astype(dtype, copy=False)
    return np.ascontiguousarray(X, dtype=dtype)


def _engine_backend(backend):
    """The backend handed to fastdnn.MLP: "auto" falls back to numpy without fastdnn.cpu."""
    check_choice("backend", backend, ("auto", "numpy", "cpu", "cuda"))
    if backend != "auto":
        return backend
    try:
        importlib.import_module("fastdnn.cpu")
    except ImportError as exc:
        if getattr(exc, "name", None) != "fastdnn.cpu":   # present but broken: say so
            warnings.warn(f"fastdnn.cpu could not be imported ({exc}); backend='auto' "
                          "runs on the NumPy reference", RuntimeWarning)
        return "numpy"
    return "auto"


def _stochastic_solver(estimator):
    """partial_fit exists for the stochastic solvers only, as in scikit-learn."""
    if estimator.solver not in ("sgd", "adam"):
        raise AttributeError(f"partial_fit is only available for the stochastic solvers "
                             f"'sgd' and 'adam', not solver={estimator.solver!r}")
    return True


class _SklearnRate:
    """scikit-learn's optimizers hold their current rate in ``learning_rate`` (users and
    scikit-learn's tests read it). It is kept apart from fastdnn's ``lr``: momentum runs
    on lr / (1 - momentum), Adam on the rate itself."""

    @property
    def learning_rate(self):
        return self._sklearn_rate

    @learning_rate.setter
    def learning_rate(self, value):
        self._sklearn_rate = float(value)


class _SklearnSGD(_SklearnRate, SGD):
    pass


class _SklearnMomentum(_SklearnRate, Momentum):
    pass


class _SklearnNesterov(_SklearnRate, Nesterov):
    pass


class _SklearnAdam(_SklearnRate, Adam):
    """fastdnn's Adam with scikit-learn's epsilon placement: eps / sqrt(1 - beta2^t)."""

    eps_scaled = True   # the compiled engine's switch for the same placement

    def _update(self, f, p, g, state, lr):
        eps = self.eps / math.sqrt(1.0 - self.beta2 ** self.t)
        f(p, g, state[0], state[1], self.t, lr, self.beta1, self.beta2, eps,
          self.weight_decay)


class _BaseMLP(BaseEstimator):
    """Shared fitting machinery; use MLPClassifier or MLPRegressor."""

    _loss_scale_outputs = False    # regression: sklearn reports the loss averaged over targets

    def __init__(self, hidden_layer_sizes: int | Sequence[int] = (100,),
                 activation: str = "relu", *, solver: str = "adam", alpha: float = 0.0001,
                 batch_size: int | str = "auto", learning_rate: str = "constant",
                 learning_rate_init: float = 0.001, power_t: float = 0.5,
                 max_iter: int = 200, shuffle: bool = True,
                 random_state: int | np.random.RandomState | None = None,
                 tol: float = 1e-4, verbose: bool = False, warm_start: bool = False,
                 momentum: float = 0.9, nesterovs_momentum: bool = True,
                 early_stopping: bool = False, validation_fraction: float = 0.1,
                 beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-8,
                 n_iter_no_change: int = 10, max_fun: int = 15000,
                 batchnorm: bool = False, keep_prob: float | Sequence[float] = 1.0,
                 augment: Augment | None = None, backend: str = "auto",
                 dtype: DTypeLike | None = None) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.batchnorm = batchnorm
        self.keep_prob = keep_prob
        self.augment = augment
        self.backend = backend
        self.dtype = dtype

    # ------------------------------------------------------------------ checks
    def _hidden_sizes(self):
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, numbers.Integral) or np.ndim(sizes) == 0:
            sizes = [sizes]
        try:
            sizes = list(sizes)
        except TypeError:
            raise TypeError(f"hidden_layer_sizes must be an int or a sequence of ints, "
                            f"got {self.hidden_layer_sizes!r}") from None
        return [check_int(f"hidden_layer_sizes[{i}]", s, 1) for i, s in enumerate(sizes)]

    def _check_params(self):
        """Check every hyperparameter; errors name the parameter and the allowed values."""
        check_choice("activation", self.activation, tuple(ACTIVATIONS))
        check_choice("solver", self.solver, ("lbfgs", "sgd", "adam"))
        check_int("max_fun", self.max_fun, 1)
        if self.augment is not None and not isinstance(self.augment, Augment):
            raise TypeError(f"augment must be a fastdnn.Augment or None, got "
                            f"{self.augment!r}")
        if self.solver == "lbfgs" and (self.batchnorm or np.any(np.asarray(self.keep_prob) < 1)):
            raise ValueError("solver='lbfgs' minimises a deterministic full-batch loss: it "
                             "takes batchnorm=False and keep_prob=1.0, got "
                             f"batchnorm={self.batchnorm!r}, keep_prob={self.keep_prob!r}")
        if self.solver == "lbfgs" and self._augments():
            raise ValueError("solver='lbfgs' minimises a deterministic full-batch loss: it "
                             "takes no augmentation (augment=None), got "
                             f"augment={self.augment!r}")
        check_real("alpha", self.alpha, 0.0)
        if not (isinstance(self.batch_size, str) and self.batch_size == "auto"):
            check_int("batch_size", self.batch_size, 1)
        check_choice("learning_rate", self.learning_rate,
                     ("constant", "invscaling", "adaptive"))
        check_real("learning_rate_init", self.learning_rate_init, 0.0, low_open=True)
        check_real("power_t", self.power_t, 0.0)
        check_int("max_iter", self.max_iter, 1)
        check_real("tol", self.tol, 0.0)
        check_real("momentum", self.momentum, 0.0, 1.0)
        if self.solver == "sgd" and self.momentum == 1:
            raise ValueError("momentum=1 is not supported: fastdnn's momentum is an "
                             "average, v = beta v + (1 - beta) g, so beta must be < 1")
        check_real("validation_fraction", self.validation_fraction, 0.0, 1.0,
                   high_open=True)
        check_real("beta_1", self.beta_1, 0.0, 1.0, high_open=True)
        check_real("beta_2", self.beta_2, 0.0, 1.0, high_open=True)
        check_real("epsilon", self.epsilon, 0.0, low_open=True)
        if not (isinstance(self.n_iter_no_change, numbers.Real)
                and self.n_iter_no_change == np.inf):
            check_int("n_iter_no_change", self.n_iter_no_change, 1)
        for name in ("shuffle", "warm_start", "nesterovs_momentum", "early_stopping",
                     "batchnorm"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise TypeError(f"{name} must be a bool, got {getattr(self, name)!r}")
        if np.ndim(self.keep_prob) == 0:
            check_keep_prob("keep_prob", self.keep_prob)
        else:
            for i, k in enumerate(self.keep_prob):
                check_keep_prob(f"keep_prob[{i}]", k)
        if self.dtype is not None:
            check_dtype("dtype", self.dtype)
        _engine_backend(self.backend)

    def _augments(self):
        """Whether augment changes the training batches (one that changes nothing
        trains exactly as augment=None)."""
        return self.augment is not None and self.augment.active

    # ------------------------------------------------------------------ building
    def _architecture(self, n_features):
        return {"layer_sizes": [n_features] + self._hidden_sizes() + [self.n_outputs_],
                "activation": ACTIVATIONS[self.activation], "output": self._output_kind(),
                "batchnorm": bool(self.batchnorm),
                "keep_prob": self.keep_prob if np.ndim(self.keep_prob) == 0
                else list(self.keep_prob),
                "dtype": self._training_dtype}

    def _output_kind(self):
        return {"softmax": "softmax", "logistic": "sigmoid",
                "identity": "identity", "exp": "exp"}[self.out_activation_]

    def _scale(self):
        """k for the squared error of k targets, which scikit-learn reports averaged
        over them (its Poisson loss and cross-entropies are summed, as fastdnn's)."""
        return self.n_outputs_ if self._loss_scale_outputs and \
            getattr(self, "loss", "") == "squared_error" else 1

    def _initialize(self, n_features, rng, assigned=False):
        """Build model_ with scikit-learn's initial weights drawn from ``rng``, or, when
        ``assigned``, with the coefs_ and intercepts_ the user set."""
        arch = self._architecture(n_features)
        sizes = arch["layer_sizes"]
        params = {} if assigned else self._glorot_draws(sizes, rng)
        keeps = np.atleast_1d(arch["keep_prob"])
        # the dropout masks and augmentation draws are keyed by the model's seed; drawn
        # only for them, so that other fits take scikit-learn's stream unchanged
        random_draws = np.any(keeps < 1) or self._augments()
        seed = int(rng.randint(np.iinfo(np.int32).max)) if random_draws else 0
        self.model_ = MLP(sizes, activation=arch["activation"], output=arch["output"],
                          init="he", batchnorm=arch["batchnorm"],
                          keep_prob=arch["keep_prob"], l2=float(self.alpha),
                          dtype=arch["dtype"], backend=_engine_backend(self.backend),
                          seed=seed)
        self.n_layers_ = len(sizes)
        have = self.model_.get_weights()
        if assigned:
            params = self._assigned_params(have)
        self.model_.set_weights({k: v for k, v in params.items() if k in have})
        self._sync_attributes()
        self._arch = arch
        self._optimizer = None
        self._best_params = (self.model_.get_weights(), self.model_.get_batchnorm_stats())
        self.n_iter_ = 0
        self.t_ = 0
        self.loss_curve_ = []
        self._no_improvement_count = 0
        if self.early_stopping:
            self.validation_scores_ = []
            self.best_validation_score_ = -np.inf
            self.best_loss_ = None
        else:
            self.best_loss_ = np.inf
            self.validation_scores_ = None
            self.best_validation_score_ = None

    def _glorot_draws(self, sizes, rng):
        """scikit-learn's initial weights and biases, drawn from rng in its order."""
        params = {}
        factor = 2.0 if self.activation == "logistic" else 6.0
        for l, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
            bound = np.sqrt(factor / (fan_in + fan_out))
            params[f"W{l}"] = rng.uniform(-bound, bound, (fan_in, fan_out)).T
            params[f"b{l}"] = rng.uniform(-bound, bound, fan_out)
        return params

    def _new_optimizer(self):
        """A fastdnn optimizer for solver; its lr is set from self._lr before each epoch."""
        be = self.model_.backend
        if self.solver == "adam":
            opt = _SklearnAdam(lr=self.learning_rate_init, beta1=self.beta_1,
                               beta2=self.beta_2, eps=self.epsilon, backend=be)
        elif self.momentum == 0:
            opt = _SklearnSGD(lr=self.learning_rate_init, backend=be)
        else:
            cls = _SklearnNesterov if self.nesterovs_momentum else _SklearnMomentum
            opt = cls(lr=self.learning_rate_init, beta=self.momentum, backend=be)
        opt.learning_rate = self.learning_rate_init
        return opt

    def _optimizer_matches(self):
        opt = self._optimizer
        if opt is None:
            return False
        if self.solver == "adam":
            return type(opt) is _SklearnAdam
        if self.momentum == 0:
            return type(opt) is _SklearnSGD
        return type(opt) is (_SklearnNesterov if self.nesterovs_momentum
                             else _SklearnMomentum)

    @property
    def _lr(self):
        """scikit-learn's current learning rate, kept by the optimizer as its own is."""
        return self._optimizer.learning_rate

    @_lr.setter
    def _lr(self, value):
        self._optimizer.learning_rate = value

    def _apply_lr(self):
        """Put the scikit-learn learning rate self._lr into fastdnn's optimizer."""
        opt = self._optimizer
        if self.solver == "adam":
            opt.lr = opt.initial_lr = float(self._lr)
            opt.beta1, opt.beta2 = float(self.beta_1), float(self.beta_2)
            opt.eps = float(self.epsilon)
            return
        lr = self._lr
        if self.momentum != 0:
            lr = lr / (1.0 - self.momentum)
            opt.beta = float(self.momentum)
        opt.lr = float(lr)

    # ------------------------------------------------------------------ fitting
    def fit(self: EstimatorT, X: Inputs, y: ArrayLike,
            sample_weight: ArrayLike | None = None) -> EstimatorT:
        """Fit the model to X and y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n, n_features)
        y : array-like of shape (n,) or (n, k)
            Class labels (classification; a 2-D 0/1 indicator for multi-label) or
            targets (regression).
        sample_weight : array-like of shape (n,), optional
            Each sample's weight, as in scikit-learn: a batch's loss is
            sum_i w_i loss_i / sum_i w_i and the L2 term is divided by sum_i w_i; early
            stopping splits the weights with the samples and weighs the validation
            score.

        Returns
        -------
        self
        """
        return self._fit(X, y, incremental=False, sample_weight=sample_weight)

    def _fit(self, X, y, incremental, sample_weight=None):
        self._check_params()
        hidden = self._hidden_sizes()
        first_pass = not hasattr(self, "model_") or (not self.warm_start and not incremental)
        # coefs_ / intercepts_ assigned before any fit: scikit-learn continues from them
        assigned = (not hasattr(self, "model_") and hasattr(self, "coefs_")
                    and (self.warm_start or incremental))
        X, Y = self._validate_input(X, y, incremental, reset=first_pass)
        if self.augment is not None:   # its error names augment's image_shape
            self.augment.check(X.shape[1])
        if first_pass or self.dtype is not None:
            # scikit-learn trains in X's dtype: float32 stays float32, the rest float64
            self._training_dtype = str(np.dtype(X.dtype if self.dtype is None
                                                else self.dtype))
        W = None if sample_weight is None else check_sample_weight(sample_weight,
                                                                   X.shape[0])
        rng = check_random_state(self.random_state)
        if first_pass:
            self._initialize(X.shape[1], rng, assigned)
        elif self._arch != self._architecture(X.shape[1]):
            raise ValueError(
                f"warm_start / partial_fit continue the fitted network, whose architecture "
                f"is {self._arch}; the parameters now ask for "
                f"{self._architecture(X.shape[1])} (hidden_layer_sizes={hidden}). "
                "Set warm_start=False to fit a new network.")
        else:
            self._adopt_assigned()
        self.model_.l2 = float(self.alpha)
        if self.solver == "lbfgs":
            self._fit_lbfgs(X, Y, W)
            self._sync_attributes()
            return self
        # scikit-learn makes a new optimizer on every fit and keeps it in partial_fit;
        # we keep it for warm_start too (documented).
        if not self._optimizer_matches():
            self._optimizer = self._new_optimizer()
            self._lr = float(self.learning_rate_init)
        elif not incremental and self.solver == "adam":
            self._lr = float(self.learning_rate_init)
        elif not incremental and self.learning_rate == "constant":
            self._lr = float(self.learning_rate_init)
        self._fit_stochastic(X, Y, rng, incremental, W)
        self._sync_attributes()
        return self

    def _fit_lbfgs(self, X, Y, W):
        """scikit-learn's lbfgs: SciPy's L-BFGS-B over all parameters, on the loss and
        gradient of the whole training set that fastdnn computes (a full-batch step
        without update), limited by max_iter and max_fun, converged at gtol=tol."""
        import scipy.optimize
        params, dtype = self.model_.parameters, np.dtype(self._training_dtype)
        X = np.ascontiguousarray(_dense(X), dtype=dtype)   # full batches: dense once
        Y = np.ascontiguousarray(Y, dtype=dtype)
        k = self._scale()
        weight = len(X) if W is None else W.sum()

        def loss_and_grad(theta):
            params.arrays.set(params.flat, theta.astype(dtype))
            loss, grads = self.model_.loss_and_grads(X, Y, sample_weight=W)
            if k > 1:   # scikit-learn averages this loss over the targets, not its gradient
                l2 = self._l2_term(weight)
                loss = (loss - l2) / k + l2
            # the gradients come in the order of the flat parameters
            return loss, np.concatenate([g.ravel() for g in grads.values()]).astype(
                np.float64)

        theta = params.arrays.get(params.flat).astype(np.float64)
        result = scipy.optimize.minimize(
            loss_and_grad, theta, method="L-BFGS-B", jac=True,
            options={"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol})
        params.arrays.set(params.flat, result.x.astype(dtype))
        self.n_iter_ = min(int(result.nit), self.max_iter)
        self.loss_ = float(result.fun)
        if not np.isfinite(result.x).all():
            raise ValueError("Solver produced non-finite parameter weights. The input data "
                             "may contain large values and need to be preprocessed.")
        if result.status != 0:
            warnings.warn(f"lbfgs failed to converge after {self.n_iter_} iteration(s) "
                          f"(status={result.status}): {result.message}. Increase max_iter "
                          "or max_fun, or scale the data.", ConvergenceWarning)

    def _l2_term(self, m):
        """The L2 term of the loss of m samples (or of rows whose weights sum to m):
        (alpha / 2m) sum ||W||^2."""
        p = self.model_.get_weights()
        return 0.5 * self.alpha * sum(float(np.sum(np.square(p[f"W{l}"], dtype=np.float64)))
                                      for l in range(1, self.n_layers_)) / m

    def _fit_stochastic(self, X, Y, rng, incremental, W):
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        dtype = np.dtype(self._training_dtype)
        W_train = W_val = None
        if self.early_stopping:   # the weights are split with the rows
            stratify = Y if (self._is_classifier() and self.n_outputs_ == 1) else None
            split = train_test_split(
                *((X, Y) if W is None else (X, Y, W)), random_state=rng,
                test_size=self.validation_fraction, stratify=stratify)
            X_train, X_val, Y_train, Y_val = split[:4]
            if W is not None:
                W_train, W_val = split[4:]
            if X_val.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase "
                                 "'validation_fraction' or the size of your dataset.")
            y_val = self._val_targets(Y_val)
        else:
            X_train, Y_train, X_val, y_val, W_train = X, Y, None, None, W
        # the augmented gather works on dense rows: a sparse X is densified once
        X_train = _rows_as(_dense(X_train) if self._augments() else X_train, dtype)
        Y_train = np.ascontiguousarray(Y_train, dtype=dtype)
        n = X_train.shape[0]
        if self.batch_size == "auto":
            batch_size = min(200, n)
        else:
            if self.batch_size > n:
                warnings.warn("Got `batch_size` less than 1 or larger than sample size. "
                              "It is going to be clipped")
            batch_size = int(np.clip(self.batch_size, 1, n))
        sample_idx = np.arange(n, dtype=int)
        self.n_iter_ = 0
        try:
            for _ in range(self.max_iter):
                if self.shuffle:
                    sample_idx = _shuffled(sample_idx, rng)
                    Xe, Ye = X_train[sample_idx], Y_train[sample_idx]
                    We = None if W_train is None else W_train[sample_idx]
                else:
                    Xe, Ye, We = X_train, Y_train, W_train
                self._apply_lr()
                try:
                    self.loss_ = self._epoch(Xe, Ye, batch_size, We)
                except FloatingPointError as exc:
                    if not self.early_stopping:
                        raise ValueError(
                            "Solver produced non-finite parameter weights. The input data "
                            "may contain large values and need to be preprocessed. "
                            f"({exc})") from None
                    self._record_divergence(n)
                    break
                self.n_iter_ += 1
                self.t_ += n
                self.loss_curve_.append(self.loss_)
                if self.verbose:
                    print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))
                self._update_no_improvement_count(X_val, y_val, W_val)
                if self.solver == "sgd" and self.learning_rate == "invscaling":
                    self._lr = (float(self.learning_rate_init)
                                / (self.t_ + 1) ** self.power_t)
                if self._no_improvement_count > self.n_iter_no_change:
                    what = ("Validation score did not improve" if self.early_stopping
                            else "Training loss did not improve")
                    msg = (f"{what} more than tol={self.tol:f} for "
                           f"{self.n_iter_no_change} consecutive epochs.")
                    if self._trigger_stopping(msg):
                        break
                    self._no_improvement_count = 0
                if incremental:
                    break
                if self.n_iter_ == self.max_iter:
                    warnings.warn("Stochastic Optimizer: Maximum iterations (%d) reached "
                                  "and the optimization hasn't converged yet."
                                  % self.max_iter, ConvergenceWarning)
        except KeyboardInterrupt:   # as scikit-learn: fit keeps the epochs done
            warnings.warn("Training interrupted by user.")
        if self.early_stopping:
            self.model_.set_weights(self._best_params[0])
            self.model_.set_batchnorm_stats(self._best_params[1])

    def _record_divergence(self, n):
        """After the loss diverged with early stopping, scikit-learn trains on in NaN
        to max_iter (a NaN score never counts as "no improvement"), then restores the
        best weights: the same record, without the NaN epochs' work."""
        while self.n_iter_ < self.max_iter:
            self.n_iter_ += 1
            self.t_ += n
            self.loss_ = np.nan
            self.loss_curve_.append(np.nan)
            self.validation_scores_.append(np.nan)
            self._no_improvement_count = 0
        warnings.warn("Stochastic Optimizer: Maximum iterations (%d) reached and the "
                      "optimization hasn't converged yet." % self.max_iter,
                      ConvergenceWarning)

    def _epoch(self, Xe, Ye, batch_size, We=None):
        """One pass over (Xe, Ye) in order (rows weighing We, default 1); returns
        scikit-learn's mean training loss."""
        k, model = self._scale(), self.model_
        if k == 1 or self.alpha == 0:
            history = model.fit(Xe, Ye, optimizer=self._optimizer, epochs=1,
                                batch_size=batch_size, shuffle=False, verbose=0,
                                sample_weight=We, augment=self.augment)
            return float(history["loss"][0]) / k
        # k targets and L2: sklearn's loss is fastdnn's squared-error part / k plus the
        # L2 term, which needs ||W||^2 before each update, so step batch by batch.
        n, total = Xe.shape[0], 0.0
        for s in range(0, n, batch_size):
            Xb, Yb = Xe[s:s + batch_size], Ye[s:s + batch_size]
            Wb = None if We is None else We[s:s + batch_size]
            l2 = self._l2_term(Xb.shape[0] if Wb is None else Wb.sum())
            loss = model.train_step(Xb, Yb, self._optimizer, sample_weight=Wb,
                                    augment=self.augment)
            total += ((loss - l2) / k + l2) * Xb.shape[0]
        return total / n

    def _trigger_stopping(self, msg):
        if self.solver != "sgd" or self.learning_rate != "adaptive":
            if self.verbose:
                print(msg + " Stopping.")
            return True
        if self._lr <= 1e-6:
            if self.verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self._lr /= 5.0
        if self.verbose:
            print(msg + " Setting learning rate to %f" % self._lr)
        return False

    def _update_no_improvement_count(self, X_val, y_val, W_val=None):
        if self.early_stopping:
            score = self._score_fitted(X_val, y_val, W_val)
            self.validation_scores_.append(score)
            if self.verbose:
                print("Validation score: %f" % score)
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_params = (self.model_.get_weights(),
                                     self.model_.get_batchnorm_stats())
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    def _score_fitted(self, X, y, sample_weight=None):
        pred = self._predict_raw(X, validated=True)
        if np.issubdtype(pred.dtype, np.floating) and not np.isfinite(pred).all():
            return np.nan
        return float(self._score_function(y, pred, sample_weight=sample_weight))

    def _sync_attributes(self):
        """coefs_ (n_in, n_out) and intercepts_ as scikit-learn lays them out, live on
        the host backends: views of the model's parameters, so that editing them in
        place changes the model (copies on the GPU). A layer without a bias (BatchNorm
        follows it) has read-only zeros."""
        params = self.model_.parameters
        host = isinstance(params.flat, np.ndarray)
        coefs, intercepts = [], []
        for l in range(1, self.n_layers_):
            W, b = params.p[f"W{l}"], params.p.get(f"b{l}")
            coefs.append(W.T if host else params.arrays.get(W).T)
            if b is None:
                b = np.zeros(W.shape[0], params.dtype)
                b.flags.writeable = False
            intercepts.append(b if host else params.arrays.get(b))
        self.coefs_, self.intercepts_ = coefs, intercepts
        self._given = (tuple(coefs), tuple(intercepts))

    def _adopt_assigned(self):
        """scikit-learn users assign coefs_[i] and intercepts_[i] (or whole lists):
        arrays put there become the model's parameters, and the lists live views again."""
        given = getattr(self, "_given", None)
        mine = (self.coefs_, self.intercepts_)
        if given is not None and all(len(a) == len(b) and all(x is y for x, y in zip(a, b))
                                     for a, b in zip(given, mine)):
            return
        self.model_.set_weights(self._assigned_params(self.model_.get_weights()))
        self._sync_attributes()

    def _assigned_params(self, have):
        """{"W1": ..., "b1": ...} from coefs_ and intercepts_, checked against the shapes
        of ``have`` (the model's parameters)."""
        L = self.n_layers_ - 1
        for name, items in (("coefs_", self.coefs_), ("intercepts_", self.intercepts_)):
            if len(items) != L:
                raise ValueError(f"{name} must hold {L} arrays (one per layer), got "
                                 f"{len(items)}")
        params = {}
        for l in range(1, L + 1):
            W = np.asarray(self.coefs_[l - 1]).T
            b = np.asarray(self.intercepts_[l - 1])
            if W.shape != have[f"W{l}"].shape:
                raise ValueError(f"coefs_[{l - 1}] must have shape "
                                 f"{have[f'W{l}'].shape[::-1]}, got {W.shape[::-1]}")
            if f"b{l}" in have:
                if b.shape != have[f"b{l}"].shape:
                    raise ValueError(f"intercepts_[{l - 1}] must have shape "
                                     f"{have[f'b{l}'].shape}, got {b.shape}")
                params[f"b{l}"] = b
            elif np.any(b != 0):
                raise ValueError(f"intercepts_[{l - 1}] must stay zero: layer {l} has no "
                                 "bias (BatchNorm follows it)")
            params[f"W{l}"] = W
        return params

    # ------------------------------------------------------------------ inference
    def _decision(self, X, validated=False):
        """X -> output pre-activations (n, k) in the training dtype; ``validated``: X
        was checked by fit already (the early-stopping split, without feature names)."""
        check_is_fitted(self, "model_")
        self._adopt_assigned()
        if not validated:
            X = _validate_data(self, X, reset=False, accept_sparse=["csr", "csc"],
                               dtype=(np.float64, np.float32))
        return self.model_.decision_function(X)   # a sparse X: in blocks of rows

    def to_onnx(self, path: str | os.PathLike[str] | None = None, *,
                fold_batchnorm: bool = True, opset: int | None = None) -> onnx.ModelProto:
        """The fitted estimator as an ONNX graph, written to ``path`` if given.

        Its outputs match ``predict`` (and ``predict_proba``); see
        fastdnn.export.sklearn_to_onnx.

        Parameters
        ----------
        path : str or os.PathLike, optional
            Where to write the graph too.
        fold_batchnorm : bool, default=True
            Fold BatchNorm into the preceding Gemm; False writes BatchNormalization
            nodes.
        opset : int, optional
            The ONNX opset; default fastdnn.export.DEFAULT_OPSET.

        Returns
        -------
        onnx.ModelProto

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit``.
        """
        from .export import sklearn_to_onnx
        check_is_fitted(self, "model_")
        return sklearn_to_onnx(self, path, fold_batchnorm=fold_batchnorm, opset=opset)

    # ------------------------------------------------------------------ pickling
    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_given", None)   # the views of this process's model
        model = state.get("model_")
        if model is not None and not isinstance(model, dict):
            config = model.get_config()
            state["model_"] = {"config": config, "params": model.get_weights(),
                               "batchnorm_stats": model.get_batchnorm_stats(),
                               "step": model.step_, "epoch": model.epoch_}
        return state

    def __setstate__(self, state):
        saved = state.get("model_")
        if isinstance(saved, dict):
            config = dict(saved["config"])
            config["backend"] = _engine_backend(state.get("backend", "auto"))
            model = model_from_config(config)
            # (older pickles' params lack the statistics: they are saved beside them)
            model.set_weights({**saved["params"], **saved["batchnorm_stats"]})
            model.step_, model.epoch_ = saved["step"], saved["epoch"]
            state = dict(state, model_=model)
            opt = state.get("_optimizer")
            if opt is not None:
                opt.backend = model.backend
        self.__dict__.update(state)
        if isinstance(saved, dict) and "coefs_" in state:
            self.model_.set_weights(self._assigned_params(self.model_.get_weights()))
            self._sync_attributes()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True     # accepted, and densified
        return tags


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier on fastdnn, a drop-in for scikit-learn's.

    Minimises the cross-entropy (softmax for several classes; one sigmoid unit for two
    classes; sigmoid units for multi-label y) plus alpha's L2 term, with mini-batch
    sgd or adam. The parameters of ``sklearn.neural_network.MLPClassifier`` have the
    same meanings and defaults (see the module docstring for how they map onto fastdnn
    and where they differ).

    Parameters
    ----------
    hidden_layer_sizes : int or sequence of int, default=(100,)
    activation : {"identity", "logistic", "tanh", "relu"}, default="relu"
    solver : {"adam", "sgd", "lbfgs"}, default="adam"
        lbfgs: full-batch L-BFGS-B through SciPy (needs batchnorm=False, keep_prob=1).
    alpha : float, default=1e-4
        L2 strength: (alpha / 2m) * sum ||W||^2 on a batch of m samples (fastdnn's lambd).
    batch_size : int or "auto", default="auto"
        "auto" is min(200, n).
    learning_rate : {"constant", "invscaling", "adaptive"}, default="constant"
        sgd only: lr_init / (t + 1) ** power_t with t the samples seen, or divided by 5
        when n_iter_no_change epochs bring no improvement of tol.
    learning_rate_init, power_t, max_iter, shuffle, random_state, tol, verbose :
        As in scikit-learn.
    warm_start : bool, default=False
        Continue from the fitted network. Unlike scikit-learn, the optimizer state
        (Adam moments or momentum velocity, step count, learning rate) is kept too.
    momentum, nesterovs_momentum : float, bool
        sgd momentum in scikit-learn's sense (v = momentum v - lr g), run by fastdnn's
        Momentum / Nesterov with lr / (1 - momentum); must be < 1.
    early_stopping, validation_fraction, beta_1, beta_2, epsilon, n_iter_no_change :
        As in scikit-learn.
    max_fun : int, default=15000
        lbfgs only: the most loss evaluations.
    batchnorm : bool, default=False
        BatchNorm after each hidden dense layer (fastdnn). Those layers then have no
        bias: their intercepts_ are zeros and gamma / beta live in ``model_``.
    keep_prob : float or sequence of float, default=1.0
        Dropout keep probability of the hidden layers (fastdnn).
    augment : fastdnn.Augment or None, default=None
        Data augmentation of the training batches, as ``fastdnn.MLP.fit(augment=...)``:
        each row is an image of ``augment.image_shape`` (its product must be
        n_features), flipped, shifted and given noise afresh in every batch, with
        draws keyed by random_state and the training step (fits repeat bit for bit).
        Validation data for early_stopping and predictions are not augmented; a
        sparse X is densified. Not with solver="lbfgs".
    backend : {"auto", "numpy", "cpu", "cuda"}, default="auto"
        fastdnn's kernels; "auto" uses the fused CPU kernels (numpy if unavailable).
    dtype : {None, "float32", "float64"}, default=None
        The precision of training and of the outputs. None follows X, as scikit-learn
        does: float32 X trains in float32, any other X in float64.

    Attributes
    ----------
    classes_ : ndarray
    coefs_ : list of (n_in, n_out) arrays
        Live views of the weights (host backends): edits change the model.
    intercepts_ : list of (n_out,) arrays
    loss_ : float
    loss_curve_ : list of float
    best_loss_ : float or None
    validation_scores_ : list of float or None
    best_validation_score_ : float or None
    n_iter_ : int
        Epochs run by the last fit (1 after partial_fit).
    t_ : int
        Training samples seen, over all fits.
    n_layers_, n_outputs_ : int
    out_activation_ : {"softmax", "logistic"}
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        When X was a DataFrame with string column names.
    model_ : fastdnn.MLP
        The trained network.
    """

    _score_function = staticmethod(accuracy_score)

    def _is_classifier(self):
        return True

    def _validate_input(self, X, y, incremental, reset):
        X, y = _validate_data(self, X, y, multi_output=True, accept_sparse=["csr", "csc"],
                              dtype=(np.float64, np.float32), reset=reset)
        X = X.tocsr() if hasattr(X, "tocsr") else X   # kept sparse: densified per batch
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same classes as "
                        f"in the previous call to fit. Previously got {self.classes_}, "
                        f"`y` has {classes}")
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(f"`y` has classes not in `self.classes_`. "
                                 f"`self.classes_` has {self.classes_}. 'y' has {classes}.")
        # bool as in scikit-learn (the early-stopping split stratifies on it)
        Y = self._label_binarizer.transform(y).astype(bool)
        if reset or not hasattr(self, "n_outputs_"):
            self.n_outputs_ = Y.shape[1]
            self.out_activation_ = ("softmax" if self._label_binarizer.y_type_ ==
                                    "multiclass" else "logistic")
        return X, Y

    def _val_targets(self, Y_val):
        return self._label_binarizer.inverse_transform(Y_val)

    @available_if(_stochastic_solver)
    def partial_fit(self, X: Inputs, y: ArrayLike, classes: ArrayLike | None = None,
                    sample_weight: ArrayLike | None = None) -> MLPClassifier:
        """One epoch over (X, y), continuing from the current state.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n, n_features)
        y : array-like of shape (n,) or (n, k)
        classes : array of shape (n_classes,), optional
            All the classes; required on the first call, ignored for multi-label y.
        sample_weight : array-like of shape (n,), optional
            As in ``fit``.

        Returns
        -------
        self
        """
        if not hasattr(self, "classes_"):
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit.")
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
            self.classes_ = self._label_binarizer.classes_
        elif classes is not None and not np.array_equal(
                self.classes_, unique_labels(classes)):
            raise ValueError(f"`classes={classes}` is not the same as on last call to "
                             f"partial_fit, was: {self.classes_}")
        return self._fit(X, y, incremental=True, sample_weight=sample_weight)

    def _predict_raw(self, X, validated=False):
        return self._label_binarizer.inverse_transform(self._proba_raw(X, validated))

    def _proba_raw(self, X, validated=False):
        Z = self._decision(X, validated)
        if self.out_activation_ == "softmax":
            Z = Z - Z.max(axis=1, keepdims=True)
            np.exp(Z, out=Z)
            Z /= Z.sum(axis=1, keepdims=True)
            return Z
        P = 0.5 * (1.0 + np.tanh(0.5 * Z))   # sigmoid without overflow
        return P.ravel() if self.n_outputs_ == 1 else P

    def predict(self, X: Inputs) -> NDArray[Any]:
        """Predicted class labels (n,), or the (n, k) indicator matrix for multi-label.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n, n_features)

        Returns
        -------
        ndarray of shape (n,) or (n, k)
            Labels from classes_.
        """
        check_is_fitted(self, "model_")
        return self._predict_raw(X)

    def predict_proba(self, X: Inputs) -> NDArray[np.floating]:
        """Class probabilities (n, n_classes) in the order of classes_.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n, n_features)

        Returns
        -------
        ndarray of shape (n, n_classes)
            In the training dtype; for multi-label y, each label's probability.
        """
        check_is_fitted(self, "model_")
        P = self._proba_raw(X)
        if P.ndim == 1:
            return np.vstack([1 - P, P]).T
        return P

    def predict_log_proba(self, X: Inputs) -> NDArray[np.floating]:
        """log of predict_proba.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n, n_features)

        Returns
        -------
        ndarray of shape (n, n_classes)
            -inf where a probability is 0.
        """
        P = self.predict_proba(X)
        with np.errstate(divide="ignore"):
            return np.log(P, out=P)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor on fastdnn, a drop-in for scikit-learn's.

    Minimises half the squared error (averaged over samples and targets, as in
    scikit-learn) with an identity output, or with ``loss="poisson"`` half the Poisson
    deviance of exp outputs (the log link; targets are counts >= 0, predict gives the
    means exp(z)), plus alpha's L2 term, by mini-batch sgd or adam or by lbfgs.
    Parameters and attributes are those of MLPClassifier (without classes_;
    out_activation_ is "identity" or "exp"), plus ``loss``.

    Parameters
    ----------
    loss : {"squared_error", "poisson"}, default="squared_error"
        "poisson": exp outputs and half the Poisson deviance; y must be >= 0.
    hidden_layer_sizes, activation, solver, alpha, batch_size, learning_rate :
        As in MLPClassifier.
    learning_rate_init, power_t, max_iter, shuffle, random_state, tol, verbose :
        As in MLPClassifier.
    warm_start, momentum, nesterovs_momentum, early_stopping, validation_fraction :
        As in MLPClassifier.
    beta_1, beta_2, epsilon, n_iter_no_change, max_fun :
        As in MLPClassifier.
    batchnorm, keep_prob, augment, backend, dtype :
        As in MLPClassifier.
    """

    _score_function = staticmethod(r2_score)
    _loss_scale_outputs = True

    def __init__(self, loss: str = "squared_error",
                 hidden_layer_sizes: int | Sequence[int] = (100,),
                 activation: str = "relu", *, solver: str = "adam", alpha: float = 0.0001,
                 batch_size: int | str = "auto", learning_rate: str = "constant",
                 learning_rate_init: float = 0.001, power_t: float = 0.5,
                 max_iter: int = 200, shuffle: bool = True,
                 random_state: int | np.random.RandomState | None = None,
                 tol: float = 1e-4, verbose: bool = False, warm_start: bool = False,
                 momentum: float = 0.9, nesterovs_momentum: bool = True,
                 early_stopping: bool = False, validation_fraction: float = 0.1,
                 beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-8,
                 n_iter_no_change: int = 10, max_fun: int = 15000,
                 batchnorm: bool = False, keep_prob: float | Sequence[float] = 1.0,
                 augment: Augment | None = None, backend: str = "auto",
                 dtype: DTypeLike | None = None) -> None:
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver,
            alpha=alpha, batch_size=batch_size, learning_rate=learning_rate,
            learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
            shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose,
            warm_start=warm_start, momentum=momentum,
            nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
            validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2,
            epsilon=epsilon, n_iter_no_change=n_iter_no_change, max_fun=max_fun,
            batchnorm=batchnorm, keep_prob=keep_prob, augment=augment, backend=backend,
            dtype=dtype)
        self.loss = loss

    def _check_params(self):
        check_choice("loss", self.loss, ("squared_error", "poisson"))
        super()._check_params()

    def _is_classifier(self):
        return False

    def _validate_input(self, X, y, incremental, reset):
        X, y = _validate_data(self, X, y, multi_output=True, y_numeric=True,
                              accept_sparse=["csr", "csc"],
                              dtype=(np.float64, np.float32), reset=reset)
        X = X.tocsr() if hasattr(X, "tocsr") else X   # kept sparse: densified per batch
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        if reset or not hasattr(self, "n_outputs_"):
            self.n_outputs_ = Y.shape[1]
            self.out_activation_ = "exp" if self.loss == "poisson" else "identity"
        elif Y.shape[1] != self.n_outputs_:
            raise ValueError(f"y must have {self.n_outputs_} target(s) as in the previous "
                             f"fit, got {Y.shape[1]}")
        return X, Y.astype(np.float64, copy=False)

    def _val_targets(self, Y_val):
        return Y_val.ravel() if self.n_outputs_ == 1 else Y_val

    @available_if(_stochastic_solver)
    def partial_fit(self, X: Inputs, y: ArrayLike,
                    sample_weight: ArrayLike | None = None) -> MLPRegressor:
        """One epoch over (X, y) (rows weighing sample_weight), continuing from the state.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n, n_features)
        y : array-like of shape (n,) or (n, k)
            Targets.
        sample_weight : array-like of shape (n,), optional
            As in ``fit``.

        Returns
        -------
        self
        """
        return self._fit(X, y, incremental=True, sample_weight=sample_weight)

    def _predict_raw(self, X, validated=False):
        Z = self._decision(X, validated)
        if self.out_activation_ == "exp":
            Z = np.exp(Z)
        return Z.ravel() if self.n_outputs_ == 1 else Z

    def predict(self, X: Inputs) -> NDArray[np.floating]:
        """Predicted targets: (n,) for one target, else (n, k), in the training dtype.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n, n_features)

        Returns
        -------
        ndarray of shape (n,) or (n, k)
            The outputs, or their means exp(z) with ``loss="poisson"``.
        """
        check_is_fitted(self, "model_")
        return self._predict_raw(X)
