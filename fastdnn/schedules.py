"""Learning-rate schedule objects around fastdnn.reference.schedules.

A schedule maps a count to a learning rate. With ``per="epoch"`` the count is the
number of epochs completed before the current one (0 for the first epoch); with
``per="iteration"`` it is the number of updates done before the current one. The
inverse-square-root schedules use count + 1, since they are defined from 1.
``lr0=None`` takes the optimizer's initial learning rate.
"""
from ._validation import check_choice, check_int, check_real
from .reference import schedules as _S


class Schedule:
    """Base class; subclasses define ``_lr(lr0, count)`` and ``_hyper``."""

    _hyper = ()

    def __init__(self, lr0=None, per="epoch"):
        self.lr0 = None if lr0 is None else check_real("lr0", lr0, 0.0)
        self.per = check_choice("per", per, ("epoch", "iteration"))

    def __call__(self, count, lr0=None):
        """The learning rate at ``count`` (see the module docstring)."""
        count = check_int("count", count, 0)
        base = self.lr0 if self.lr0 is not None else lr0
        if base is None and self._needs_lr0:
            raise ValueError(f"{type(self).__name__} needs lr0 (or an optimizer's lr)")
        return float(self._lr(base, count))

    _needs_lr0 = True

    def get_config(self):
        return {"name": type(self).__name__, "lr0": self.lr0, "per": self.per,
                **{k: getattr(self, k) for k in self._hyper}}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({args})"


class Constant(Schedule):
    """lr0 throughout."""

    def _lr(self, lr0, count):
        return _S.constant(lr0, count)


class InverseTime(Schedule):
    """lr0 / (1 + decay_rate * count)."""

    _hyper = ("decay_rate",)

    def __init__(self, decay_rate=1.0, lr0=None, per="epoch"):
        super().__init__(lr0, per)
        self.decay_rate = check_real("decay_rate", decay_rate, 0.0)

    def _lr(self, lr0, count):
        return _S.inverse_time(lr0, count, self.decay_rate)


class Exponential(Schedule):
    """lr0 * base ** count."""

    _hyper = ("base",)

    def __init__(self, base=0.95, lr0=None, per="epoch"):
        super().__init__(lr0, per)
        self.base = check_real("base", base, 0.0, 1.0, low_open=True)

    def _lr(self, lr0, count):
        return _S.exponential(lr0, count, self.base)


class InverseSqrtEpoch(Schedule):
    """lr0 * k / sqrt(count + 1)."""

    _hyper = ("k",)

    def __init__(self, k=1.0, lr0=None, per="epoch"):
        super().__init__(lr0, per)
        self.k = check_real("k", k, 0.0)

    def _lr(self, lr0, count):
        return _S.inverse_sqrt_epoch(lr0, count + 1, self.k)


class InverseSqrtStep(Schedule):
    """k / sqrt(count + 1), by default per iteration (k defaults to the initial lr)."""

    _hyper = ("k",)

    def __init__(self, k=None, per="iteration"):
        super().__init__(None, per)
        self.k = None if k is None else check_real("k", k, 0.0)

    def _lr(self, lr0, count):
        return _S.inverse_sqrt_step(count + 1, self.k if self.k is not None else lr0)

    @property
    def _needs_lr0(self):
        return self.k is None

    def get_config(self):
        return {"name": "InverseSqrtStep", "per": self.per, "k": self.k}


class Staircase(Schedule):
    """lr0 / (1 + decay_rate * floor(count / interval))."""

    _hyper = ("decay_rate", "interval")

    def __init__(self, decay_rate=1.0, interval=10, lr0=None, per="epoch"):
        super().__init__(lr0, per)
        self.decay_rate = check_real("decay_rate", decay_rate, 0.0)
        self.interval = check_int("interval", interval, 1)

    def _lr(self, lr0, count):
        return _S.staircase(lr0, count, self.decay_rate, self.interval)


class Piecewise(Schedule):
    """values[i] for boundaries[i-1] <= count < boundaries[i]."""

    _hyper = ("boundaries", "values")
    _needs_lr0 = False

    def __init__(self, boundaries, values, per="epoch"):
        super().__init__(None, per)
        self.boundaries = [int(b) for b in boundaries]
        self.values = [check_real("values", v, 0.0) for v in values]
        _S.piecewise(0, self.boundaries, self.values)  # validates lengths and order

    def _lr(self, lr0, count):
        return _S.piecewise(count, self.boundaries, self.values)

    def get_config(self):
        return {"name": "Piecewise", "per": self.per, "boundaries": self.boundaries,
                "values": self.values}


SCHEDULES = {cls.__name__: cls for cls in (Constant, InverseTime, Exponential,
                                           InverseSqrtEpoch, InverseSqrtStep, Staircase,
                                           Piecewise)}


def schedule_from_config(config):
    config = dict(config)
    name = config.pop("name")
    check_choice("schedule", name, tuple(SCHEDULES))
    if name == "Piecewise":   # (its constructor casts with int(), which turns 1.5 into 1)
        for i, boundary in enumerate(config.get("boundaries", ())):
            check_int(f"boundaries[{i}]", boundary)
    return SCHEDULES[name](**config)
