"""Helpers shared by the tests: comparisons with tolerances by dtype and readable
failures, and a fake terminal stream."""
import io

import numpy as np

TOLERANCES = {np.dtype(np.float64): (1e-10, 1e-12), np.dtype(np.float32): (1e-5, 1e-6)}


def assert_close(actual, expected, dtype=None, rtol=None, atol=None, name="array"):
    """|actual - expected| <= atol + rtol * |expected|, showing the worst mismatches."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    d_rtol, d_atol = TOLERANCES[np.dtype(dtype or actual.dtype)]
    rtol = d_rtol if rtol is None else rtol
    atol = d_atol if atol is None else atol
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape} != {expected.shape}"
    diff = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
    bad = diff > atol + rtol * np.abs(expected.astype(np.float64))
    if bad.any():
        where = np.argwhere(bad)[:5]
        lines = [f"  at {tuple(int(i) for i in w)}: {actual[tuple(w)]!r} vs {expected[tuple(w)]!r}"
                 for w in where]
        raise AssertionError(
            f"{name}: {int(bad.sum())} of {bad.size} elements differ "
            f"(rtol={rtol}, atol={atol}); largest difference {diff.max():.3e}\n"
            + "\n".join(lines))


def numerical_gradient(f, x, eps=1e-6):
    """Central differences of the scalar function f() with respect to array x (changed in place, restored)."""
    grad = np.zeros_like(x, dtype=np.float64)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        plus = f()
        flat[i] = old - eps
        minus = f()
        flat[i] = old
        gflat[i] = (plus - minus) / (2 * eps)
    return grad


def relative_difference(a, b):
    a, b = np.ravel(a), np.ravel(b)
    return np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-300)


class Terminal(io.StringIO):
    """A stream that says it is a terminal (progress bars draw on it)."""

    def isatty(self):
        return True
