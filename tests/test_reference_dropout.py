"""Reference inverted dropout and the counter-based mask hash of fastdnn.rng."""
import numpy as np
import pytest
from helpers import assert_close

from fastdnn import rng as fr
from fastdnn.reference import dropout_backward, dropout_forward, dropout_mask
from fastdnn.reference.dropout import splitmix64 as splitmix64_vec

KEY = fr.dropout_key(seed=7, step=3, layer=1)


def python_keep_bit(key, index, keep_prob):
    """The keep bit of one element computed with Python ints only."""
    return (fr.splitmix64((key + index) & fr.MASK64) >> 32) < fr.keep_threshold(keep_prob)


def test_splitmix64_known_values():
    # SplitMix64 reference sequence from seed 0 (state advances by the golden gamma)
    assert fr.splitmix64(0) == 0xE220A8397B1DCDAF
    assert fr.splitmix64(fr.GOLDEN_GAMMA) == 0x6E789E6AA1B965F4
    assert fr.splitmix64(2 * fr.GOLDEN_GAMMA & fr.MASK64) == 0x06C45D188009454F


def test_vectorised_splitmix64_matches_python():
    xs = [0, 1, 12345, fr.MASK64, fr.MASK64 - fr.GOLDEN_GAMMA, 1 << 63]
    got = splitmix64_vec(np.array(xs, dtype=np.uint64))
    assert [int(v) for v in got] == [fr.splitmix64(x) for x in xs]


@pytest.mark.parametrize("key", [KEY, 0, fr.MASK64 - 5])  # the last one wraps around 2**64
def test_mask_matches_pure_python_hash(key):
    m, n, keep_prob = 7, 5, 0.6
    mask = dropout_mask((m, n), keep_prob, key)
    for i, j in [(0, 0), (0, 4), (1, 0), (3, 2), (6, 4), (5, 1)]:
        assert mask[i, j] == python_keep_bit(key, i * n + j, keep_prob), (i, j)
    assert mask.tolist() == [[python_keep_bit(key, i * n + j, keep_prob) for j in range(n)]
                             for i in range(m)]


def test_mask_depends_only_on_row_major_index():
    flat = dropout_mask((60,), 0.5, KEY)
    assert np.array_equal(dropout_mask((6, 10), 0.5, KEY), flat.reshape(6, 10))
    assert np.array_equal(dropout_mask((10, 6), 0.5, KEY), flat.reshape(10, 6))
    # a (3, 10) mask is the first 30 indices, i.e. the first 3 rows of the (6, 10) mask
    assert np.array_equal(dropout_mask((3, 10), 0.5, KEY), flat[:30].reshape(3, 10))


def test_keep_fraction_within_five_sigma():
    n, keep_prob = 1_000_000, 0.8
    frac = dropout_mask((1000, 1000), keep_prob, KEY).mean()
    assert abs(frac - keep_prob) < 5 * np.sqrt(keep_prob * (1 - keep_prob) / n)


def test_inverted_scaling_keeps_expected_value():
    n, keep_prob = 1_000_000, 0.7
    out = dropout_forward(np.ones((1000, 1000)), keep_prob, KEY)
    sigma = np.sqrt((1 - keep_prob) / (keep_prob * n))
    assert abs(out.mean() - 1.0) < 5 * sigma
    assert set(np.unique(out)) <= {0.0, 1 / keep_prob}


def test_forward_values_by_mask(rng):
    A = rng.standard_normal((4, 6))
    mask = dropout_mask(A.shape, 0.5, KEY)
    assert_close(dropout_forward(A, 0.5, KEY), np.where(mask, A / 0.5, 0.0))


def test_backward_uses_the_forward_mask(rng):
    A = rng.standard_normal((8, 9))
    dA = rng.standard_normal((8, 9))
    out = dropout_forward(A, 0.6, KEY)
    dX = dropout_backward(dA, 0.6, KEY)
    assert np.array_equal(out != 0, dX != 0)
    assert_close(dX, np.where(out != 0, dA / 0.6, 0.0))


def test_different_keys_give_different_masks():
    masks = [dropout_mask((50, 40), 0.5, fr.dropout_key(1, step, layer))
             for step in range(3) for layer in range(3)]
    for a in range(len(masks)):
        for b in range(a + 1, len(masks)):
            assert not np.array_equal(masks[a], masks[b])
            # independent masks agree on about half the elements
            assert 0.4 < (masks[a] == masks[b]).mean() < 0.6


def test_dropout_key_is_deterministic_and_separates_arguments():
    keys = {fr.dropout_key(s, t, l) for s in range(3) for t in range(3) for l in range(3)}
    assert len(keys) == 27
    assert fr.dropout_key(5, 2, 1) == fr.dropout_key(5, 2, 1)
    assert all(0 <= k <= fr.MASK64 for k in keys)


def test_keep_threshold():
    assert fr.keep_threshold(1.0) == 2**32
    assert fr.keep_threshold(0.5) == 2**31
    assert fr.keep_threshold(0.25) == 2**30


def test_keep_prob_one_keeps_everything(rng):
    A = rng.standard_normal((5, 3))
    assert dropout_mask(A.shape, 1.0, KEY).all()
    out = dropout_forward(A, 1.0, KEY)
    assert np.array_equal(out, A) and out is not A
    assert np.array_equal(dropout_backward(A, 1.0, KEY), A)


def test_tiny_keep_prob_drops_nearly_everything():
    assert dropout_mask((100, 100), 1e-6, KEY).sum() <= 2


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(dtype, rng):
    A = rng.standard_normal((4, 5)).astype(dtype)
    assert dropout_forward(A, 0.3, KEY).dtype == dtype
    assert dropout_backward(A, 0.3, KEY).dtype == dtype
    assert dropout_forward(A, 1.0, KEY).dtype == dtype


def test_float32_exact_scaling(rng):
    A = rng.standard_normal((4, 5)).astype(np.float32)
    out = dropout_forward(A, 0.3, KEY)
    mask = dropout_mask(A.shape, 0.3, KEY)
    assert np.array_equal(out[mask], A[mask] / np.float32(0.3))


@pytest.mark.parametrize("keep_prob", [1.0, 0.5])
def test_out_buffers(keep_prob, rng):
    A = rng.standard_normal((3, 4))
    buf = np.empty_like(A)
    assert dropout_forward(A, keep_prob, KEY, out=buf) is buf
    assert_close(buf, dropout_forward(A, keep_prob, KEY))
    buf2 = np.empty_like(A)
    assert dropout_backward(A, keep_prob, KEY, out=buf2) is buf2
    assert_close(buf2, buf)


@pytest.mark.parametrize("keep_prob", [0, 0.0, -0.1, 1.5, float("nan")])
def test_bad_keep_prob(keep_prob):
    A = np.ones((2, 2))
    for f in (dropout_forward, dropout_backward):
        with pytest.raises(ValueError, match="keep_prob must be in \\(0, 1\\]"):
            f(A, keep_prob, KEY)
    with pytest.raises(ValueError, match="keep_prob"):
        dropout_mask((2, 2), keep_prob, KEY)


def test_bad_keep_prob_type():
    with pytest.raises(TypeError, match="keep_prob"):
        dropout_forward(np.ones((2, 2)), "0.5", KEY)


def test_bad_arrays():
    with pytest.raises(TypeError, match="A must have dtype"):
        dropout_forward(np.ones((2, 2), dtype=np.int64), 0.5, KEY)
    with pytest.raises(TypeError, match="dA must have dtype"):
        dropout_backward(np.ones((2, 2), dtype=np.int64), 0.5, KEY)
    with pytest.raises(ValueError, match="A must not be empty"):
        dropout_forward(np.ones((0, 2)), 0.5, KEY)
