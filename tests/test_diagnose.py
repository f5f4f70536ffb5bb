"""diagnose: the four textbook cases and reading a History."""
import pytest

import fastdnn
from fastdnn.callbacks import History


@pytest.mark.parametrize("train, dev, bayes, verdict", [
    (0.01, 0.11, 0.0, "high variance"),
    (0.15, 0.16, 0.0, "high bias"),
    (0.15, 0.30, 0.0, "high bias and high variance"),
    (0.005, 0.01, 0.0, "neither"),
    (0.15, 0.16, 0.14, "neither"),
])
def test_cases(train, dev, bayes, verdict):
    d = fastdnn.diagnose(train, dev, bayes)
    assert d.verdict.startswith(verdict)
    assert d.high_bias == ("bias" in verdict)
    assert d.high_variance == ("variance" in verdict)
    assert (len(d.remedies) > 0) == (verdict != "neither")
    assert verdict.split()[0] in str(d)


def test_from_history_and_errors():
    h = History()
    h.append({"accuracy": 0.99, "val_accuracy": 0.80})
    assert fastdnn.diagnose(h).verdict == "high variance"
    with pytest.raises(ValueError, match="train_error"):
        fastdnn.diagnose(1.5, 0.1)
    with pytest.raises(ValueError, match="val_accuracy"):
        fastdnn.diagnose({"accuracy": [0.9]})
    with pytest.raises(TypeError, match="dev_error"):
        fastdnn.diagnose(0.1)
