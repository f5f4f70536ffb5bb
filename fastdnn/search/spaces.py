"""Search spaces: how one hyperparameter is sampled, and narrowed for coarse to fine.

n = number of values drawn. Each space samples on its own scale: LogUniform draws
r ~ U[log10 a, log10 b] and returns 10^r (learning rate, L2); OneMinusLogUniform draws
r ~ U[log10(1 - high), log10(1 - low)] and returns 1 - 10^r (Adam's beta1 / beta2,
momentum), so 0.9 -> 0.99 gets as many samples as 0.99 -> 0.999. ``narrow`` shrinks a
space around good values on that same scale.
"""
import itertools
import math

import numpy as np

from .._validation import check_int, check_real

# columns the search writes itself: a dimension of that name would overwrite them
RESERVED_NAMES = ("trial", "round", "status", "error", "traceback", "time")


class Space:
    """Base class. ``scale`` names the axis the space is uniform on (for plots)."""

    scale = "linear"

    def sample(self, n, rng):
        """``n`` values drawn with the NumPy Generator ``rng`` (an ndarray or list)."""
        raise NotImplementedError

    def narrow(self, values, factor=0.5):
        """A smaller space around ``values`` (e.g. the best trials' values)."""
        raise NotImplementedError

    def __eq__(self, other):
        return type(self) is type(other) and vars(self) == vars(other)

    def __repr__(self):
        args = ", ".join(f"{v!r}" for v in vars(self).values())
        return f"{type(self).__name__}({args})"


class _Continuous(Space):
    """Uniform on t(x) over [t(low), t(high)]; subclasses give t and its inverse."""

    def __init__(self, low, high):
        self.low = check_real("low", low)
        self.high = check_real("high", high)
        if not self.low <= self.high:
            raise ValueError(f"low must be <= high, got low={low!r}, high={high!r}")

    def _t(self, x):
        return np.asarray(x, dtype=np.float64)

    def _inv(self, r):
        return r

    def _bounds(self):
        a, b = self._t(self.low), self._t(self.high)
        return float(min(a, b)), float(max(a, b))

    def sample(self, n, rng):
        n = check_int("n", n, 0)
        lo, hi = self._bounds()
        return np.clip(self._inv(rng.uniform(lo, hi, n)), self.low, self.high)

    def narrow(self, values, factor=0.5):
        """Span ``factor`` of the current width on the space's own scale, centred on the
        middle of ``values`` and widened to cover them all; kept inside the bounds."""
        factor = check_real("factor", factor, 0.0, 1.0, low_open=True)
        t = self._t(np.asarray(values, dtype=np.float64).ravel())
        if t.size == 0:
            raise ValueError("values must not be empty")
        lo, hi = self._bounds()
        width = max(float(t.max() - t.min()), factor * (hi - lo))
        centre = 0.5 * (float(t.max()) + float(t.min()))
        a = min(max(centre - width / 2, lo), hi - width)
        b = a + width
        x = sorted(float(v) for v in self._inv(np.array([a, b])))
        return type(self)(*self._args(max(x[0], self.low), min(x[1], self.high)))

    def _args(self, low, high):
        return low, high


class Uniform(_Continuous):
    """x ~ U[low, high]."""


class LogUniform(_Continuous):
    """x = 10^r with r ~ U[log10 low, log10 high]: learning rates, L2 strengths."""

    scale = "log"

    def __init__(self, low, high):
        super().__init__(low, high)
        if self.low <= 0:
            raise ValueError(f"low must be > 0 for a log scale, got {low!r}")

    def _t(self, x):
        return np.log10(np.asarray(x, dtype=np.float64))

    def _inv(self, r):
        return 10.0 ** np.asarray(r)


class OneMinusLogUniform(_Continuous):
    """x = 1 - 10^r with r ~ U[log10(1 - high), log10(1 - low)]: beta1, beta2, momentum."""

    scale = "one_minus_log"

    def __init__(self, low, high):
        super().__init__(low, high)
        if not (0 <= self.low and self.high < 1):
            raise ValueError(f"low and high must lie in [0, 1), got low={low!r}, "
                             f"high={high!r}")

    def _t(self, x):
        return np.log10(1.0 - np.asarray(x, dtype=np.float64))

    def _inv(self, r):
        return 1.0 - 10.0 ** np.asarray(r)


class IntUniform(Space):
    """Integers in [low, high] (both included), uniform or, with ``log=True``, uniform in
    log: hidden units, number of layers, batch sizes."""

    def __init__(self, low, high, log=False):
        if not isinstance(log, (bool, np.bool_)):   # "no" would read as True
            raise TypeError(f"log must be True or False, got {log!r}")
        self.log = bool(log)
        self.low = check_int("low", low, 1 if log else None)
        self.high = check_int("high", high, self.low)

    @property
    def scale(self):
        return "log" if self.log else "linear"

    def sample(self, n, rng):
        n = check_int("n", n, 0)
        if not self.log:
            return rng.integers(self.low, self.high, n, endpoint=True)
        # floor of a log-uniform draw on [low, high + 1): each integer gets its log width
        r = rng.uniform(math.log(self.low), math.log(self.high + 1), n)
        return np.clip(np.floor(np.exp(r)), self.low, self.high).astype(np.int64)

    def narrow(self, values, factor=0.5):
        factor = check_real("factor", factor, 0.0, 1.0, low_open=True)
        v = np.asarray(values, dtype=np.float64).ravel()
        if v.size == 0:
            raise ValueError("values must not be empty")
        inner = (LogUniform if self.log else Uniform)(self.low, self.high)
        s = inner.narrow(v, factor)
        low = max(self.low, min(int(math.floor(s.low)), int(v.min())))
        high = min(self.high, max(int(math.ceil(s.high)), int(v.max())))
        return IntUniform(low, high, self.log)


class Choice(Space):
    """One of ``options`` (optionally with probabilities ``p``): activation, optimizer."""

    scale = "choice"

    def __init__(self, options, p=None):
        self.options = _value_list("options", options)
        self.p = None if p is None else [check_real(f"p[{i}]", x, 0.0, 1.0)
                                         for i, x in enumerate(_value_list("p", p))]
        if self.p is not None and (len(self.p) != len(self.options)
                                   or not math.isclose(sum(self.p), 1.0)):
            raise ValueError(f"p must have one probability per option summing to 1, "
                             f"got {p!r}")

    def sample(self, n, rng):
        n = check_int("n", n, 0)
        idx = rng.choice(len(self.options), size=n, p=self.p)
        return [self.options[i] for i in idx]

    def narrow(self, values, factor=0.5):
        """Keep the options that appear in ``values`` (factor is ignored)."""
        seen = [o for o in self.options if any(_same(o, v) for v in values)]
        if not seen:
            raise ValueError(f"none of values {list(values)!r} is one of {self.options!r}")
        return Choice(seen)


class Grid(Space):
    """A fixed list of values, for comparing random search with grid search: ``sample``
    cycles through the values in order (``rng`` unused); see ``grid_configs``."""

    scale = "choice"

    def __init__(self, values):
        self.values = _value_list("values", values)

    def sample(self, n, rng=None):
        n = check_int("n", n, 0)
        return [self.values[i % len(self.values)] for i in range(n)]

    def narrow(self, values, factor=0.5):
        return Grid([v for v in self.values if any(_same(v, w) for w in values)])


def _value_list(name, values):
    """``values`` as a non-empty list; sets are refused because their order (string
    hashes differ between processes) would change which value a trial draws."""
    if isinstance(values, (str, bytes, dict, set, frozenset)) \
            or not hasattr(values, "__iter__"):
        raise TypeError(f"{name} must be a list of values, got {values!r}")
    values = list(values)
    if not values:
        raise ValueError(f"{name} must not be empty, got []")
    return values


def _same(a, b):
    try:
        return a == b or (isinstance(a, float) and math.isclose(a, float(b)))
    except (TypeError, ValueError):
        return False


def grid_configs(space):
    """Every combination of a dict name -> Grid (or list): the grid-search configs."""
    names = list(space)
    lists = [s.values if isinstance(s, Grid) else list(s) for s in space.values()]
    return [dict(zip(names, combo)) for combo in itertools.product(*lists)]


def as_space(value):
    """A Space from a Space, a spec dict such as {"log_uniform": [1e-4, 1e-1]} (see
    ``space_from_config``), a list (Choice) or a scalar (Choice of one: held fixed)."""
    if isinstance(value, Space):
        return value
    if isinstance(value, dict):
        return _space_from_spec(value)
    if isinstance(value, (list, tuple)):
        return Choice(value)
    return Choice([value])


def check_space(space):
    """``space`` (dict name -> Space, spec dict, list or scalar) as a dict name -> Space;
    every error names the dimension it is about."""
    if not isinstance(space, dict):
        raise TypeError(f"space must be a dict name -> Space, got {space!r}")
    out = {}
    for name, value in space.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"search space names must be non-empty strings, got {name!r}")
        if name in RESERVED_NAMES:
            raise ValueError(f"search space {name!r}: the name is taken by a results "
                             f"column; names must not be one of {list(RESERVED_NAMES)}")
        try:
            out[name] = as_space(value)
        except (TypeError, ValueError) as e:
            kind = TypeError if isinstance(e, TypeError) else ValueError
            raise kind(f"search space {name!r}: {e}") from None
    return out


def sample_config(space, seed, trial):
    """Trial ``trial``'s hyperparameters: one draw per dimension from a Generator seeded
    with (seed, trial), so a trial's config does not depend on how many trials run."""
    rng = np.random.default_rng([int(seed), int(trial)])
    out = {}
    for name, s in space.items():
        v = as_space(s).sample(1, rng)[0]
        out[name] = v.item() if isinstance(v, np.generic) else v
    return out


# spec dict kind -> (Space, keys allowed beside the kind)
_SPEC_KINDS = {"log_uniform": (LogUniform, ()), "one_minus_log_uniform":
               (OneMinusLogUniform, ()), "uniform": (Uniform, ()), "int": (IntUniform,
               ("log",)), "choice": (Choice, ("p",)), "grid": (Grid, ())}


def _space_from_spec(spec):
    """A Space from one spec dict: exactly one kind, its arguments, allowed extras."""
    kinds = [k for k in spec if k in _SPEC_KINDS]
    if len(kinds) != 1:
        raise ValueError(f"a spec must name exactly one kind of {sorted(_SPEC_KINDS)}, "
                         f"got {spec!r}")
    kind = kinds[0]
    space_type, extras = _SPEC_KINDS[kind]
    unknown = sorted(set(spec) - {kind, *extras})
    if unknown:
        allowed = f"only {list(extras)}" if extras else "no other key"
        raise ValueError(f"unknown key {unknown[0]!r} in {spec!r}; {kind} takes "
                         f"{allowed} beside its values")
    args = spec[kind]
    options = {k: spec[k] for k in extras if k in spec}
    if kind in ("choice", "grid"):
        return space_type(args, **options)
    if not isinstance(args, (list, tuple)):
        raise TypeError(f"{kind} takes [low, high], got {args!r}")
    if len(args) != 2:
        raise ValueError(f"{kind} takes [low, high], got {list(args)!r}")
    return space_type(*args, **options)


def space_from_config(config):
    """A dict name -> Space from plain data, e.g. parsed TOML / JSON:
    {"learning_rate": {"log_uniform": [1e-4, 1e-1]}, "beta1": {"one_minus_log_uniform":
    [0.8, 0.999]}, "hidden": {"int": [32, 256], "log": true}, "activation": ["relu",
    "tanh"], "epochs": 30}. A spec may also be {"uniform": [low, high]}, {"choice":
    [...], "p": [...]} or {"grid": [...]}; errors name the dimension and what it takes."""
    return check_space(config)
