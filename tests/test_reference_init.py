"""Reference weight initializers: shapes, scales of large draws, reproducibility."""
import numpy as np
import pytest

from fastdnn.reference import INITIALIZERS, initialize_weights

N_IN, N_OUT = 500, 400  # 200 000 draws: the sample std is within ~0.2% of the true one


@pytest.mark.parametrize("kind,std", [
    ("random", 0.01),
    ("he", np.sqrt(2 / N_IN)),
    ("xavier", np.sqrt(1 / N_IN)),
    ("glorot", np.sqrt(2 / (N_IN + N_OUT))),
])
def test_std_of_large_draws(kind, std):
    W = initialize_weights(kind, N_IN, N_OUT, np.random.default_rng(0))
    assert W.shape == (N_OUT, N_IN)
    # relative standard error of a sample std is 1 / sqrt(2N) = 0.0016; allow 5 of them
    assert abs(W.std() / std - 1) < 5 / np.sqrt(2 * W.size)
    assert abs(W.mean()) < 5 * std / np.sqrt(W.size)


def test_random_scale():
    W = initialize_weights("random", 300, 300, np.random.default_rng(1), scale=0.5)
    assert abs(W.std() / 0.5 - 1) < 0.01


def test_he_depends_on_n_in_only():
    a = initialize_weights("he", 50, 7, np.random.default_rng(3))
    b = initialize_weights("xavier", 50, 7, np.random.default_rng(3))
    assert np.allclose(a, np.sqrt(2) * b, rtol=1e-14, atol=0)


def test_zeros():
    W = initialize_weights("zeros", 3, 2, np.random.default_rng(0))
    assert W.shape == (2, 3) and not W.any()


@pytest.mark.parametrize("kind", INITIALIZERS)
def test_seeded_reproducibility(kind):
    a = initialize_weights(kind, 4, 3, np.random.default_rng(42))
    b = initialize_weights(kind, 4, 3, np.random.default_rng(42))
    assert np.array_equal(a, b)
    if kind != "zeros":
        c = initialize_weights(kind, 4, 3, np.random.default_rng(43))
        assert not np.array_equal(a, c)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", INITIALIZERS)
def test_dtype(kind, dtype):
    W = initialize_weights(kind, 4, 3, np.random.default_rng(0), dtype=dtype)
    assert W.dtype == dtype and W.shape == (3, 4)


def test_float32_is_the_float64_draw_rounded():
    a = initialize_weights("he", 6, 5, np.random.default_rng(9), dtype=np.float32)
    b = initialize_weights("he", 6, 5, np.random.default_rng(9))
    assert np.array_equal(a, b.astype(np.float32))


def test_bad_arguments():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="init must be one of"):
        initialize_weights("kaiming", 3, 2, rng)
    with pytest.raises(ValueError, match="n_in"):
        initialize_weights("he", 0, 2, rng)
    with pytest.raises(ValueError, match="n_out"):
        initialize_weights("he", 3, -1, rng)
    with pytest.raises(TypeError, match="n_in"):
        initialize_weights("he", 3.0, 2, rng)
    with pytest.raises(ValueError, match="scale"):
        initialize_weights("random", 3, 2, rng, scale=-0.01)
