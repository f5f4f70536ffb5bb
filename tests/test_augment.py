"""Data augmentation (fastdnn.Augment, fit(augment=...)): the NumPy reference on cases
worked by hand, the compiled gather against it bit for bit, fits that agree across
backends, repeat and resume bit for bit, and bad input named."""
import numpy as np
import pytest
from numba import njit

import fastdnn
from fastdnn import MLP, Augment
from fastdnn.engine import steps
from fastdnn.reference.augment import augment_rows
from fastdnn.rng import GEOMETRY, augment_key, splitmix64
from helpers import assert_close


def draws(seed, step, m, shift):
    """(flip, dy, dx) of rows 0 .. m-1, from fastdnn.rng's Python-int hash."""
    key, span = augment_key(seed, step, GEOMETRY), 2 * shift + 1
    out = []
    for i in range(m):
        bits = splitmix64((key + i) % 2**64)
        out.append((bits >> 63, (((bits >> 32) & 0x7FFFFFFF) * span >> 31) - shift,
                    ((bits & 0xFFFFFFFF) * span >> 32) - shift))
    return out


def moved(image, flip, dy, dx):
    """image (H, W, C) flipped left-right, then moved down dy and right dx, zeros in."""
    H, W = image.shape[:2]
    src = image[:, ::-1] if flip else image
    out = np.zeros_like(image)
    for y in range(H):
        for x in range(W):
            if 0 <= y - dy < H and 0 <= x - dx < W:
                out[y, x] = src[y - dy, x - dx]
    return out


# ----------------------------------------------------------------------------- reference

def test_flip_of_a_2x3_image():
    X = np.tile(np.arange(6.0), (64, 1))
    out = augment_rows(X, (5, 2), (2, 3), flip=True)
    mirror = np.array([2.0, 1, 0, 5, 4, 3])
    flips = [f for f, _, _ in draws(5, 2, 64, 0)]
    for i, f in enumerate(flips):
        np.testing.assert_array_equal(out[i], mirror if f else X[i])
    assert 16 < sum(flips) < 48                       # about half
    np.testing.assert_array_equal(augment_rows(X, (5, 2), (2, 3)), X)   # nothing asked


def test_shift_by_one_fills_zeros():
    image = np.array([[1.0, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(moved(image[..., None], 0, 1, 0)[..., 0],
                                  [[0, 0, 0], [1, 2, 3]])
    np.testing.assert_array_equal(moved(image[..., None], 0, 0, -1)[..., 0],
                                  [[2, 3, 0], [5, 6, 0]])
    X = np.tile(image.reshape(1, 6), (200, 1))
    out = augment_rows(X, (1, 7), (2, 3), shift=1)
    seen = set()
    for i, (f, dy, dx) in enumerate(draws(1, 7, 200, 1)):
        assert f in (0, 1) and -1 <= dy <= 1 and -1 <= dx <= 1
        np.testing.assert_array_equal(out[i], moved(image[..., None], 0, dy, dx).ravel())
        seen.add((dy, dx))
    assert len(seen) == 9                             # every move in [-1, 1]^2 happens


def test_flip_and_shift_keep_channels_together():
    rng = np.random.default_rng(0)
    images = rng.integers(1, 100, (40, 3, 4, 2)).astype(np.float32)
    out = augment_rows(images.reshape(40, -1), (3, 0), (3, 4, 2), flip=True, shift=2)
    for i, (f, dy, dx) in enumerate(draws(3, 0, 40, 2)):
        np.testing.assert_array_equal(out[i].reshape(3, 4, 2), moved(images[i], f, dy, dx))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_noise_has_mean_0_and_the_std_asked(dtype):
    X = np.zeros((400, 250), dtype)
    out = augment_rows(X, (11, 3), (10, 25), noise=0.5)
    assert out.dtype == dtype
    assert abs(out.mean()) < 0.005
    assert abs(out.std() / 0.5 - 1) < 0.01
    assert np.abs(out).max() <= 0.5 * 2 * np.sqrt(3) * (1 + 1e-6)   # Irwin-Hall's bound
    again = augment_rows(X, (11, 3), (10, 25), noise=0.5)
    np.testing.assert_array_equal(out, again)
    other = augment_rows(X, (11, 4), (10, 25), noise=0.5)
    assert not np.array_equal(out, other)             # a new step, new draws
    # the same integers in both dtypes: float32's noise is float64's within rounding
    wide = augment_rows(X.astype(np.float64), (11, 3), (10, 25), noise=0.5)
    assert_close(out, wide, dtype=dtype, rtol=3e-7, atol=0, name="noise")


def test_noise_is_added_after_the_move():
    X = np.arange(12.0).reshape(2, 6)
    moved_only = augment_rows(X, (2, 1), (2, 3), flip=True, shift=1)
    both = augment_rows(X, (2, 1), (2, 3), flip=True, shift=1, noise=0.1)
    noise = augment_rows(np.zeros_like(X), (2, 1), (2, 3), noise=0.1)
    np.testing.assert_array_equal(both, moved_only + noise)


# ----------------------------------------------------------------------------- compiled gather

@njit
def _gather(items, net, data, run, buf):
    for lo, hi in items:
        steps.gather((run[2], 0, 1, 0, lo, hi, 0), net, data, run, buf)


def compiled_batch(X, order, seed, step, aug, m, s=0, row_start=0, items=None):
    """The X rows of step s of a run that the compiled gather writes."""
    from fastdnn.engine import structs as st
    from fastdnn.engine.cpu import _engine_data, _set_augment
    dt = X.dtype
    net = (np.zeros((st.LAYER_ROWS, 1), np.int64), np.zeros((2, 1)),
           np.zeros((st.KEEP + 1, 1)), np.full((st.THRESHOLD + 1, 1), seed, np.uint64))
    run = np.zeros(st.RUN_FIELDS, np.int64)
    sc = type("Scratch", (), {"run": run, "model_f": net[2]})()
    _set_augment(sc, aug)
    y_at = m * X.shape[1]
    run[[st.M, st.X_AT, st.Y_AT, st.WEIGHT_AT, st.ROW_START, st.STEP0]] = \
        m, 0, y_at, -1, row_start, step
    run[st.STEPS] = s     # (the test's way to pass s to _gather)
    buf = np.full(y_at + m, np.nan, dt)
    Y = np.zeros((X.shape[0], 1), dt)
    items = items or [(0, m)]
    data = _engine_data((X, Y, order, np.zeros(0, dt)), aug)
    _gather(np.array(items, np.int64), net, data, run, buf)
    return buf[:y_at].reshape(m, X.shape[1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, aug_kw, m", [
    ((5, 7, 3), dict(flip=True, shift=2, noise=0.3), 13),
    ((5, 7, 3), dict(flip=True, shift=2, noise=0.3), 1),
    ((3, 3), dict(shift=1), 7),
    ((4, 9), dict(flip=True), 5),
    ((2, 5, 1), dict(noise=1.5), 9),
])
def test_compiled_gather_equals_the_reference_bit_for_bit(dtype, shape, aug_kw, m):
    rng = np.random.default_rng(1)
    n_x = int(np.prod(shape))
    X = rng.standard_normal((31, n_x)).astype(dtype)
    order = rng.permutation(31)
    aug = Augment(shape, **aug_kw)
    seed, step0, s, row_start = 2**63 + 12345, 17, 1, 3
    items = [(0, min(m, 4)), (min(m, 4), m)] if m > 4 else None
    got = compiled_batch(X, order, seed, step0, aug, m, s, row_start, items)
    first = row_start + s * m
    want = augment_rows(X[order[first:first + m]], (seed, step0 + s), shape, **aug_kw)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))
    assert not np.array_equal(got, X[order[first:first + m]])


# ----------------------------------------------------------------------------- fit

def digits_like(n=60, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 36)), rng.integers(0, 4, n)


AUG = Augment((6, 6), flip=True, shift=1, noise=0.2)


def fitted(backend, dtype="float64", seed=3, augment=AUG, epochs=2, **kw):
    X, y = digits_like()
    m = MLP([36, 12, 4], keep_prob=0.9, dtype=dtype, backend=backend, seed=seed)
    m.fit(X, y, optimizer=fastdnn.Adam(0.01), epochs=epochs, batch_size=16, verbose=0,
          augment=augment, **kw)
    return m


@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-10), ("float32", 1e-5)])
def test_augmented_fit_agrees_across_backends(dtype, rtol):
    ref, fast = fitted("numpy", "float64"), fitted("cpu", dtype)
    plain = fitted("cpu", dtype, augment=None)
    for k, v in ref.get_weights().items():
        assert_close(fast.get_weights()[k], v, dtype=dtype, rtol=rtol, atol=rtol / 10,
                     name=k)
        assert not np.allclose(plain.get_weights()[k], v, rtol=1e-3, atol=1e-4), k
    assert fast.step_ == ref.step_ == 8


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_same_seed_same_weights_other_seed_other_weights(backend):
    a, b, c = fitted(backend), fitted(backend), fitted(backend, seed=4)
    for k, v in a.get_weights().items():
        np.testing.assert_array_equal(b.get_weights()[k], v)
    assert not np.array_equal(a.get_weights()["W1"], c.get_weights()["W1"])


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_augment_that_changes_nothing_leaves_the_bits(backend):
    a = fitted(backend, augment=None)
    b = fitted(backend, augment=Augment((6, 6)))   # no flip, shift or noise
    for k, v in a.get_weights().items():
        np.testing.assert_array_equal(b.get_weights()[k], v)


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_resume_with_augmentation_is_bit_for_bit(backend, tmp_path):
    X, y = digits_like()
    full = fitted(backend, epochs=2)
    half = fitted(backend, epochs=1)
    half.save(tmp_path / "half.npz")
    resumed = fastdnn.load(tmp_path / "half.npz")
    resumed.fit(X, y, epochs=1, batch_size=16, verbose=0, augment=AUG)
    for k, v in full.get_weights().items():
        np.testing.assert_array_equal(resumed.get_weights()[k], v)
    assert resumed.step_ == full.step_


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_validation_data_and_inputs_are_not_augmented(backend):
    X, y = digits_like()
    X_dev, y_dev = X[:20].copy(), y[:20]
    X_before = X.copy()
    m = MLP([36, 12, 4], dtype="float64", backend=backend, seed=3)
    h = m.fit(X, y, epochs=2, batch_size=16, verbose=0, augment=AUG,
              validation_data=(X_dev, y_dev))
    np.testing.assert_array_equal(X, X_before)
    assert h["val_loss"][-1] == m.evaluate(X_dev, y_dev)["loss"]
    np.testing.assert_array_equal(m.predict_proba(X_dev), m.predict_proba(X[:20]))


# ----------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("args, kwargs, error, match", [
    (((6, 0),), {}, ValueError, "image_shape"),
    (((6,),), {}, ValueError, "image_shape"),
    (("6x6",), {}, ValueError, "image_shape"),
    (((6, 6, 1, 1),), {}, ValueError, "image_shape"),
    (((6, 6.0),), {}, ValueError, "image_shape"),
    (((6, 6),), dict(shift=-1), ValueError, r"shift must be in \[0, 5\], got -1"),
    (((6, 6),), dict(shift=6), ValueError, "shift"),
    (((6, 6),), dict(shift=1.5), TypeError, "shift"),
    (((6, 6),), dict(noise=-0.1), ValueError, "noise"),
    (((6, 6),), dict(noise=float("nan")), ValueError, "noise"),
    (((6, 6),), dict(flip="yes"), TypeError, "flip must be True or False, got 'yes'"),
    (((6, 6),), dict(flip=1), TypeError, "flip"),
])
def test_bad_settings_are_named(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        Augment(*args, **kwargs)


def test_fit_names_a_shape_that_does_not_match_the_rows():
    X, y = digits_like()
    m = MLP([36, 4], backend="numpy", seed=0)
    with pytest.raises(ValueError, match=r"image_shape \(5, 5\) holds 25 values, the rows "
                                         "of X have 36"):
        m.fit(X, y, epochs=1, verbose=0, augment=Augment((5, 5), flip=True))
    with pytest.raises(TypeError, match="augment must be a fastdnn.Augment"):
        m.fit(X, y, epochs=1, verbose=0, augment={"flip": True})
    with pytest.raises(ValueError, match="holds 36 values, the rows have 35"):
        augment_rows(X[:, :35].copy(), (0, 0), (6, 6), flip=True)
    assert m.step_ == 0
