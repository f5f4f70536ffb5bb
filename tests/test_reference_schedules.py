"""Reference learning-rate schedules: values at chosen epochs."""
import pytest

from fastdnn.reference import schedules as s


def test_constant():
    assert s.constant(0.1, 0) == 0.1
    assert s.constant(0.1, 1000) == 0.1


def test_inverse_time():
    assert s.inverse_time(1.0, 0, 0.5) == 1.0
    assert s.inverse_time(1.0, 3, 0.5) == 0.4             # 1 / (1 + 1.5)
    assert s.inverse_time(0.2, 4, 1.0) == pytest.approx(0.04, rel=1e-15)
    assert s.inverse_time(0.3, 10, 0.0) == 0.3


def test_exponential_default_base():
    assert s.exponential(1.0, 0) == 1.0
    assert s.exponential(1.0, 1) == 0.95
    assert s.exponential(1.0, 2) == pytest.approx(0.9025, rel=1e-15)
    assert s.exponential(0.2, 3) == pytest.approx(0.2 * 0.857375, rel=1e-15)


def test_exponential_custom_base():
    assert s.exponential(2.0, 3, base=0.5) == 0.25
    assert s.exponential(2.0, 3, base=1.0) == 2.0


def test_inverse_sqrt_epoch():
    assert s.inverse_sqrt_epoch(0.3, 1) == 0.3
    assert s.inverse_sqrt_epoch(0.3, 4) == 0.15
    assert s.inverse_sqrt_epoch(0.3, 4, k=2.0) == 0.3
    assert s.inverse_sqrt_epoch(1.0, 100, k=0.5) == 0.05


def test_inverse_sqrt_step():
    assert s.inverse_sqrt_step(1, 0.6) == 0.6
    assert s.inverse_sqrt_step(9, 0.6) == pytest.approx(0.2, rel=1e-15)
    assert s.inverse_sqrt_step(16, 2.0) == 0.5


def test_staircase():
    assert s.staircase(1.0, 0, 1.0) == 1.0
    assert s.staircase(1.0, 999, 1.0) == 1.0              # default interval 1000
    assert s.staircase(1.0, 1000, 1.0) == 0.5
    assert s.staircase(1.0, 2999, 1.0) == 1 / 3
    assert s.staircase(0.5, 25, 0.5, interval=10) == 0.25  # 0.5 / (1 + 0.5 * 2)
    assert s.staircase(0.5, 9, 0.5, interval=10) == 0.5


def test_piecewise():
    boundaries, values = [10, 20], [1.0, 0.5, 0.1]
    got = [s.piecewise(e, boundaries, values) for e in (0, 9, 10, 19, 20, 1000)]
    assert got == [1.0, 1.0, 0.5, 0.5, 0.1, 0.1]
    assert s.piecewise(5, [], [0.3]) == 0.3


def test_results_are_python_floats():
    for v in (s.constant(1, 2), s.inverse_time(1.0, 2, 0.1), s.exponential(1.0, 2),
              s.inverse_sqrt_epoch(1.0, 2), s.inverse_sqrt_step(2, 1.0),
              s.staircase(1.0, 2, 0.1), s.piecewise(1, [2], [1, 2])):
        assert isinstance(v, float)


def test_bad_arguments():
    with pytest.raises(ValueError, match="decay_rate"):
        s.inverse_time(1.0, 1, -0.5)
    with pytest.raises(ValueError, match="base"):
        s.exponential(1.0, 1, base=0.0)
    with pytest.raises(ValueError, match="base"):
        s.exponential(1.0, 1, base=1.5)
    with pytest.raises(ValueError, match="epoch"):
        s.inverse_sqrt_epoch(1.0, 0)
    with pytest.raises(ValueError, match="t must be in"):
        s.inverse_sqrt_step(0, 1.0)
    with pytest.raises(ValueError, match="decay_rate"):
        s.staircase(1.0, 5, -1.0)
    with pytest.raises(ValueError, match="interval"):
        s.staircase(1.0, 5, 1.0, interval=0)
    with pytest.raises(ValueError, match="values must have len\\(boundaries\\) \\+ 1 = 3"):
        s.piecewise(1, [1, 2], [1.0, 2.0])
    with pytest.raises(ValueError, match="boundaries must be increasing"):
        s.piecewise(1, [5, 2], [1.0, 2.0, 3.0])
