"""The model on backend="cuda" (device-resident engine) against the same model on
backend="numpy" (and "cpu"), under the CUDA simulator.

Tiny shapes (the simulator runs every thread in Python): 13 examples of 4 features,
batches of 5 (a smaller last batch), 8 threads per block, at most 2 blocks, 3-row
reduction chunks and 8 L2 lanes, so grid-stride loops and multi-chunk sums all run.
"""
import numpy as np
import pytest
from numba import cuda
from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray

import fastdnn
from fastdnn import config
from fastdnn.optim import get_optimizer
from fastdnn.cuda import _device, engine, is_device_array
from fastdnn.layers import Activation, BatchNorm, Dense, Dropout
from helpers import assert_close

N, NX = 13, 4


@pytest.fixture(autouse=True)
def small_launches(monkeypatch):
    monkeypatch.setattr(config, "THREADS_PER_BLOCK", 8)
    monkeypatch.setattr(config, "REDUCTION_CHUNK", 3)
    monkeypatch.setattr(_device, "MAX_BLOCKS", 2)
    monkeypatch.setattr(engine, "L2_LANES", 8)
    monkeypatch.setattr(engine, "L2_FINAL", 3)


@pytest.fixture
def data():
    rng = np.random.default_rng(7)
    X = rng.standard_normal((N, NX))
    y = rng.integers(0, 3, N)
    return X, y


def _mlp(backend, dtype="float64", **kw):
    kw = {"batchnorm": True, "keep_prob": 0.75, "l2": 0.05, **kw}
    return fastdnn.MLP([NX, 3, 3], dtype=dtype, backend=backend, seed=3, **kw)


def _sequential(backend, dtype="float64", output="sigmoid", l2=0.0):
    layers = [Dense(5), BatchNorm(momentum=0.8), Activation("tanh"), Dropout(keep_prob=0.7),
              Dense(3), Activation("relu"), Dense(2)]
    if output != "identity":
        layers.append(Activation(output))
    return fastdnn.Sequential(layers, input_dim=NX, l2=l2, dtype=dtype, backend=backend,
                              seed=5)


def _compare(a, b, dtype, what):
    for (name, x), y in zip(a.items(), b.values()):
        assert isinstance(y, np.ndarray) and y.dtype == np.dtype(dtype), name
        assert_close(y, x, dtype=dtype, name=f"{what} {name}")


def _check_same(ref, fast, hist_ref, hist_fast, dtype):
    _compare(ref.get_weights(), fast.get_weights(), dtype, "param")
    _compare(ref.get_batchnorm_stats(), fast.get_batchnorm_stats(), dtype, "running")
    for key in hist_ref.history:
        if key != "epoch_time":
            assert_close(np.array(hist_fast.history[key]), np.array(hist_ref.history[key]),
                         dtype=dtype, name=key)
    assert ref.step_ == fast.step_


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_mlp_fit_and_train_step_match_numpy(data, dtype):
    X, y = data
    ref, cpu, fast = _mlp("numpy", dtype), _mlp("cpu", dtype), _mlp("cuda", dtype)
    hists = [m.fit(X, y, optimizer=fastdnn.Adam(lr=0.02), epochs=2, batch_size=5,
                   verbose=0) for m in (ref, cpu, fast)]
    _check_same(ref, fast, hists[0], hists[2], dtype)
    _check_same(cpu, fast, hists[1], hists[2], dtype)
    losses = [m.train_step(X[:6], y[:6], None) for m in (ref, cpu, fast)]
    assert isinstance(losses[2], float)
    assert_close(losses[2], losses[0], dtype=dtype, name="train_step loss")
    assert_close(losses[2], losses[1], dtype=dtype, name="train_step loss (cpu)")
    _compare(ref.get_weights(), fast.get_weights(), dtype, "param after train_step")
    _compare(cpu.get_weights(), fast.get_weights(), dtype, "param after train_step (cpu)")
    proba = [m.predict_proba(X) for m in (ref, fast)]
    assert_close(proba[1], proba[0], dtype=dtype, name="predict_proba")
    pred = fast.predict(X)
    assert isinstance(pred, np.ndarray) and pred.shape == (N,)
    np.testing.assert_array_equal(pred, ref.predict(X))
    ev = [m.evaluate(X, y) for m in (ref, fast)]
    assert_close(ev[1]["loss"], ev[0]["loss"], dtype=dtype, name="evaluate loss")
    assert ev[1]["accuracy"] == ev[0]["accuracy"]


@pytest.mark.parametrize("output,opt", [("sigmoid", "momentum"), ("identity", "sgd"),
                                        ("exp", "adam")])
def test_sequential_sigmoid_and_regression_match_numpy(data, output, opt):
    X, _ = data
    rng = np.random.default_rng(1)
    y = {"sigmoid": (rng.random((N, 2)) > 0.5).astype(float),
         "identity": rng.standard_normal((N, 2)),
         "exp": rng.poisson(1.0, (N, 2)).astype(float)}[output]
    ref, fast = _sequential("numpy", output=output, l2=0.1), \
        _sequential("cuda", output=output, l2=0.1)
    hists = [m.fit(X, y, optimizer=get_optimizer(opt, lr=0.05), epochs=1,
                   batch_size=6, verbose=0) for m in (ref, fast)]
    _check_same(ref, fast, *hists, "float64")
    got = [m.loss_and_grads(X[:5], y[:5]) for m in (ref, fast)]
    assert_close(got[1][0], got[0][0], dtype=np.float64, name="loss")
    _compare(got[0][1], got[1][1], "float64", "grad")


@pytest.mark.parametrize("resident", [True, False])
def test_weighted_fit_matches_numpy(data, resident, monkeypatch):
    X, y = data
    w = np.random.default_rng(3).random(len(X)) * 2
    if not resident:   # the batches staged through the host
        monkeypatch.setattr(config, "CUDA_DATA_FRACTION", 0.0)
    ref, fast = _mlp("numpy"), _mlp("cuda")
    hists = [m.fit(X, y, optimizer=get_optimizer("adam", lr=0.05), epochs=2, batch_size=6,
                   verbose=0, sample_weight=w) for m in (ref, fast)]
    _check_same(ref, fast, *hists, "float64")
    got = [m.loss_and_grads(X[:5], y[:5], sample_weight=w[:5]) for m in (ref, fast)]
    assert_close(got[1][0], got[0][0], dtype=np.float64, name="loss")
    _compare(got[0][1], got[1][1], "float64", "grad")


def test_a_fit_never_returns_weights_that_are_not_finite(data):
    """The last update of the epoch makes weights that are not finite: the engine
    folds that into the epoch's loss (read once) and the model goes back (#15)."""
    X, y = data
    m = _mlp("cuda", dtype="float32", batchnorm=False, keep_prob=1.0, l2=0.0)
    m.fit(X, y, epochs=1, batch_size=6, verbose=0)
    before = m.get_weights()
    with pytest.raises(FloatingPointError, match=r"epoch 1 of this fit \(the model's "
                                                 r"epoch 2\).*back to its state before "
                                                 "that epoch"):
        with np.errstate(all="ignore"):
            m.fit(X * 100, y, optimizer=get_optimizer("sgd", lr=1e45), epochs=1,
                  batch_size=len(X), verbose=0)
    for k, v in before.items():
        np.testing.assert_array_equal(m.get_weights()[k], v, err_msg=k)


def test_engine_arrays_stay_on_the_device(data):
    X, y = data
    model = _mlp("cuda")
    model.fit(X, y, epochs=1, batch_size=5, verbose=0)
    p = model.parameters
    assert is_device_array(p.flat) and is_device_array(p.grad)
    assert is_device_array(p.running)
    for views in (p.p, p.g, p.rm, p.rv):
        assert views and all(is_device_array(v) for v in views.values())
    assert all(is_device_array(a) for arrs in model.optimizer.state.values() for a in arrs)
    workspaces = [ws for stack in model._engine._workspaces._free.values() for ws in stack]
    assert workspaces
    for ws in workspaces:
        arrays = [ws["X"], ws["Y"], ws["dout"]] + [a for b in ws["blocks"]
                                                   for a in b.values() if a is not None]
        assert all(is_device_array(a) for a in arrays)
    state = model.optimizer.state_dict()["state"]
    assert all(isinstance(a, np.ndarray) for arrs in state.values() for a in arrs)


class _Transfers:
    """Counts device-to-host and host-to-device copies (sizes in elements)."""

    def __init__(self, monkeypatch):
        self.out, self.into = [], []
        to_host, to_dev = FakeCUDAArray.copy_to_host, FakeCUDAArray.copy_to_device
        upload = cuda.to_device
        rec = self

        def copy_to_host(self, *a, **k):
            rec.out.append(self.size)
            return to_host(self, *a, **k)

        def copy_to_device(self, ary, *a, **k):
            if isinstance(ary, np.ndarray):
                rec.into.append(ary.size)
            return to_dev(self, ary, *a, **k)

        def to_device(ary, *a, **k):
            rec.into.append(np.asarray(ary).size)
            return upload(ary, *a, **k)

        monkeypatch.setattr(FakeCUDAArray, "copy_to_host", copy_to_host)
        monkeypatch.setattr(FakeCUDAArray, "copy_to_device", copy_to_device)
        monkeypatch.setattr(cuda, "to_device", to_device)

        # the simulator's matrix product (no CuPy) reads host copies: make it use the
        # arrays in place, as cuBLAS does on a GPU, so only the engine's copies count
        def gemm(A, B, out, transA=False, transB=False, alpha=1.0, beta=0.0):
            a, b = A._ary.T if transA else A._ary, B._ary.T if transB else B._ary
            out._ary[...] = alpha * (a @ b) + (beta * out._ary if beta else 0)
            return out

        monkeypatch.setattr(_device, "gemm", gemm)

    def clear(self):
        self.out.clear()
        self.into.clear()


def test_fit_moves_data_once_and_reads_the_loss_once_per_epoch(data, monkeypatch):
    X, y = data
    model = _mlp("cuda")
    model.train_step(X[:5], y[:5], "adam")   # allocations and optimizer state first
    t = _Transfers(monkeypatch)
    epochs = 2
    model.fit(X, y, epochs=epochs, batch_size=3, verbose=0)   # 5 steps per epoch
    assert model.step_ == 1 + epochs * 5
    # per epoch: the summed loss and the right-prediction count, one element each
    assert t.out == [1, 1] * epochs
    # the data once (X then one-hot Y), then the epoch's order once per epoch
    assert t.into == [N * NX, N * 3] + [N] * epochs


def test_train_step_copies_no_parameters(data, monkeypatch):
    X, y = data
    model = _mlp("cuda")
    opt = fastdnn.Adam()
    model.train_step(X[:5], y[:5], opt)
    t = _Transfers(monkeypatch)
    for _ in range(3):
        model.train_step(X[:5], y[:5], opt)
    assert t.out == [1] * 3                     # the returned loss, only
    assert t.into == [5 * NX, 5 * 3] * 3        # the batch in, only
    assert max(t.out + t.into) < model.n_params


def test_batches_copied_once_when_the_data_does_not_fit(data, monkeypatch):
    X, y = data
    resident, streamed = _mlp("cuda"), _mlp("cuda")
    resident.fit(X, y, epochs=1, batch_size=5, verbose=0)
    monkeypatch.setattr(engine, "_free_bytes", lambda: 0)
    t = _Transfers(monkeypatch)
    streamed.fit(X, y, epochs=1, batch_size=5, verbose=0)
    assert t.into == [5 * NX, 5 * 3, 5 * NX, 5 * 3, 3 * NX, 3 * 3]
    for name, value in resident.get_weights().items():
        np.testing.assert_array_equal(streamed.get_weights()[name], value)


def test_save_load_set_params_and_snapshot(data, tmp_path):
    X, y = data
    model = _mlp("cuda")
    model.fit(X, y, epochs=1, batch_size=5, verbose=0)
    path = tmp_path / "m.npz"
    model.save(path)
    back = fastdnn.load(path)
    assert back.backend == "cuda" and is_device_array(back.parameters.flat)
    _compare(model.get_weights(), back.get_weights(), "float64", "loaded")
    _compare(model.get_batchnorm_stats(), back.get_batchnorm_stats(), "float64", "loaded")
    # resuming: the host state restored by load moves to the device on the next step
    for m in (model, back):
        m.train_step(X[:4], y[:4], None)
    assert all(is_device_array(a) for arrs in back.optimizer.state.values() for a in arrs)
    _compare(model.get_weights(), back.get_weights(), "float64", "resumed")
    on_host = fastdnn.load(path, backend="numpy")
    assert isinstance(on_host.parameters.flat, np.ndarray)
    # set_params / set_batchnorm_stats from NumPy, snapshot and restore on the device
    snap = model.parameters.snapshot()
    assert all(is_device_array(a) for a in snap)
    before = model.get_weights()
    model.set_weights({"W1": np.ones((3, NX)), "beta1": np.arange(3.0)})
    model.set_batchnorm_stats({"running_var1": np.full(3, 2.0)})
    assert np.all(model.get_weights()["W1"] == 1)
    assert np.all(model.get_batchnorm_stats()["running_var1"] == 2)
    model.parameters.restore(snap)
    _compare(before, model.get_weights(), "float64", "restored")


def test_divergence_is_caught_per_epoch(data):
    X, y = data
    model = _mlp("cuda", batchnorm=False, keep_prob=1.0)
    # set_weights refuses NaN: write it into the weights' buffer as divergence would
    params = model.parameters
    params.arrays.set(params.p["W1"], np.full((3, NX), np.nan))
    with pytest.raises(FloatingPointError, match="epoch 1"):
        model.fit(X, y, epochs=2, batch_size=5, verbose=0)


@pytest.mark.parametrize("name", ["adam", "momentum"])
def test_optimizer_objects_step_device_arrays(name):
    rng = np.random.default_rng(2)
    p, g = rng.standard_normal(7), rng.standard_normal(7)
    host, dev_opt = get_optimizer(name, lr=0.1), get_optimizer(name, lr=0.1)
    pd, gd = cuda.to_device(p), cuda.to_device(g)
    import fastdnn.cuda as fc
    for _ in range(2):
        host.step(p, g)
        dev_opt.step(pd, gd, kernels=fc)
    assert all(is_device_array(a) for arrs in dev_opt.state.values() for a in arrs)
    assert_close(pd.copy_to_host(), p, dtype=np.float64, name="param")
    for n, arrs in dev_opt.state_dict()["state"].items():
        assert isinstance(arrs[0], np.ndarray)
        assert_close(arrs[0], host.state[n][0], dtype=np.float64, name=n)


def test_steady_state_steps_allocate_no_device_memory(data, monkeypatch):
    X, y = data
    model = _mlp("cuda")
    opt = fastdnn.Adam()
    model.train_step(X[:5], y[:5], opt)      # workspaces, state and scratch buffers
    calls = []
    allocate = cuda.device_array

    def device_array(*a, **k):
        calls.append(a)
        return allocate(*a, **k)

    monkeypatch.setattr(cuda, "device_array", device_array)
    for _ in range(2):
        model.train_step(X[:5], y[:5], opt)
    assert calls == []
