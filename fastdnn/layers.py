"""Layer specifications for fastdnn.Sequential: Dense, BatchNorm, Activation, Dropout.

These hold configuration only; the model compiles a run of
Dense [-> BatchNorm] [-> Activation] [-> Dropout] into one fused block that calls the
backend's dense / batchnorm kernels. n_in, n_out = layer widths.
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from ._validation import check_bool, check_choice, check_int, check_keep_prob, check_real
from .reference.activations import ACTIVATIONS
from .reference.init import INITIALIZERS

#: Activations a hidden block may use; the last block may also use "softmax" or "exp".
HIDDEN_ACTIVATIONS = tuple(sorted(ACTIVATIONS))
#: Each output activation brings its loss: softmax cross-entropy, sigmoid (binary)
#: cross-entropy, half squared error, half Poisson deviance (exp: the log link).
OUTPUT_ACTIVATIONS = ("softmax", "sigmoid", "identity", "exp")
_LAST_ONLY = ("softmax", "exp")


class Layer:
    """Base class: a layer spec that can be written to and read from JSON."""

    def get_config(self) -> dict[str, Any]:
        """The layer's type and arguments, as JSON-friendly values.

        Returns
        -------
        dict
            {"type": the class name, then the constructor's arguments}: what
            ``layer_from_config`` rebuilds the layer from.
        """
        return {"type": type(self).__name__, **self._config()}

    def _config(self):
        return {}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self._config().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other):
        return type(self) is type(other) and self._config() == other._config()


class Dense(Layer):
    """A fully connected layer, Z = X @ W.T + b, W of shape (units, n_in).

    Parameters
    ----------
    units : int
        Output width n_out (>= 1).
    init : str or None
        Weight initializer (see fastdnn.reference.INITIALIZERS); None uses the model's.
    use_bias : bool
        Whether to add b. A Dense followed by BatchNorm never has a bias (beta replaces it).
    """

    def __init__(self, units: int, *, init: str | None = None,
                 use_bias: bool = True) -> None:
        self.units = check_int("units", units, 1)
        if init is not None:
            check_choice("init", init, INITIALIZERS)
        self.init = init
        self.use_bias = check_bool("use_bias", use_bias)

    def _config(self):
        return {"units": self.units, "init": self.init, "use_bias": self.use_bias}


class BatchNorm(Layer):
    """Batch normalisation over features, after a Dense layer and before its activation.

    Running statistics: running = momentum * running + (1 - momentum) * batch statistic.

    Parameters
    ----------
    momentum : float in [0, 1], default 0.9
        The weight of the old running statistic.
    eps : float > 0, default 1e-5
        Added to the variance.
    """

    def __init__(self, momentum: float = 0.9, eps: float = 1e-5) -> None:
        self.momentum = check_real("momentum", momentum, 0.0, 1.0)
        self.eps = check_real("eps", eps, 0.0, low_open=True)

    def _config(self):
        return {"momentum": self.momentum, "eps": self.eps}


class Activation(Layer):
    """An element-wise activation.

    Parameters
    ----------
    name : str
        One of relu, leaky_relu, tanh, sigmoid, identity, or softmax or exp (last
        layer only).
    """

    def __init__(self, name: str) -> None:
        self.name = check_choice("activation", name,
                                 tuple(sorted(set(HIDDEN_ACTIVATIONS) | set(_LAST_ONLY))))

    def _config(self):
        return {"name": self.name}


class Dropout(Layer):
    """Inverted dropout: each unit kept with probability keep_prob, scaled by 1 / keep_prob.

    Give the fraction kept (``keep_prob``, the course's name) or the fraction dropped
    (``rate``, Keras's meaning of ``Dropout(0.2)``), by name: a value given by position
    is keep_prob, with a FutureWarning, since Keras reads it the other way round.

    Parameters
    ----------
    keep_prob_by_position : float in (0, 1], optional
        keep_prob given by position, as older code and the course write it
        (``Dropout(0.8)`` keeps 80%); warns, name it instead.
    keep_prob : float in (0, 1], optional
        The probability of keeping a unit.
    rate : float in [0, 1), optional
        The probability of dropping a unit, as in Keras: keep_prob = 1 - rate.

    Raises
    ------
    TypeError
        When not exactly one of keep_prob (by position or name) and rate is given.

    Warns
    -----
    FutureWarning
        When keep_prob is given by position.
    """

    def __init__(self, keep_prob_by_position: float | None = None, /, *,
                 keep_prob: float | None = None, rate: float | None = None) -> None:
        if keep_prob_by_position is not None:
            if keep_prob is not None:
                raise TypeError(f"Dropout got keep_prob twice: {keep_prob_by_position!r} "
                                f"by position and keep_prob={keep_prob!r}")
            keep_prob = keep_prob_by_position
            if rate is None:
                warnings.warn(
                    f"Dropout({keep_prob!r}) keeps {_percent(keep_prob)} of the units "
                    f"(keep_prob); Keras's Dropout({keep_prob!r}) drops "
                    f"{_percent(keep_prob)}: write Dropout(keep_prob={keep_prob!r}) or "
                    f"Dropout(rate={_complement(keep_prob)})", FutureWarning, stacklevel=2)
        if (keep_prob is None) == (rate is None):
            raise TypeError(f"Dropout takes one of keep_prob (the fraction kept) and rate "
                            f"(Keras's fraction dropped), got keep_prob={keep_prob!r} and "
                            f"rate={rate!r}")
        if rate is not None:
            keep_prob = 1.0 - check_real("rate", rate, 0.0, 1.0, high_open=True)
        self.keep_prob = check_keep_prob("keep_prob", keep_prob)

    def _config(self):
        return {"keep_prob": self.keep_prob}


def _percent(fraction):
    """``fraction`` as a percentage for a message ("20%"), or as given if not a number."""
    try:
        return f"{100 * float(fraction):g}%"
    except (TypeError, ValueError):
        return repr(fraction)


def _complement(fraction):
    """1 - ``fraction`` for a message, rounded as the user would write it."""
    try:
        return f"{1 - float(fraction):.12g}"
    except (TypeError, ValueError):
        return "1 - keep_prob"


LAYERS = {cls.__name__: cls for cls in (Dense, BatchNorm, Activation, Dropout)}


def layer_from_config(config: Mapping[str, Any]) -> Layer:
    """Rebuild a layer from ``Layer.get_config()``'s dict.

    Parameters
    ----------
    config : dict
        {"type": a key of LAYERS, then the constructor's arguments}.

    Returns
    -------
    Layer
    """
    config = dict(config)
    kind = config.pop("type")
    check_choice("layer type", kind, tuple(LAYERS))
    if kind == "Activation":
        return Activation(config["name"])
    if kind == "Dense":
        return Dense(config.pop("units"), **config)
    return LAYERS[kind](**config)
