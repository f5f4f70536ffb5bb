"""Schedule objects: the reference functions at the right count; serialization."""
import pytest

from fastdnn import reference as R
from fastdnn import schedules as S


def test_each_schedule_matches_the_reference():
    lr0 = 0.2
    for count in range(5):
        assert S.Constant()(count, lr0) == lr0
        assert S.InverseTime(0.5)(count, lr0) == pytest.approx(
            R.schedules.inverse_time(lr0, count, 0.5))
        assert S.Exponential(0.9)(count, lr0) == pytest.approx(lr0 * 0.9**count)
        assert S.InverseSqrtEpoch(2.0)(count, lr0) == pytest.approx(
            R.schedules.inverse_sqrt_epoch(lr0, count + 1, 2.0))
        assert S.InverseSqrtStep(0.3)(count) == pytest.approx(
            R.schedules.inverse_sqrt_step(count + 1, 0.3))
        assert S.Staircase(1.0, interval=2)(count, lr0) == pytest.approx(
            R.schedules.staircase(lr0, count, 1.0, 2))
        assert S.Piecewise([1, 3], [0.3, 0.2, 0.1])(count) == [0.3, 0.2, 0.2, 0.1, 0.1][count]
    assert S.InverseTime(1.0, lr0=1.0)(1, 0.5) == 0.5   # its own lr0 wins
    assert S.InverseSqrtStep()(3, 0.4) == pytest.approx(0.2)


def test_config_round_trip_and_errors():
    for s in [S.Constant(), S.InverseTime(0.1, per="iteration"), S.Exponential(0.5, lr0=1.0),
              S.InverseSqrtEpoch(2.0), S.InverseSqrtStep(0.1), S.Staircase(0.5, 3),
              S.Piecewise([2], [0.1, 0.01])]:
        again = S.schedule_from_config(s.get_config())
        assert again.get_config() == s.get_config()
        assert [again(c, 0.1) for c in range(4)] == [s(c, 0.1) for c in range(4)]
    with pytest.raises(ValueError, match="per"):
        S.Exponential(per="batch")
    with pytest.raises(ValueError, match="base"):
        S.Exponential(1.5)
    with pytest.raises(ValueError, match="values"):
        S.Piecewise([1, 2], [0.1])
    with pytest.raises(ValueError, match="needs lr0"):
        S.InverseTime(1.0)(0)
