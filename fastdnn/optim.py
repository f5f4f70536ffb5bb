"""Optimizer objects: hyperparameters and state, updates run by the backend's kernels.

``opt.step(params, grads)`` updates in place. ``params`` and ``grads`` are either one
flat array each (how the models keep them: one kernel call per step) or matching lists
of arrays (one kernel call per array, or one for them all where the backend takes
lists: fastdnn.cpu). State arrays (velocity, moments) are created on the first step with
the shapes of ``params`` and live in the optimizer, next to them: on a backend whose
kernel module keeps arrays on a device (fastdnn.cuda, given device arrays), the state is
device arrays too, made by the module's ``zeros_like`` and read back by its ``to_host``
(``state_dict`` always returns NumPy arrays).
"""
from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any, Union

import numpy as np
from numpy.typing import NDArray

from ._validation import check_bool, check_int, check_real
from .backend import kernels as _kernels

if TYPE_CHECKING:
    from .cuda._device import DeviceArray

#: What ``step`` takes as params and grads: one array, or matching arrays; NumPy arrays,
#: or device arrays of a kernel module that keeps them on a device (fastdnn.cuda).
Arrays = Union[NDArray[np.floating], "DeviceArray",
               Sequence[Union[NDArray[np.floating], "DeviceArray"]]]


class Optimizer:
    """Base class of the optimizers: hyperparameters, step count and state arrays.

    Subclasses set ``_kernel``, ``_state_names`` and ``_hyper_names``.

    Parameters
    ----------
    lr : float >= 0
        The learning rate.
    weight_decay : float >= 0, default 0.0
        Coupled L2 (decoupled in AdamW).
    backend : str, default "auto"
        The kernels ``step`` runs on: "auto", "numpy", "cpu" or "cuda".

    Attributes
    ----------
    learning_rate : float
        Keras's name for ``lr``: the same value, read and written through either name
        (a Keras callback's ``model.optimizer.learning_rate = x`` takes effect).
    initial_lr : float
        ``lr`` as first given (schedules start from it).
    t : int
        Updates done.
    state : dict or None
        {name: [array per param]}, made on the first step.
    """

    _kernel = None
    engine_name = None   # the compiled engine's update (formulas.OPTIMIZER_CODES)
    _state_names = ()
    _hyper_names = ()

    def __init__(self, lr: float, weight_decay: float = 0.0, backend: str = "auto") -> None:
        self.lr = check_real("lr", lr, 0.0)
        self.initial_lr = self.lr
        self.weight_decay = check_real("weight_decay", weight_decay, 0.0)
        self.backend = backend
        self.t = 0          # updates done; Adam's bias correction uses t + 1 on the next
        self.state = None   # {name: [array per param]}
        self._lists = None  # (kernel module, its TensorLists of the last list update)

    @property
    def learning_rate(self) -> float:
        """The learning rate under Keras's name: ``lr`` itself, read and written alike.

        Keras callbacks set ``self.model.optimizer.learning_rate``; the next steps use
        it, as they would a new ``lr``. Under a model's schedule, which sets ``lr``
        from ``initial_lr`` each epoch or step, the schedule goes on from the new rate:
        ``initial_lr`` is scaled alike, as ReduceLROnPlateau does (a plain ``lr =``,
        fastdnn's own name, is what schedules write and is replaced by them).

        Returns
        -------
        float
        """
        return self.lr

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        value = check_real("learning_rate", value, 0.0)
        old = float(self.lr)
        self.initial_lr = self.initial_lr * value / old if old else value
        self.lr = value

    # ------------------------------------------------------------------ updating
    def step(self, params: Arrays, grads: Arrays, *,
             kernels: ModuleType | None = None) -> None:
        """One update of ``params`` in place from ``grads``.

        Parameters
        ----------
        params, grads : ndarray or list of ndarray
            Matching arrays (same shapes and float dtype); device arrays on a kernel
            module that keeps arrays on a device.
        kernels : module, optional
            The kernel module to run on (the models pass theirs); default: this
            optimizer's ``backend``.
        """
        K = kernels if kernels is not None else _kernels(self.backend)
        lr = check_real("lr", self.lr, 0.0)
        kernel = getattr(K, self._kernel)
        memo = self._lists
        if memo is not None and memo[0] is K and isinstance(params, (list, tuple)) and \
                memo[1].holds(params, grads, *self._state_lists()):
            lists = memo[1]   # the very arrays of the last step: checked then
        else:
            params, grads = _as_list("params", params, K), _as_list("grads", grads, K)
            if len(params) != len(grads):
                raise ValueError(f"grads must have one array per param ({len(params)}), "
                                 f"got {len(grads)}")
            for i, (p, g) in enumerate(zip(params, grads)):
                if tuple(p.shape) != tuple(g.shape) or p.dtype != g.dtype:
                    raise ValueError(f"grads[{i}] must match params[{i}] {p.shape} "
                                     f"{p.dtype}, got {g.shape} {g.dtype}")
            self._ensure_state(params, K)
            lists = None
            if len(params) > 1 and hasattr(K, "TensorLists"):
                # one call for every tensor (fastdnn.cpu updates them in one parallel
                # loop), the lists checked and flattened once while the same arrays come back
                lists = K.TensorLists(params, grads, *self._state_lists())
                self._lists = (K, lists)
        self.t += 1
        if lists is not None:
            self._update(kernel, lists, None, [None] * len(self._state_names), lr)
            return
        for i, (p, g) in enumerate(zip(params, grads)):
            self._update(kernel, p, g, [self.state[n][i] for n in self._state_names], lr)

    def _state_lists(self):
        return [self.state[n] for n in self._state_names] if self.state else []

    def flat_state(self, param: NDArray[np.floating]) -> list[NDArray[np.floating]]:
        """This optimizer's state arrays for one flat parameter array.

        What the compiled engine updates.

        Parameters
        ----------
        param : (P,) float32 or float64 array
            The flat parameters.

        Returns
        -------
        list of arrays
            The state arrays of param's shape and dtype (made on first use, zero), in
            ``_state_names`` order; empty for SGD.

        Raises
        ------
        ValueError
            When the optimizer holds state for other parameters.
        """
        if self.state is None:
            self.state = {n: [np.zeros_like(param)] for n in self._state_names}
        arrays = []
        for n in self._state_names:
            held = self.state[n]
            if len(held) != 1 or held[0].shape != param.shape or \
                    held[0].dtype != param.dtype or not isinstance(held[0], np.ndarray):
                if len(held) == 1 and isinstance(held[0], np.ndarray) and \
                        held[0].shape == param.shape:
                    held[0] = held[0].astype(param.dtype)   # state loaded in another dtype
                else:
                    raise ValueError(
                        f"{type(self).__name__} holds state for params "
                        f"{[(tuple(a.shape), a.dtype) for a in held]} but was given one "
                        f"array {param.shape} {param.dtype}; use a fresh optimizer (or "
                        "reset()) for other parameters")
            arrays.append(held[0])
        return arrays

    def _ensure_state(self, params, K):
        if not isinstance(params[0], np.ndarray):
            self._device_module = K.__name__   # (a name: optimizers stay picklable)
        if self.state is None:
            zeros = getattr(K, "zeros_like", np.zeros_like)
            self.state = {n: [zeros(p) for p in params] for n in self._state_names}
            return
        for n in self._state_names:
            arrays = self.state[n]
            if len(arrays) == len(params) and all(
                    a.shape == p.shape and a.dtype == p.dtype and type(a) is type(p)
                    for a, p in zip(arrays, params)):
                continue   # the common case, checked cheaply
            have = [(tuple(a.shape), a.dtype) for a in arrays]
            want = [(tuple(p.shape), p.dtype) for p in params]
            if have != want:
                raise ValueError(
                    f"{type(self).__name__} holds state for params {have} but was given "
                    f"{want}; use a fresh optimizer (or reset()) for other parameters")
            # state restored on the host for params on a device, or the reverse
            arrays = self.state[n]
            for i, (a, p) in enumerate(zip(arrays, params)):
                if isinstance(a, np.ndarray) != isinstance(p, np.ndarray):
                    arrays[i] = K.to_host(a) if isinstance(p, np.ndarray) else K.to_device(a)

    def reset(self) -> None:
        """Forget the state and the step count."""
        self.t = 0
        self.state = None
        self._lists = None

    # ------------------------------------------------------------------ state
    def __getstate__(self):   # pickles without the arrays of the last list update
        return {**self.__dict__, "_lists": None}

    def __setstate__(self, state):
        self.__dict__.update({"_lists": None, **state})

    def get_config(self) -> dict[str, Any]:
        """The optimizer's name and hyperparameters, as JSON-friendly values.

        Returns
        -------
        dict
            {"name", "lr", "initial_lr", "weight_decay", and the subclass's own}.
        """
        return {"name": type(self).__name__, "lr": self.lr, "initial_lr": self.initial_lr,
                "weight_decay": self.weight_decay,
                **{k: getattr(self, k) for k in self._hyper_names}}

    def state_dict(self) -> dict[str, Any]:
        """Hyperparameters, step count and copies of the state arrays.

        Returns
        -------
        dict
            {"config": get_config(), "t": step count, "state": None or
            {name: [NumPy copy per param]}}.
        """
        return {"config": self.get_config(), "t": self.t,
                "state": None if self.state is None else
                {n: [_host_copy(a, getattr(self, "_device_module", None)) for a in arrs]
                 for n, arrs in self.state.items()}}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what ``state_dict`` returned (hyperparameters included).

        Parameters
        ----------
        state : dict
            A ``state_dict`` of an optimizer of this class.

        Raises
        ------
        ValueError
            When ``state`` is another optimizer's.
        """
        config = dict(state["config"])
        if config.pop("name") != type(self).__name__:
            raise ValueError(f"state is for {state['config']['name']}, "
                             f"not {type(self).__name__}")
        initial = config.pop("initial_lr", None)
        fresh = type(self)(**config, backend=self.backend)
        self.__dict__.update({k: v for k, v in fresh.__dict__.items()
                              if k not in ("backend", "_device_module")})
        self.initial_lr = self.lr if initial is None else check_real("initial_lr",
                                                                     initial, 0.0)
        self.t = check_int("t", state["t"], 0)
        self.state = None if state["state"] is None else {
            n: [np.array(a, copy=True) for a in state["state"][n]] for n in self._state_names}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items()
                         if k not in ("name", "initial_lr"))
        return f"{type(self).__name__}({args})"


def _learning_rate(lr, learning_rate, default):
    """The step size from ``lr`` or its Keras spelling ``learning_rate`` (not both)."""
    return _either("lr", lr, "learning_rate", learning_rate, default)


def _either(name, value, keras_name, keras_value, default):
    """A hyperparameter given under fastdnn's ``name`` or Keras's ``keras_name`` (not
    both); ``default`` when neither is given."""
    if value is not None and keras_value is not None:
        raise TypeError(f"give {name} or {keras_name} (Keras's name for it), not both "
                        f"(got {name}={value!r} and {keras_name}={keras_value!r})")
    if value is None:
        value = keras_value
    return default if value is None else value


def _refuse_classical_momentum(momentum, nesterov):
    """SGD takes no momentum: fastdnn's Momentum averages gradients, so the same beta
    and lr make steps (1 - beta) times Keras's and PyTorch's. Point to the equivalent."""
    if momentum is not None:
        check_real("momentum", momentum, 0.0, 1.0, high_open=True)
    if nesterov is not None:
        check_bool("nesterov", nesterov)
    if not momentum and not nesterov:
        return   # momentum=0.0, nesterov=False: plain gradient descent, as in Keras
    b = 0.9 if not momentum else momentum   # (an example beta for nesterov alone)
    cls, flag = ("Nesterov", ", nesterov=True") if nesterov else ("Momentum", "")
    raise TypeError(
        f"SGD takes no momentum (got momentum={momentum!r}, nesterov={nesterov!r}): use "
        f"fastdnn.{cls}(lr, beta). Its velocity is an average, v = beta v + (1 - beta) g, "
        f"so for the same lr its steps are (1 - beta) times those of Keras's and "
        f"PyTorch's momentum: their SGD(lr, momentum={b:g}{flag}) is "
        f"fastdnn.{cls}(lr / (1 - {b:g}), beta={b:g}), step for step while lr is constant "
        f"(PyTorch's under any schedule; Keras's steps differ after lr changes)")


class SGD(Optimizer):
    """Gradient descent: param -= lr * (g + weight_decay * param).

    Every optimizer also takes the learning rate as ``learning_rate`` (Keras's name).

    Parameters
    ----------
    lr : float >= 0, default 0.01
        The learning rate.
    weight_decay : float >= 0, default 0.0
        Coupled L2: g = grad + weight_decay * param.
    backend : str, default "auto"
        The kernels ``step`` runs on: "auto", "numpy", "cpu" or "cuda".
    learning_rate : float, optional
        Keras's name for ``lr`` (give one of the two).
    momentum : float, optional
        Refused unless 0: Keras's and PyTorch's classical momentum. Their
        ``SGD(lr, momentum=b)`` is ``Momentum(lr / (1 - b), beta=b)`` here (fastdnn's
        velocity is an average of the gradients, not their sum).
    nesterov : bool, optional
        Refused if True: use ``Nesterov(lr / (1 - b), beta=b)``, as for ``momentum``.

    Raises
    ------
    TypeError
        For ``momentum`` other than 0, or ``nesterov=True``: the message gives the
        equivalent fastdnn optimizer.
    """

    _kernel = "sgd_update"
    engine_name = "sgd"

    def __init__(self, lr: float | None = None, weight_decay: float = 0.0,
                 backend: str = "auto", *, learning_rate: float | None = None,
                 momentum: float | None = None, nesterov: bool | None = None) -> None:
        _refuse_classical_momentum(momentum, nesterov)
        super().__init__(_learning_rate(lr, learning_rate, 0.01), weight_decay, backend)

    def _update(self, f, p, g, state, lr):
        f(p, g, lr, self.weight_decay)


class Momentum(Optimizer):
    """Momentum: v = beta v + (1 - beta) g; param -= lr v.

    Parameters
    ----------
    lr : float >= 0, default 0.01
        The learning rate.
    beta : float in [0, 1), default 0.9
        The weight of the previous velocity.
    weight_decay : float >= 0, default 0.0
        Coupled L2: g = grad + weight_decay * param.
    backend : str, default "auto"
        The kernels ``step`` runs on: "auto", "numpy", "cpu" or "cuda".
    learning_rate : float, optional
        Keras's name for ``lr`` (give one of the two).
    """

    _kernel = "momentum_update"
    engine_name = "momentum"
    _state_names = ("velocity",)
    _hyper_names = ("beta",)

    def __init__(self, lr: float | None = None, beta: float = 0.9,
                 weight_decay: float = 0.0, backend: str = "auto", *,
                 learning_rate: float | None = None) -> None:
        super().__init__(_learning_rate(lr, learning_rate, 0.01), weight_decay, backend)
        self.beta = check_real("beta", beta, 0.0, 1.0, high_open=True)

    def _update(self, f, p, g, state, lr):
        f(p, g, state[0], lr, self.beta, self.weight_decay)


class Nesterov(Momentum):
    """Momentum with the look-ahead step: param -= lr (beta v + (1 - beta) g).

    Parameters
    ----------
    lr : float >= 0, default 0.01
        The learning rate.
    beta : float in [0, 1), default 0.9
        The weight of the previous velocity.
    weight_decay : float >= 0, default 0.0
        Coupled L2: g = grad + weight_decay * param.
    backend : str, default "auto"
        The kernels ``step`` runs on: "auto", "numpy", "cpu" or "cuda".
    learning_rate : float, optional
        Keras's name for ``lr`` (give one of the two).
    """

    _kernel = "nesterov_update"
    engine_name = "nesterov"


class RMSprop(Optimizer):
    """RMSprop: s = beta2 s + (1 - beta2) g^2; param -= lr g / (sqrt(s) + eps).

    Parameters
    ----------
    lr : float >= 0, default 0.001
        The learning rate.
    beta2 : float in [0, 1), default 0.999
        The weight of the previous average.
    eps : float > 0, default 1e-8
        Added to sqrt(s).
    weight_decay : float >= 0, default 0.0
        Coupled L2: g = grad + weight_decay * param.
    backend : str, default "auto"
        The kernels ``step`` runs on: "auto", "numpy", "cpu" or "cuda".
    learning_rate : float, optional
        Keras's name for ``lr`` (give one of the two).
    """

    _kernel = "rmsprop_update"
    engine_name = "rmsprop"
    _state_names = ("sq_avg",)
    _hyper_names = ("beta2", "eps")

    def __init__(self, lr: float | None = None, beta2: float = 0.999, eps: float = 1e-8,
                 weight_decay: float = 0.0, backend: str = "auto", *,
                 learning_rate: float | None = None) -> None:
        super().__init__(_learning_rate(lr, learning_rate, 0.001), weight_decay, backend)
        self.beta2 = check_real("beta2", beta2, 0.0, 1.0, high_open=True)
        self.eps = check_real("eps", eps, 0.0, low_open=True)

    def _update(self, f, p, g, state, lr):
        f(p, g, state[0], lr, self.beta2, self.eps, self.weight_decay)


class Adam(Optimizer):
    """Adam with bias correction (coupled L2 through ``weight_decay``).

    Parameters
    ----------
    lr : float >= 0, default 0.001
        The learning rate.
    beta1, beta2 : float in [0, 1), default 0.9 and 0.999
        The weights of the previous moment averages.
    eps : float > 0, default 1e-8
        Added to the corrected sqrt(v) (as in PyTorch).
    weight_decay : float >= 0, default 0.0
        Coupled L2: g = grad + weight_decay * param.
    backend : str, default "auto"
        The kernels ``step`` runs on: "auto", "numpy", "cpu" or "cuda".
    learning_rate : float, optional
        Keras's name for ``lr`` (give one of the two).
    beta_1, beta_2 : float, optional
        Keras's names for ``beta1`` and ``beta2`` (give one of each pair).
    epsilon : float, optional
        Keras's name for ``eps`` (give one of the two). Keras adds it to the
        uncorrected sqrt(v) (its "epsilon hat"), so its steps differ slightly while
        sqrt(v) is not much above epsilon.
    """

    _kernel = "adam_update"
    engine_name = "adam"
    _state_names = ("m", "v")
    _hyper_names = ("beta1", "beta2", "eps")

    def __init__(self, lr: float | None = None, beta1: float | None = None,
                 beta2: float | None = None, eps: float | None = None,
                 weight_decay: float = 0.0, backend: str = "auto", *,
                 learning_rate: float | None = None, beta_1: float | None = None,
                 beta_2: float | None = None, epsilon: float | None = None) -> None:
        super().__init__(_learning_rate(lr, learning_rate, 0.001), weight_decay, backend)
        # None stands for the default, so that a value given under both names is caught
        beta1 = _either("beta1", beta1, "beta_1", beta_1, 0.9)
        beta2 = _either("beta2", beta2, "beta_2", beta_2, 0.999)
        eps = _either("eps", eps, "epsilon", epsilon, 1e-8)
        self.beta1 = check_real("beta1", beta1, 0.0, 1.0, high_open=True)
        self.beta2 = check_real("beta2", beta2, 0.0, 1.0, high_open=True)
        self.eps = check_real("eps", eps, 0.0, low_open=True)

    def _update(self, f, p, g, state, lr):
        f(p, g, state[0], state[1], self.t, lr, self.beta1, self.beta2, self.eps,
          self.weight_decay)


class AdamW(Adam):
    """Adam with decoupled weight decay: param -= lr * weight_decay * param first.

    Parameters
    ----------
    lr : float >= 0, default 0.001
        The learning rate.
    beta1, beta2 : float in [0, 1), default 0.9 and 0.999
        The weights of the previous moment averages.
    eps : float > 0, default 1e-8
        Added to the corrected sqrt(v) (as in PyTorch).
    weight_decay : float >= 0, default 0.01
        Decoupled decay, applied before the Adam step.
    backend : str, default "auto"
        The kernels ``step`` runs on: "auto", "numpy", "cpu" or "cuda".
    learning_rate : float, optional
        Keras's name for ``lr`` (give one of the two).
    beta_1, beta_2 : float, optional
        Keras's names for ``beta1`` and ``beta2`` (give one of each pair).
    epsilon : float, optional
        Keras's name for ``eps`` (give one of the two). Keras adds it to the
        uncorrected sqrt(v) (its "epsilon hat"), so its steps differ slightly while
        sqrt(v) is not much above epsilon.
    """

    _kernel = "adamw_update"
    engine_name = "adamw"

    def __init__(self, lr: float | None = None, beta1: float | None = None,
                 beta2: float | None = None, eps: float | None = None,
                 weight_decay: float = 0.01, backend: str = "auto", *,
                 learning_rate: float | None = None, beta_1: float | None = None,
                 beta_2: float | None = None, epsilon: float | None = None) -> None:
        super().__init__(_learning_rate(lr, learning_rate, 0.001), beta1, beta2, eps,
                         weight_decay, backend, beta_1=beta_1, beta_2=beta_2,
                         epsilon=epsilon)


OPTIMIZERS = {"sgd": SGD, "momentum": Momentum, "nesterov": Nesterov, "rmsprop": RMSprop,
              "adam": Adam, "adamw": AdamW}


def get_optimizer(optimizer: Optimizer | str, **kwargs: Any) -> Optimizer:
    """An Optimizer from an instance (returned as is) or a name such as "adam".

    Parameters
    ----------
    optimizer : Optimizer or str
        An optimizer, or a key of OPTIMIZERS (any case).
    **kwargs
        The constructor's arguments, with a name only.

    Returns
    -------
    Optimizer

    Raises
    ------
    ValueError
        For an unknown name.
    TypeError
        For keyword arguments given with an instance.
    """
    if isinstance(optimizer, Optimizer):
        if kwargs:
            raise TypeError("keyword arguments are only used with an optimizer name")
        return optimizer
    if isinstance(optimizer, str) and optimizer.lower() in OPTIMIZERS:
        return OPTIMIZERS[optimizer.lower()](**kwargs)
    raise ValueError(f"optimizer must be an Optimizer or one of {sorted(OPTIMIZERS)}, "
                     f"got {optimizer!r}")


def optimizer_from_config(config: Mapping[str, Any], backend: str = "auto") -> Optimizer:
    """Rebuild an optimizer from ``Optimizer.get_config()``'s dict.

    Parameters
    ----------
    config : dict
        {"name", hyperparameters..., and optionally "initial_lr"}.
    backend : str, default "auto"
        The new optimizer's backend.

    Returns
    -------
    Optimizer
        Without state: ``load_state_dict`` restores that.
    """
    config = dict(config)
    name = config.pop("name")
    if not isinstance(name, str):
        raise TypeError(f"optimizer name must be a string such as 'adam', got {name!r}")
    initial = config.pop("initial_lr", None)
    opt = get_optimizer(name.lower(), **config, backend=backend)
    if initial is not None:
        opt.initial_lr = check_real("initial_lr", initial, 0.0)
    return opt


_FLOATS = (np.float32, np.float64)


def _as_list(name, arrays, K):
    """``arrays`` as a list: NumPy arrays, or device arrays of the kernel module ``K``."""
    on_device = getattr(K, "is_device_array", lambda a: False)
    if isinstance(arrays, np.ndarray) or on_device(arrays):
        arrays = [arrays]
    arrays = list(arrays)
    for i, a in enumerate(arrays):
        if type(a) is np.ndarray and a.dtype.type in _FLOATS:
            continue   # the common case, checked cheaply
        if not (isinstance(a, np.ndarray) or on_device(a)) or \
                np.dtype(a.dtype).type not in _FLOATS:
            raise TypeError(f"{name}[{i}] must be a float32/float64 NumPy array"
                            f"{' or device array' if hasattr(K, 'is_device_array') else ''}, "
                            f"got {type(a).__name__}")
    return arrays


def _host_copy(a, module):
    """A NumPy copy of a state array (read back by kernel module ``module`` (a name) if it
    lives on a device)."""
    if isinstance(a, np.ndarray):
        return a.copy()
    return importlib.import_module(module).to_host(a)
