"""Search spaces: how one hyperparameter is sampled, and narrowed for coarse to fine.

n = number of values drawn. Each space samples on its own scale: LogUniform draws
r ~ U[log10 a, log10 b] and returns 10^r (learning rate, L2); OneMinusLogUniform draws
r ~ U[log10(1 - high), log10(1 - low)] and returns 1 - 10^r (Adam's beta1 / beta2,
momentum), so 0.9 -> 0.99 gets as many samples as 0.99 -> 0.999. ``narrow`` shrinks a
space around good values on that same scale.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._validation import check_int, check_real

# columns the search writes itself: a dimension of that name would overwrite them
RESERVED_NAMES = ("trial", "round", "status", "error", "traceback", "time")

#: What a dimension of a search space may be given as: a Space, a spec dict such as
#: {"log_uniform": [1e-4, 1e-1]}, a list (a Choice) or a scalar (held fixed).
SpaceLike = Union["Space", Mapping[str, Any], Sequence[Any], float, str, None]
#: What ``Space.sample`` returns: an array (numeric spaces) or a list (Choice, Grid).
Values = Union[NDArray[Any], list[Any]]


class Space:
    """Base class. ``scale`` names the axis the space is uniform on (for plots)."""

    scale = "linear"

    def sample(self, n: int, rng: np.random.Generator) -> Values:
        """``n`` values drawn with the NumPy Generator ``rng``.

        Parameters
        ----------
        n : int >= 0
        rng : numpy.random.Generator

        Returns
        -------
        ndarray or list
            n values.
        """
        raise NotImplementedError

    def narrow(self, values: ArrayLike, factor: float = 0.5) -> Space:
        """A smaller space around ``values`` (e.g. the best trials' values).

        Parameters
        ----------
        values : sequence
            Values of this space, at least one.
        factor : float in (0, 1]
            The new width as a fraction of the current one, on the space's own scale
            (widened to cover ``values``).

        Returns
        -------
        Space
            Of the same type.
        """
        raise NotImplementedError

    def __eq__(self, other):
        return type(self) is type(other) and vars(self) == vars(other)

    def __repr__(self):
        args = ", ".join(f"{v!r}" for v in vars(self).values())
        return f"{type(self).__name__}({args})"


class _Continuous(Space):
    """Uniform on t(x) over [t(low), t(high)]; subclasses give t and its inverse."""

    def __init__(self, low: float, high: float) -> None:
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

    def sample(self, n: int, rng: np.random.Generator) -> NDArray[np.float64]:
        """``n`` values drawn with the NumPy Generator ``rng``, uniform on t(x).

        Parameters
        ----------
        n : int >= 0
        rng : numpy.random.Generator

        Returns
        -------
        (n,) float64 ndarray
            Inside [low, high].
        """
        n = check_int("n", n, 0)
        lo, hi = self._bounds()
        return np.clip(self._inv(rng.uniform(lo, hi, n)), self.low, self.high)

    def narrow(self, values: ArrayLike, factor: float = 0.5) -> _Continuous:
        """A smaller space of the same type around ``values``.

        It spans ``factor`` of the current width on the space's own scale, centred on
        the middle of ``values`` and widened to cover them all; kept inside the bounds.

        Parameters
        ----------
        values : array-like
            Values of this space, at least one.
        factor : float in (0, 1]
            The new width as a fraction of the current one.

        Returns
        -------
        Uniform, LogUniform or OneMinusLogUniform
            Of the same type.
        """
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
    """x ~ U[low, high].

    Parameters
    ----------
    low, high : float
        The bounds, low <= high.
    """


class LogUniform(_Continuous):
    """x = 10^r with r ~ U[log10 low, log10 high]: learning rates, L2 strengths.

    Parameters
    ----------
    low, high : float
        The bounds, 0 < low <= high.
    """

    scale = "log"

    def __init__(self, low: float, high: float) -> None:
        super().__init__(low, high)
        if self.low <= 0:
            raise ValueError(f"low must be > 0 for a log scale, got {low!r}")

    def _t(self, x):
        return np.log10(np.asarray(x, dtype=np.float64))

    def _inv(self, r):
        return 10.0 ** np.asarray(r)


class OneMinusLogUniform(_Continuous):
    """x = 1 - 10^r with r ~ U[log10(1 - high), log10(1 - low)]: beta1, beta2, momentum.

    Parameters
    ----------
    low, high : float
        The bounds, 0 <= low <= high < 1.
    """

    scale = "one_minus_log"

    def __init__(self, low: float, high: float) -> None:
        super().__init__(low, high)
        if not (0 <= self.low and self.high < 1):
            raise ValueError(f"low and high must lie in [0, 1), got low={low!r}, "
                             f"high={high!r}")

    def _t(self, x):
        return np.log10(1.0 - np.asarray(x, dtype=np.float64))

    def _inv(self, r):
        return 1.0 - 10.0 ** np.asarray(r)


class IntUniform(Space):
    """Integers in [low, high] (both included): hidden units, number of layers, batch sizes.

    Uniform or, with ``log=True``, uniform in log.

    Parameters
    ----------
    low, high : int
        The bounds, low <= high (low >= 1 with ``log``).
    log : bool, default False
        Each integer k gets the probability of [k, k + 1) on a log scale.
    """

    def __init__(self, low: int, high: int, log: bool = False) -> None:
        if not isinstance(log, (bool, np.bool_)):   # "no" would read as True
            raise TypeError(f"log must be True or False, got {log!r}")
        self.log = bool(log)
        self.low = check_int("low", low, 1 if log else None)
        self.high = check_int("high", high, self.low)

    @property
    def scale(self) -> str:
        """The axis the space is uniform on: "log" with ``log=True``, else "linear"."""
        return "log" if self.log else "linear"

    def sample(self, n: int, rng: np.random.Generator) -> NDArray[np.int64]:
        n = check_int("n", n, 0)
        if not self.log:
            return rng.integers(self.low, self.high, n, endpoint=True)
        # floor of a log-uniform draw on [low, high + 1): each integer gets its log width
        r = rng.uniform(math.log(self.low), math.log(self.high + 1), n)
        return np.clip(np.floor(np.exp(r)), self.low, self.high).astype(np.int64)

    def narrow(self, values: ArrayLike, factor: float = 0.5) -> IntUniform:
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
    """One of ``options`` (optionally with probabilities ``p``): activation, optimizer.

    Parameters
    ----------
    options : list
        The values, at least one (not a set: its order may change between processes).
    p : list of float, optional
        One probability per option, summing to 1; default uniform.
    """

    scale = "choice"

    def __init__(self, options: Iterable[Any], p: Iterable[float] | None = None) -> None:
        self.options = _value_list("options", options)
        self.p = None if p is None else [check_real(f"p[{i}]", x, 0.0, 1.0)
                                         for i, x in enumerate(_value_list("p", p))]
        if self.p is not None and (len(self.p) != len(self.options)
                                   or not math.isclose(sum(self.p), 1.0)):
            raise ValueError(f"p must have one probability per option summing to 1, "
                             f"got {p!r}")

    def sample(self, n: int, rng: np.random.Generator) -> list[Any]:
        n = check_int("n", n, 0)
        idx = rng.choice(len(self.options), size=n, p=self.p)
        return [self.options[i] for i in idx]

    def narrow(self, values: Iterable[Any], factor: float = 0.5) -> Choice:
        """Keep the options that appear in ``values`` (factor is ignored).

        Parameters
        ----------
        values : sequence
        factor : float
            Ignored.

        Returns
        -------
        Choice
            The options seen, uniform.
        """
        seen = [o for o in self.options if any(_same(o, v) for v in values)]
        if not seen:
            raise ValueError(f"none of values {list(values)!r} is one of {self.options!r}")
        return Choice(seen)


class Grid(Space):
    """A fixed list of values, for comparing random search with grid search.

    ``sample`` cycles through the values in order (``rng`` unused); see
    ``grid_configs``.

    Parameters
    ----------
    values : list
        At least one (not a set).
    """

    scale = "choice"

    def __init__(self, values: Iterable[Any]) -> None:
        self.values = _value_list("values", values)

    def sample(self, n: int, rng: np.random.Generator | None = None) -> list[Any]:
        """The first ``n`` values of the list repeated.

        Parameters
        ----------
        n : int >= 0
        rng : numpy.random.Generator, optional
            Unused.

        Returns
        -------
        list
        """
        n = check_int("n", n, 0)
        return [self.values[i % len(self.values)] for i in range(n)]

    def narrow(self, values: Iterable[Any], factor: float = 0.5) -> Grid:
        """Keep the values that appear in ``values`` (factor is ignored).

        Parameters
        ----------
        values : sequence
        factor : float
            Ignored.

        Returns
        -------
        Grid
        """
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


def grid_configs(space: Mapping[str, Grid | Iterable[Any]]) -> list[dict[str, Any]]:
    """Every combination of a dict name -> Grid (or list): the grid-search configs.

    Parameters
    ----------
    space : dict name -> Grid or list

    Returns
    -------
    list of dict
        One config per combination, the last name varying fastest.
    """
    names = list(space)
    lists = [s.values if isinstance(s, Grid) else list(s) for s in space.values()]
    return [dict(zip(names, combo)) for combo in itertools.product(*lists)]


def as_space(value: SpaceLike) -> Space:
    """A Space from a Space, a spec dict, a list or a scalar.

    Parameters
    ----------
    value : Space, dict, list or scalar
        A spec dict is read as in ``space_from_config`` ({"log_uniform": [1e-4, 1e-1]}),
        a list (or tuple) is a Choice, a scalar a Choice of one (held fixed).

    Returns
    -------
    Space
    """
    if isinstance(value, Space):
        return value
    if isinstance(value, dict):
        return _space_from_spec(value)
    if isinstance(value, (list, tuple)):
        return Choice(value)
    return Choice([value])


def check_space(space: Mapping[str, SpaceLike]) -> dict[str, Space]:
    """``space`` as a dict name -> Space; every error names the dimension it is about.

    Parameters
    ----------
    space : dict name -> Space, spec dict, list or scalar
        Names are non-empty strings other than RESERVED_NAMES.

    Returns
    -------
    dict name -> Space

    Raises
    ------
    TypeError, ValueError
        Naming the dimension at fault.
    """
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


def sample_config(space: Mapping[str, SpaceLike], seed: int, trial: int) -> dict[str, Any]:
    """Trial ``trial``'s hyperparameters: one draw per dimension.

    The draws come from a Generator seeded with (seed, trial), so a trial's config does
    not depend on how many trials run.

    Parameters
    ----------
    space : dict name -> Space (or what ``as_space`` takes)
    seed : int
        The search's seed.
    trial : int
        The trial number.

    Returns
    -------
    dict name -> value
        Python scalars (NumPy scalars converted).
    """
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


def space_from_config(config: Mapping[str, Any]) -> dict[str, Space]:
    """A dict name -> Space from plain data, e.g. parsed TOML / JSON.

    For example {"learning_rate": {"log_uniform": [1e-4, 1e-1]}, "beta1":
    {"one_minus_log_uniform": [0.8, 0.999]}, "hidden": {"int": [32, 256], "log": true},
    "activation": ["relu", "tanh"], "epochs": 30}. A spec may also be {"uniform": [low,
    high]}, {"choice": [...], "p": [...]} or {"grid": [...]}; errors name the dimension
    and what it takes.

    Parameters
    ----------
    config : dict name -> spec dict, list or scalar

    Returns
    -------
    dict name -> Space
    """
    return check_space(config)
