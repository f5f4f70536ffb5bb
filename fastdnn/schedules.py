"""Learning-rate schedule objects around fastdnn.reference.schedules.

A schedule maps a count to a learning rate. With ``per="epoch"`` the count is the
number of epochs completed before the current one (0 for the first epoch); with
``per="iteration"`` it is the number of updates done before the current one. The
inverse-square-root schedules use count + 1, since they are defined from 1.
``lr0=None`` takes the optimizer's initial learning rate.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ._validation import check_choice, check_int, check_real
from .reference import schedules as _S


class Schedule:
    """Base class of the schedules; subclasses define ``_lr(lr0, count)`` and ``_hyper``.

    Parameters
    ----------
    lr0 : float >= 0, optional
        The initial learning rate; None takes the optimizer's.
    per : {"epoch", "iteration"}, default "epoch"
        What the count counts.
    """

    _hyper = ()

    def __init__(self, lr0: float | None = None, per: str = "epoch") -> None:
        self.lr0 = None if lr0 is None else check_real("lr0", lr0, 0.0)
        self.per = check_choice("per", per, ("epoch", "iteration"))

    def __call__(self, count: int, lr0: float | None = None) -> float:
        """The learning rate at ``count`` (see the module docstring).

        Parameters
        ----------
        count : int >= 0
            Epochs (or updates, per="iteration") completed before the current one.
        lr0 : float, optional
            The optimizer's initial learning rate, used when the schedule has no lr0.

        Returns
        -------
        float

        Raises
        ------
        ValueError
            When neither the schedule nor the call gives lr0 and it is needed.
        """
        count = check_int("count", count, 0)
        base = self.lr0 if self.lr0 is not None else lr0
        if base is None and self._needs_lr0:
            raise ValueError(f"{type(self).__name__} needs lr0 (or an optimizer's lr)")
        return float(self._lr(base, count))

    _needs_lr0 = True

    def get_config(self) -> dict[str, Any]:
        """The schedule's class name and arguments, as JSON-friendly values.

        Returns
        -------
        dict
            What ``schedule_from_config`` rebuilds the schedule from.
        """
        return {"name": type(self).__name__, "lr0": self.lr0, "per": self.per,
                **{k: getattr(self, k) for k in self._hyper}}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({args})"


class Constant(Schedule):
    """lr0 throughout.

    Parameters
    ----------
    lr0 : float >= 0, optional
        The initial learning rate; None takes the optimizer's.
    per : {"epoch", "iteration"}, default "epoch"
        What the count counts.
    """

    def _lr(self, lr0, count):
        return _S.constant(lr0, count)


class InverseTime(Schedule):
    """Inverse-time decay: lr0 / (1 + decay_rate * count).

    Parameters
    ----------
    decay_rate : float >= 0, default 1.0
        The decay rate.
    lr0 : float >= 0, optional
        The initial learning rate; None takes the optimizer's.
    per : {"epoch", "iteration"}, default "epoch"
        What the count counts.
    """

    _hyper = ("decay_rate",)

    def __init__(self, decay_rate: float = 1.0, lr0: float | None = None,
                 per: str = "epoch") -> None:
        super().__init__(lr0, per)
        self.decay_rate = check_real("decay_rate", decay_rate, 0.0)

    def _lr(self, lr0, count):
        return _S.inverse_time(lr0, count, self.decay_rate)


class Exponential(Schedule):
    """Exponential decay: lr0 * base ** count.

    Parameters
    ----------
    base : float in (0, 1], default 0.95
        The factor per count.
    lr0 : float >= 0, optional
        The initial learning rate; None takes the optimizer's.
    per : {"epoch", "iteration"}, default "epoch"
        What the count counts.
    """

    _hyper = ("base",)

    def __init__(self, base: float = 0.95, lr0: float | None = None,
                 per: str = "epoch") -> None:
        super().__init__(lr0, per)
        self.base = check_real("base", base, 0.0, 1.0, low_open=True)

    def _lr(self, lr0, count):
        return _S.exponential(lr0, count, self.base)


class InverseSqrtEpoch(Schedule):
    """Inverse square-root decay: lr0 * k / sqrt(count + 1).

    Parameters
    ----------
    k : float >= 0, default 1.0
        A factor.
    lr0 : float >= 0, optional
        The initial learning rate; None takes the optimizer's.
    per : {"epoch", "iteration"}, default "epoch"
        What the count counts.
    """

    _hyper = ("k",)

    def __init__(self, k: float = 1.0, lr0: float | None = None,
                 per: str = "epoch") -> None:
        super().__init__(lr0, per)
        self.k = check_real("k", k, 0.0)

    def _lr(self, lr0, count):
        return _S.inverse_sqrt_epoch(lr0, count + 1, self.k)


class InverseSqrtStep(Schedule):
    """Inverse square-root decay per step: k / sqrt(count + 1).

    Parameters
    ----------
    k : float >= 0, optional
        The learning rate of the first count; None takes the optimizer's initial lr.
    per : {"epoch", "iteration"}, default "iteration"
        What the count counts.
    """

    _hyper = ("k",)

    def __init__(self, k: float | None = None, per: str = "iteration") -> None:
        super().__init__(None, per)
        self.k = None if k is None else check_real("k", k, 0.0)

    def _lr(self, lr0, count):
        return _S.inverse_sqrt_step(count + 1, self.k if self.k is not None else lr0)

    @property
    def _needs_lr0(self):
        return self.k is None

    def get_config(self) -> dict[str, Any]:
        return {"name": "InverseSqrtStep", "per": self.per, "k": self.k}


class Staircase(Schedule):
    """Inverse-time decay in steps: lr0 / (1 + decay_rate * floor(count / interval)).

    Parameters
    ----------
    decay_rate : float >= 0, default 1.0
        The decay rate.
    interval : int >= 1, default 10
        Counts per step.
    lr0 : float >= 0, optional
        The initial learning rate; None takes the optimizer's.
    per : {"epoch", "iteration"}, default "epoch"
        What the count counts.
    """

    _hyper = ("decay_rate", "interval")

    def __init__(self, decay_rate: float = 1.0, interval: int = 10,
                 lr0: float | None = None, per: str = "epoch") -> None:
        super().__init__(lr0, per)
        self.decay_rate = check_real("decay_rate", decay_rate, 0.0)
        self.interval = check_int("interval", interval, 1)

    def _lr(self, lr0, count):
        return _S.staircase(lr0, count, self.decay_rate, self.interval)


class Piecewise(Schedule):
    """Piecewise constant: values[i] for boundaries[i-1] <= count < boundaries[i].

    Parameters
    ----------
    boundaries : sequence of int
        Increasing counts.
    values : sequence of float >= 0
        len(boundaries) + 1 learning rates.
    per : {"epoch", "iteration"}, default "epoch"
        What the count counts.
    """

    _hyper = ("boundaries", "values")
    _needs_lr0 = False

    def __init__(self, boundaries: Sequence[int], values: Sequence[float],
                 per: str = "epoch") -> None:
        super().__init__(None, per)
        self.boundaries = [int(b) for b in boundaries]
        self.values = [check_real("values", v, 0.0) for v in values]
        _S.piecewise(0, self.boundaries, self.values)  # validates lengths and order

    def _lr(self, lr0, count):
        return _S.piecewise(count, self.boundaries, self.values)

    def get_config(self) -> dict[str, Any]:
        return {"name": "Piecewise", "per": self.per, "boundaries": self.boundaries,
                "values": self.values}


SCHEDULES = {cls.__name__: cls for cls in (Constant, InverseTime, Exponential,
                                           InverseSqrtEpoch, InverseSqrtStep, Staircase,
                                           Piecewise)}


def schedule_from_config(config: Mapping[str, Any]) -> Schedule:
    """Rebuild a schedule from ``Schedule.get_config()``'s dict.

    Parameters
    ----------
    config : dict
        {"name": a key of SCHEDULES, then the constructor's arguments}.

    Returns
    -------
    Schedule
    """
    config = dict(config)
    name = config.pop("name")
    check_choice("schedule", name, tuple(SCHEDULES))
    if name == "Piecewise":   # (its constructor casts with int(), which turns 1.5 into 1)
        for i, boundary in enumerate(config.get("boundaries", ())):
            check_int(f"boundaries[{i}]", boundary)
    return SCHEDULES[name](**config)
