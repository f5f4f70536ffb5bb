"""Reference exponentially weighted averages, with and without bias correction."""
import numpy as np
import pytest
from helpers import assert_close

from fastdnn.reference import ewa


def test_constant_sequence_corrected_is_exact():
    assert ewa([1.0, 1.0, 1.0], 0.9).tolist() == [1.0, 1.0, 1.0]
    assert ewa([2.0] * 4, 0.5).tolist() == [2.0] * 4


def test_constant_sequence_uncorrected_by_hand():
    assert_close(ewa([1.0, 1.0, 1.0], 0.9, bias_correction=False), [0.1, 0.19, 0.271])


def test_by_hand_beta_half():
    # v = 0.5, 1.25, 2.125; corrections 1 - 0.5^t = 0.5, 0.75, 0.875
    values = [1.0, 2.0, 3.0]
    assert_close(ewa(values, 0.5, bias_correction=False), [0.5, 1.25, 2.125])
    assert_close(ewa(values, 0.5), [1.0, 1.25 / 0.75, 2.125 / 0.875])
    assert_close(ewa(values, 0.5), [1.0, 5 / 3, 17 / 7])


def test_beta_zero_is_the_sequence():
    assert ewa([3.0, -1.0, 4.0], 0.0).tolist() == [3.0, -1.0, 4.0]
    assert ewa([3.0, -1.0, 4.0], 0.0, bias_correction=False).tolist() == [3.0, -1.0, 4.0]


def test_vector_values_are_averaged_per_column():
    values = np.array([[1.0, 10.0], [3.0, 20.0]])
    got = ewa(values, 0.5, bias_correction=False)
    assert got.shape == (2, 2)
    assert_close(got, [[0.5, 5.0], [1.75, 12.5]])


def test_float64_output_and_empty():
    assert ewa(np.array([1, 2], dtype=np.float32), 0.9).dtype == np.float64
    assert ewa([], 0.9).shape == (0,)


@pytest.mark.parametrize("beta", [-0.1, 1.0, 1.5])
def test_bad_beta(beta):
    with pytest.raises(ValueError, match="beta must be in \\[0, 1\\)"):
        ewa([1.0], beta)
