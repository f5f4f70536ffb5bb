"""Search spaces: distributions on their own scales, narrowing, configs."""
import numpy as np
import pytest

from fastdnn.search import (Choice, Grid, IntUniform, LogUniform, OneMinusLogUniform,
                            Uniform, grid_configs, sample_config, space_from_config)

stats = pytest.importorskip("scipy.stats")


def rng():
    return np.random.default_rng(1234)


def test_log_uniform_is_uniform_in_log10():
    x = LogUniform(1e-4, 1).sample(20000, rng())
    assert x.min() >= 1e-4 and x.max() <= 1
    assert stats.kstest(np.log10(x), stats.uniform(-4, 4).cdf).pvalue > 1e-3
    # a quarter of the samples in each decade, not 0.09% in the first
    assert abs(np.mean(x <= 1e-3) - 0.25) < 0.015
    # the uniform space puts almost nothing there: the test can tell them apart
    assert np.mean(Uniform(1e-4, 1).sample(20000, rng()) <= 1e-3) < 0.01


def test_one_minus_log_uniform_for_betas():
    b = OneMinusLogUniform(0.9, 0.999).sample(20000, rng())
    assert b.min() >= 0.9 and b.max() <= 0.999
    r = np.log10(1 - b)
    assert stats.kstest(r, stats.uniform(-3, 2).cdf).pvalue > 1e-3
    # as many samples in 0.9..0.99 as in 0.99..0.999
    assert abs(np.mean(b < 0.99) - 0.5) < 0.02


def test_uniform_and_int_uniform():
    x = Uniform(-2, 3).sample(10000, rng())
    assert stats.kstest(x, stats.uniform(-2, 5).cdf).pvalue > 1e-3
    k = IntUniform(1, 4).sample(8000, rng())
    assert k.dtype.kind == "i" and set(np.unique(k)) == {1, 2, 3, 4}
    assert np.allclose(np.bincount(k)[1:] / 8000, 0.25, atol=0.03)
    h = IntUniform(10, 1000, log=True).sample(20000, rng())
    assert h.min() >= 10 and h.max() <= 1000
    assert abs(np.mean(h < 100) - 0.5) < 0.03     # one decade each side of 100


def test_choice_and_grid():
    c = Choice(["relu", "tanh"], p=[0.75, 0.25]).sample(4000, rng())
    assert abs(c.count("relu") / 4000 - 0.75) < 0.03
    assert Grid([1, 2, 3]).sample(5, rng()) == [1, 2, 3, 1, 2]
    g = grid_configs({"a": Grid([1, 2]), "b": ["x", "y", "z"]})
    assert len(g) == 6 and g[0] == {"a": 1, "b": "x"}


def test_sample_is_reproducible():
    s = LogUniform(1e-3, 1)
    assert np.array_equal(s.sample(5, np.random.default_rng(0)),
                          s.sample(5, np.random.default_rng(0)))
    space = {"lr": LogUniform(1e-4, 1), "beta1": OneMinusLogUniform(0.9, 0.999),
             "units": IntUniform(16, 256, log=True), "act": ["relu", "tanh"], "epochs": 5}
    a = [sample_config(space, 7, t) for t in range(4)]
    b = [sample_config(space, 7, t) for t in range(4)]
    assert a == b and a[0] != a[1]
    assert all(c["epochs"] == 5 and isinstance(c["units"], int) for c in a)


def test_narrow_on_each_scale():
    s = LogUniform(1e-5, 1).narrow([1e-3, 2e-3], factor=0.2)
    # width 0.2 * 5 decades = 1 decade, centred on the values in log space
    assert np.isclose(np.log10(s.high) - np.log10(s.low), 1.0)
    assert s.low <= 1e-3 and s.high >= 2e-3
    b = OneMinusLogUniform(0.9, 0.9999).narrow([0.99], factor=0.5)
    assert np.isclose(np.log10(1 - b.low) - np.log10(1 - b.high), 1.5)
    assert b.low < 0.99 < b.high
    # near a bound the window slides rather than sticking out
    e = LogUniform(1e-5, 1).narrow([0.9], factor=0.2)
    assert np.isclose(e.high, 1) and np.isclose(e.low, 0.1)
    # wide best values are all kept
    w = Uniform(0, 10).narrow([1, 9], factor=0.1)
    assert w.low <= 1 and w.high >= 9
    i = IntUniform(1, 512, log=True).narrow([64, 100], 0.25)
    assert i.low <= 64 and i.high >= 100 and i.high < 512 and i.log
    assert Choice(["a", "b", "c"]).narrow(["c", "a", "c"]).options == ["a", "c"]
    with pytest.raises(ValueError, match="factor"):
        Uniform(0, 1).narrow([0.5], factor=0)


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match="low"):
        LogUniform(0, 1)
    with pytest.raises(ValueError, match="low must be <= high"):
        Uniform(2, 1)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        OneMinusLogUniform(0.9, 1.0)
    with pytest.raises(ValueError, match="p must"):
        Choice([1, 2], p=[0.5, 0.6])


def test_space_from_config():
    s = space_from_config({"lr": {"log_uniform": [1e-4, 1e-1]},
                           "beta1": {"one_minus_log_uniform": [0.8, 0.999]},
                           "units": {"int": [32, 256], "log": True},
                           "act": ["relu", "tanh"], "epochs": 30})
    assert s["lr"] == LogUniform(1e-4, 1e-1)
    assert s["units"] == IntUniform(32, 256, log=True)
    assert s["act"] == Choice(["relu", "tanh"]) and s["epochs"] == Choice([30])
    with pytest.raises(ValueError, match="lr"):
        space_from_config({"lr": {"loguniform": [1, 2]}})
