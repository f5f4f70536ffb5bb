"""Data augmentation for ``fit``: more training data from the same examples, cheaply.

n_x = a row's width = height * width * channels. ``fit(..., augment=Augment(...))``
treats each training row as an image (row-major, channels last) and, in every mini-batch,
flips it, shifts it and adds noise with fresh random draws; validation data and
predictions are never augmented. The draws come from the counter-based hash of
fastdnn.rng keyed by the model's seed, the training step and the row's position in the
batch, so a fit is repeatable, a resumed fit continues bit for bit, and every backend
gives the same batches: the compiled engine transforms the rows as it gathers them
(fastdnn.engine.steps.gather), the others apply fastdnn.reference.augment.augment_rows.
"""
from __future__ import annotations

import numpy as np

from .reference.augment import check_augment
from .rng import noise_scale


class Augment:
    """How ``fit`` augments the training batches.

    Parameters
    ----------
    image_shape : (height, width) or (height, width, channels)
        The shape of one row as an image (row-major, channels last); its product must
        be the model's input width.
    flip : bool
        Flip each example left-right with probability 1/2.
    shift : int >= 0
        Move each example by (dy, dx) drawn uniformly from [-shift, shift]^2, zeros
        filling what comes in (shifting / cropping).
    noise : float >= 0
        Standard deviation of zero-mean noise added to every element (the sum of four
        uniforms, scaled: bounded by 3.47 standard deviations).

    Examples
    --------
    >>> aug = Augment((8, 8), flip=True, shift=1, noise=0.1)   # doctest: +SKIP
    >>> model.fit(X, y, augment=aug)                           # doctest: +SKIP
    """

    def __init__(self, image_shape: tuple[int, ...], *, flip: bool = False, shift: int = 0,
                 noise: float = 0.0) -> None:
        dims, self.flip, self.shift, self.noise = check_augment(image_shape, flip, shift,
                                                                 noise)
        self.height, self.width, self.channels = dims
        self.image_shape = tuple(image_shape)

    @property
    def size(self) -> int:
        """Values in one image: height * width * channels."""
        return self.height * self.width * self.channels

    @property
    def active(self) -> bool:
        """Whether it changes anything (else fit trains on the rows as they are)."""
        return self.flip or self.shift > 0 or self.noise > 0

    @property
    def noise_scale(self) -> float:
        """What multiplies the hash's centred integer sum (fastdnn.rng.noise_scale)."""
        return noise_scale(self.noise)

    def check(self, n_x: int) -> Augment:
        """Raise unless the images have n_x values.

        Parameters
        ----------
        n_x : int
            The model's input width (X's columns).

        Returns
        -------
        Augment
            self.
        """
        if self.size != n_x:
            raise ValueError(f"augment's image_shape {self.image_shape} holds {self.size} "
                             f"values, the rows of X have {n_x}")
        return self

    def get_config(self) -> dict:
        """The constructor's arguments, as a dict of JSON types.

        Returns
        -------
        dict
            image_shape (a list), flip, shift, noise.
        """
        return {"image_shape": list(self.image_shape), "flip": self.flip,
                "shift": self.shift, "noise": self.noise}

    def __eq__(self, other):
        return isinstance(other, Augment) and self.get_config() == other.get_config()

    def __hash__(self):
        return hash((self.image_shape, self.flip, self.shift, self.noise))

    def __repr__(self):
        return (f"Augment({self.image_shape}, flip={self.flip}, shift={self.shift}, "
                f"noise={self.noise:g})")


def as_augment(augment: Augment | None, X: object) -> Augment | None:
    """Check fit's ``augment`` argument against the training rows.

    Parameters
    ----------
    augment : Augment or None
    X : (n, n_x) array, or fastdnn.engine.sparse.CsrRows
        The training rows: images of augment's shape, dense when it changes them.

    Returns
    -------
    Augment or None
        ``augment``.
    """
    if augment is None:
        return None
    if not isinstance(augment, Augment):
        raise TypeError(f"augment must be a fastdnn.Augment or None, got {augment!r}")
    if augment.active and not isinstance(X, np.ndarray):
        raise ValueError("augment needs a dense X; pass X.toarray()")
    return augment.check(X.shape[1])
