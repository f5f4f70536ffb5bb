"""Whole-step properties of fastdnn.cpu: thread-count independence bit for bit, and a
steady-state training step that allocates no arrays."""
import contextlib
import tracemalloc

import numba
import numpy as np
import pytest

import fastdnn.cpu as C
from fastdnn.cpu import _blas, _common
from fastdnn.rng import dropout_key


class _Net:
    """Dense(relu, dropout) -> Dense + BatchNorm(tanh, dropout) -> Dense -> softmax, with
    every buffer preallocated and one flat parameter buffer updated by Adam."""

    def __init__(self, m=150, sizes=(13, 33, 17, 5), dtype=np.float32, seed=0):
        rng = np.random.default_rng(seed)
        self.m, self.sizes = m, sizes
        shapes = [(sizes[1], sizes[0]), (sizes[1],), (sizes[2], sizes[1]), (sizes[2],),
                  (sizes[2],), (sizes[3], sizes[2]), (sizes[3],)]
        total = sum(int(np.prod(s)) for s in shapes)
        self.flat = {k: np.zeros(total, dtype) for k in ("p", "g", "m", "v")}
        self.view = {k: self._views(a, shapes) for k, a in self.flat.items()}
        W1, _, W2, gamma, _, W3, _ = self.view["p"]
        for W in (W1, W2, W3):
            W[...] = rng.standard_normal(W.shape) / np.sqrt(W.shape[1])
        gamma[...] = 1
        self.rm, self.rv = np.zeros(sizes[2], dtype), np.ones(sizes[2], dtype)
        self.X = rng.standard_normal((m, sizes[0])).astype(dtype)
        self.y = rng.integers(0, sizes[3], m)
        e = lambda *s: np.empty((m,) + s, dtype)  # noqa: E731
        self.buf = dict(o1=e(sizes[1]), a1=e(sizes[1]), z2=e(sizes[2]), o2=e(sizes[2]),
                        a2=e(sizes[2]), xh=e(sizes[2]), inv=np.empty(sizes[2], dtype),
                        o3=e(sizes[3]), a3=e(sizes[3]), dz3=e(sizes[3]), d2=e(sizes[2]),
                        dz2=e(sizes[2]), d1=e(sizes[1]))

    @staticmethod
    def _views(a, shapes):
        out, k = [], 0
        for s in shapes:
            n = int(np.prod(s))
            out.append(a[k:k + n].reshape(s))
            k += n
        return out

    def step(self, t):
        W1, b1, W2, gamma, beta, W3, b3 = self.view["p"]
        gW1, gb1, gW2, ggamma, gbeta, gW3, gb3 = self.view["g"]
        B = self.buf
        k1, k2 = dropout_key(1, t, 1), dropout_key(1, t, 2)
        C.dense_forward(self.X, W1, b1, "relu", 0.8, k1, out=B["o1"], act_out=B["a1"])
        C.dense_forward(B["o1"], W2, None, out=B["z2"], act_out=B["z2"])
        C.batchnorm_activation_forward(B["z2"], gamma, beta, self.rm, self.rv, 0.9, 1e-5,
                                       True, "tanh", 0.7, k2, out=B["o2"], act_out=B["a2"],
                                       x_hat_out=B["xh"], inv_std_out=B["inv"])
        C.dense_forward(B["o2"], W3, b3, out=B["o3"], act_out=B["a3"])
        loss, _ = C.softmax_cross_entropy(B["a3"], self.y, dZ_out=B["dz3"])
        C.dense_backward(B["dz3"], B["o2"], W3, B["a3"], lambd=0.1, dX_out=B["d2"],
                         dW_out=gW3, db_out=gb3, dZ_out=B["dz3"])
        C.batchnorm_activation_backward(B["d2"], B["a2"], B["xh"], B["inv"], gamma, "tanh",
                                        0.7, k2, dZ_out=B["dz2"], dgamma_out=ggamma,
                                        dbeta_out=gbeta)
        C.dense_backward(B["dz2"], B["o1"], W2, B["z2"], with_bias=False, dX_out=B["d1"],
                         dW_out=gW2, dZ_out=B["dz2"])
        C.dense_backward(B["d1"], self.X, W1, B["a1"], "relu", 0.8, k1, need_dX=False,
                         dW_out=gW1, db_out=gb1, dZ_out=B["d1"])
        C.adam_update(self.flat["p"], self.flat["g"], self.flat["m"], self.flat["v"], t,
                      1e-3, weight_decay=1e-4)
        return loss


def _train(threads, steps=4, owned=False):
    old = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        net = _Net()
        with C.owned_threads() if owned else contextlib.nullcontext():
            losses = [net.step(t) for t in range(1, steps + 1)]
        return losses, net
    finally:
        numba.set_num_threads(old)


@pytest.mark.parametrize("owned", [False, True], ids=["numpy-blas", "owned-threads"])
def test_thread_count_does_not_change_a_bit(monkeypatch, owned):
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs NUMBA_NUM_THREADS >= 2")
    monkeypatch.setattr(_common, "SPIN_GUARD", False)  # really run on 2 threads
    monkeypatch.setattr(_blas, "MIN_BLOCK_COLUMNS", 4)  # products in several blocks
    monkeypatch.setattr(_blas, "MIN_BLOCK_WORK", 1)
    l1, n1 = _train(1, owned=owned)
    l2, n2 = _train(2, owned=owned)
    assert l1 == l2
    assert l1[-1] < l1[0] * 1.5 and np.isfinite(l1).all()
    for k in n1.flat:
        np.testing.assert_array_equal(n1.flat[k], n2.flat[k])
    for k in n1.buf:
        np.testing.assert_array_equal(n1.buf[k], n2.buf[k])
    np.testing.assert_array_equal(n1.rv, n2.rv)


@pytest.mark.parametrize("owned", [False, True], ids=["numpy-blas", "owned-threads"])
def test_steady_state_step_allocates_no_arrays(owned):
    net = _Net()
    with C.owned_threads() if owned else contextlib.nullcontext():
        for t in range(1, 4):  # warm up: compile, BLAS buffers
            net.step(t)
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            for t in range(4, 54):
                net.step(t)
            current, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak - base < 10_000, f"peak {peak - base} bytes above baseline"
    assert current - base < 2_000


def test_spin_guard_runs_kernels_on_one_thread_and_restores(monkeypatch):
    monkeypatch.setattr(_common, "SPIN_GUARD", True)
    before = numba.get_num_threads()
    seen = _common.launch(lambda: numba.get_num_threads())
    assert seen == 1 and numba.get_num_threads() == before
    monkeypatch.setattr(_common, "SPIN_GUARD", False)
    assert _common.launch(lambda: numba.get_num_threads()) == before


def test_spin_guard_decision():
    for settings, want in [({"forced": "1"}, True), ({"forced": "0"}, False),
                           ({"forced": "1", "timeout": "4"}, True),
                           ({"timeout": "4"}, False), ({"blas_threads": "1"}, False)]:
        given = dict(dict(forced="", timeout="", blas_threads=""), **settings)
        assert _common._openblas_spins(**given) is want, settings
