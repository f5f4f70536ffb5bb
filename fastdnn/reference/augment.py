"""Data augmentation of image rows, vectorised: the oracle of the compiled gather.

m = batch rows, n = a row's width = height * width * channels: each row is an image
(height, width, channels), row-major, channels last. Row i of the batch of training step
``step`` of a model seeded ``seed`` is flipped left-right (with probability 1/2), then
moved by (dy, dx) drawn uniformly from [-shift, shift]^2 with zeros shifted in, then
given zero-mean noise of standard deviation ``noise`` on every element. The draws come
from fastdnn.rng's counter-based hash (keys augment_key(seed, step, GEOMETRY / NOISE);
index i for a row's geometry, i n + j for element j's noise), the same integer
arithmetic as fastdnn.formulas' augment_* functions, so the compiled gather gives the
same bits.
"""
from __future__ import annotations

import numbers

import numpy as np
from numpy.typing import NDArray

from .._validation import check_bool, check_float_array, check_int, check_real, emit
from ..rng import GEOMETRY, NOISE, augment_key, noise_scale
from .dropout import splitmix64

_U = np.uint64


def check_augment(image_shape: tuple[int, ...], flip: bool, shift: int,
                  noise: float) -> tuple[tuple[int, int, int], bool, int, float]:
    """The augmentation settings checked, each error naming its argument.

    Parameters
    ----------
    image_shape : (height, width) or (height, width, channels) of positive ints
    flip : bool
    shift : int in [0, max(height, width) - 1]
    noise : float >= 0, finite

    Returns
    -------
    ((height, width, channels), flip, shift, noise)
    """
    dims = image_shape
    if isinstance(dims, (tuple, list)) and len(dims) == 2:
        dims = tuple(dims) + (1,)
    if not isinstance(dims, (tuple, list)) or len(dims) != 3 or any(
            isinstance(d, bool) or not isinstance(d, numbers.Integral) or d < 1
            for d in dims):
        raise ValueError(f"image_shape must be (height, width) or (height, width, "
                         f"channels) of positive integers, got {image_shape!r}")
    dims = tuple(int(d) for d in dims)
    flip = check_bool("flip", flip)
    shift = check_int("shift", shift, 0, max(dims[0], dims[1]) - 1)
    noise = check_real("noise", noise, 0.0)
    return dims, flip, shift, noise


def augment_rows(X_rows: NDArray[np.floating], seed_step: tuple[int, int],
                 image_shape: tuple[int, ...], flip: bool = False, shift: int = 0,
                 noise: float = 0.0, *,
                 out: NDArray[np.floating] | None = None) -> NDArray[np.floating]:
    """The augmented rows of one training batch.

    Parameters
    ----------
    X_rows : (m, n) float32 or float64
        The batch's rows in batch order (row i's draws depend on its position i).
    seed_step : (seed, step)
        The model's seed and the training step (steps done before this batch).
    image_shape : (height, width) or (height, width, channels), product n
    flip : bool
        Flip each row left-right with probability 1/2.
    shift : int >= 0
        Move each row by (dy, dx) uniform in [-shift, shift]^2, zeros filling.
    noise : float >= 0
        Standard deviation of the additive noise (Irwin-Hall of four uniforms).
    out : (m, n) array, optional
        Where to write the result (may be X_rows itself).

    Returns
    -------
    (m, n) array of X_rows' dtype
        The augmented rows (``out`` when given; X_rows is otherwise not changed).
    """
    X = check_float_array("X_rows", X_rows, ndim=2)
    (H, W, C), flip, shift, noise = check_augment(image_shape, flip, shift, noise)
    m, n = X.shape
    if n != H * W * C:
        raise ValueError(f"image_shape {tuple(image_shape)} holds {H * W * C} values, the "
                         f"rows have {n}")
    seed, step = (int(v) for v in seed_step)
    result = X.copy()
    if flip or shift:
        bits = splitmix64(np.arange(m, dtype=_U) + _U(augment_key(seed, step, GEOMETRY)))
        flipped = flip & ((bits >> _U(63)) != 0)
        span = _U(2 * shift + 1)
        dy = (((bits >> _U(32)) & _U(0x7FFFFFFF)) * span >> _U(31)).astype(np.int64) - shift
        dx = ((bits & _U(0xFFFFFFFF)) * span >> _U(32)).astype(np.int64) - shift
        ys = np.arange(H)[None, :, None] - dy[:, None, None]        # (m, H, W)
        xs = np.arange(W)[None, None, :] - dx[:, None, None]
        inside = (ys >= 0) & (ys < H) & (xs >= 0) & (xs < W)
        xs = np.where(flipped[:, None, None], W - 1 - xs, xs)
        source = np.where(inside, ys * W + xs, 0).reshape(m, H * W)
        pixels = X.reshape(m, H * W, C)[np.arange(m)[:, None], source]  # (m, H W, C)
        pixels[~inside.reshape(m, H * W)] = 0
        result = pixels.reshape(m, n)
    if noise > 0:
        index = np.arange(m * n, dtype=_U).reshape(m, n)
        bits = splitmix64(index + _U(augment_key(seed, step, NOISE)))
        total = (bits & _U(0xFFFF)) + ((bits >> _U(16)) & _U(0xFFFF)) + \
            ((bits >> _U(32)) & _U(0xFFFF)) + (bits >> _U(48))
        centred = total.astype(np.int64) * 2 - 262140
        dt = X.dtype.type
        result = result + centred.astype(np.float32).astype(X.dtype) * dt(noise_scale(noise))
    return emit(result, out)
