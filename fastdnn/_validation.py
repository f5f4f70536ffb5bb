"""Argument checks shared by every public function.

Each check raises with the argument's name, the value received and what is allowed.
"""
import contextlib
import math
import numbers
import sys
import threading
import warnings

import numpy as np

from . import config

FLOAT_DTYPES = (np.float32, np.float64)


def check_float_array(name, x, ndim=None):
    """Return ``x`` unchanged after checking it is a non-empty float32/float64 array."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array, got {type(x).__name__}")
    if x.dtype.type not in FLOAT_DTYPES:
        raise TypeError(f"{name} must have dtype float32 or float64, got {x.dtype}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {x.shape}")
    if x.ndim == 0:
        raise ValueError(f"{name} must be an array of at least 1 dimension, got a 0-d "
                         "array")
    if x.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {x.shape}")
    return x


def check_finite(name, x):
    """Raise if ``x`` holds NaN or inf, saying where the first one is."""
    if not np.isfinite(x).all():
        bad = np.argwhere(~np.isfinite(x))[0]
        raise ValueError(
            f"{name} contains NaN or inf (first at index {tuple(int(i) for i in bad)})"
        )
    return x


def check_shape(name, x, shape):
    """Raise unless ``x.shape`` equals ``shape``; None in ``shape`` matches anything."""
    if x.shape == shape:   # the common case, without the generator below
        return x
    ok = x.ndim == len(shape) and all(s is None or s == d for s, d in zip(shape, x.shape))
    if not ok:
        want = ", ".join("*" if s is None else str(s) for s in shape)
        want = f"({want},)" if len(shape) == 1 else f"({want})"  # as Python writes shapes
        raise ValueError(f"{name} must have shape {want}, got {x.shape}")
    return x


def check_same_dtype(name, x, dtype):
    if x.dtype != dtype:
        raise TypeError(f"{name} has dtype {x.dtype} but the other operands are {np.dtype(dtype)}")
    return x


def check_real(name, value, low=None, high=None, low_open=False, high_open=False):
    """Check a real scalar lies in [low, high]; ``*_open`` makes that end exclusive.

    A missing bound is an open end at infinity: NaN and infinities are always refused.
    """
    kind = type(value)
    if kind is not float and kind is not int and (  # exact types skip the ABC check
            isinstance(value, bool) or not isinstance(value, numbers.Real)):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high or not math.isfinite(value):
        left = "(" if low_open or low is None else "["
        right = ")" if high_open or high is None else "]"
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        raise ValueError(f"{name} must be in {left}{lo}, {hi}{right}, got {value!r}")
    return value


def check_int(name, value, low=None, high=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise ValueError(f"{name} must be in [{lo}, {hi}], got {value}")
    return value


def check_bool(name, value):
    """A bool (NumPy's too); strings such as "no" are refused rather than read as True."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{name} must be True or False, got {value!r}")


def check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)}, got {value!r}")
    return value


def check_key(name, key):
    """A dropout key: an integer, used modulo 2**64 (as the counter-based hash takes it)."""
    if isinstance(key, bool) or not isinstance(key, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {key!r}")
    return int(key) & ((1 << 64) - 1)


def check_dims(name, shape):
    """A shape: a non-negative integer or a tuple of them, returned as a tuple."""
    dims = (shape,) if isinstance(shape, numbers.Integral) else shape
    try:
        dims = tuple(dims)
    except TypeError:
        raise TypeError(f"{name} must be a tuple of non-negative integers, got "
                        f"{shape!r}") from None
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, numbers.Integral) or d < 0:
            raise ValueError(f"{name} must be a tuple of non-negative integers, got "
                             f"{shape!r}")
    return tuple(int(d) for d in dims)


def check_dtype(name, value):
    """"float32" or "float64" (a NumPy dtype or type naming one), as a np.dtype."""
    try:
        dtype = np.dtype(value)
    except TypeError:
        dtype = None
    if dtype is None or dtype.name not in config.DTYPES:
        raise ValueError(f"{name} must be one of {list(config.DTYPES)}, got {value!r}")
    return dtype


def check_own_memory(named_arrays):
    """Raise when two of the (name, array) pairs may share memory: an update writes each
    in place, so an alias (state m given as the param itself) would corrupt both."""
    items = list(named_arrays)
    for i, (first, a) in enumerate(items):
        for second, b in items[i + 1:]:
            if a is b or (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)
                          and np.may_share_memory(a, b)):
                raise ValueError(f"{second} shares memory with {first}: each must be an "
                                 "array of its own (an update writes them in place)")


def check_keep_prob(name, keep_prob):
    return check_real(name, keep_prob, 0.0, 1.0, low_open=True)


def emit(result, out):
    """Return ``result``, or copy it into the caller's buffer ``out`` and return that.

    Lets the reference take the same preallocated-output arguments as the fast kernels.
    """
    if out is None:
        return result
    if out.shape != result.shape:
        raise ValueError(f"output buffer has shape {out.shape}, expected {result.shape}")
    np.copyto(out, result, casting="same_kind")
    return out


def warn_user(message, category=UserWarning):
    """``warnings.warn`` pointed at the first caller outside fastdnn (the user's line
    that called fit, say), whose code the warning is about, rather than at fastdnn's
    own frames, which vary with the path the call took."""
    frame, level = sys._getframe(1), 2   # warn_user's caller is stacklevel 2
    while frame is not None and _in_fastdnn(frame):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level if frame is not None else 2)


def _in_fastdnn(frame):
    name = frame.f_globals.get("__name__", "")
    return name == __package__ or name.startswith(__package__ + ".")


_local = threading.local()


def finite_checks_on():
    """Whether kernels scan their inputs for NaN and inf here: config.CHECK_FINITE, unless
    this thread is inside ``finite_checks_skipped``."""
    return config.CHECK_FINITE and not getattr(_local, "skip", 0)


class finite_checks_skipped(contextlib.ContextDecorator):
    """Turn off the kernels' NaN/inf scans inside the block, on this thread only (a
    context or a decorator); nothing global changes, so other threads keep their checks.

    For callers that have checked their data once already (the model checks its data):
    non-finite values that appear later mean divergence, which the caller reports itself.
    """

    def __enter__(self):
        _local.skip = getattr(_local, "skip", 0) + 1
        return self

    def __exit__(self, *exc):
        _local.skip -= 1
        return False

    def _recreate_cm(self):   # a fresh instance per decorated call: re-entrant
        return type(self)()


def check_update(lr, weight_decay, **hyper):
    """Check an optimizer update's scalars, naming each one.

    lr and weight_decay >= 0; beta, beta1, beta2 in [0, 1); eps > 0; step an integer >= 1.
    Returns lr, weight_decay, then the ``hyper`` values in the order given.
    """
    values = [check_real("lr", lr, 0.0), check_real("weight_decay", weight_decay, 0.0)]
    for name, value in hyper.items():
        if name == "step":
            values.append(check_int(name, value, 1))
        elif name == "eps":
            values.append(check_real(name, value, 0.0, low_open=True))
        else:
            values.append(check_real(name, value, 0.0, 1.0, high_open=True))
    return values
