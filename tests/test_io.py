"""save / load: everything restored, resume bit-for-bit, atomic writes, no pickle."""
import os
import stat
import subprocess
import sys

import numpy as np
import pytest

import fastdnn
from fastdnn import MLP, Activation, BatchNorm, Dense, Dropout, Sequential


def blobs(n=50, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    return rng.standard_normal((3, 4))[y] * 2 + rng.standard_normal((n, 4)), y


def make(kind, backend="numpy"):
    if kind == "mlp":
        return MLP([4, 6, 5, 3], batchnorm=True, keep_prob=[0.8, 0.7], l2=0.01,
                   backend=backend, seed=3)
    return Sequential([Dense(6), BatchNorm(0.8), Activation("tanh"), Dropout(keep_prob=0.9),
                       Dense(3), Activation("softmax")], backend=backend, seed=3)


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
@pytest.mark.parametrize("kind", ["mlp", "sequential"])
@pytest.mark.parametrize("opt, schedule", [
    (lambda: fastdnn.Adam(0.01), lambda: fastdnn.schedules.Exponential(0.8)),
    (lambda: fastdnn.Nesterov(0.05), lambda: fastdnn.schedules.InverseTime(
        0.01, per="iteration")),
])
def test_resume_is_bit_for_bit(kind, backend, opt, schedule, tmp_path):
    X, y = blobs()
    full = make(kind, backend)
    full.fit(X, y, optimizer=opt(), schedule=schedule(), epochs=4, batch_size=16, verbose=0)
    half = make(kind, backend)
    half.fit(X, y, optimizer=opt(), schedule=schedule(), epochs=2, batch_size=16, verbose=0)
    path = tmp_path / "ckpt.npz"
    half.save(path)
    resumed = fastdnn.load(path)
    assert type(resumed) is type(half)
    resumed.fit(X, y, epochs=2, batch_size=16, verbose=0)
    for k, v in full.get_weights().items():
        assert np.array_equal(v, resumed.get_weights()[k]), k
    for k, v in full.get_batchnorm_stats().items():
        assert np.array_equal(v, resumed.get_batchnorm_stats()[k]), k
    assert resumed.step_ == full.step_ and resumed.epoch_ == full.epoch_
    assert resumed.optimizer.lr == full.optimizer.lr


def test_load_restores_predictions_and_untrained_models(tmp_path):
    X, y = blobs()
    m = make("mlp")
    m.save(tmp_path / "fresh.npz")            # no optimizer yet
    assert fastdnn.load(tmp_path / "fresh.npz").optimizer is None
    m.fit(X, y, epochs=2, batch_size=8, verbose=0)
    fastdnn.save(m, tmp_path / "m.npz")
    again = fastdnn.load(tmp_path / "m.npz", backend="numpy")
    assert np.array_equal(again.predict_proba(X), m.predict_proba(X))
    with np.load(tmp_path / "m.npz", allow_pickle=False) as data:   # no pickled objects
        assert "architecture" in data and data["params"].dtype == np.float32


def test_crash_mid_save_leaves_the_previous_file(tmp_path, monkeypatch):
    X, y = blobs()
    m = make("mlp")
    path = tmp_path / "m.npz"
    m.save(path)
    before = path.read_bytes()
    m.fit(X, y, epochs=1, batch_size=8, verbose=0)

    def crash(f, **arrays):
        f.write(b"partial")
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        m.save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.npz"]          # no temporary file left behind


def _dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_killed_saves_temporary_file_goes_with_the_next_save(tmp_path):
    """A save killed mid-write (SIGKILL, OOM) leaves its temporary file; the next save
    of the same path removes it, but never a live writer's."""
    m = make("mlp")
    path = tmp_path / "m.npz"
    dead = tmp_path / f".m.npz.{_dead_pid()}.0a1b2c3d4e5f.fastdnn-tmp"
    live = tmp_path / f".m.npz.{os.getppid()}.0a1b2c3d4e5f.fastdnn-tmp"
    other = tmp_path / f".n.npz.{_dead_pid()}.0a1b2c3d4e5f.fastdnn-tmp"
    for f in (dead, live, other):
        f.write_bytes(b"x" * 1000)
    m.save(path)
    assert not dead.exists() and live.exists() and other.exists()
    assert fastdnn.load(path).get_weights()["W1"].shape == m.get_weights()["W1"].shape


def test_saved_file_has_the_permissions_of_a_new_file(tmp_path):
    old = os.umask(0o022)
    try:
        make("mlp").save(tmp_path / "m.npz")
        np.savez(tmp_path / "plain.npz", a=np.zeros(1))
    finally:
        os.umask(old)
    mode = stat.S_IMODE(os.stat(tmp_path / "m.npz").st_mode)
    assert mode == stat.S_IMODE(os.stat(tmp_path / "plain.npz").st_mode) == 0o644


def test_not_a_model_file(tmp_path):
    np.savez(tmp_path / "x.npz", a=np.zeros(2))
    with pytest.raises(ValueError, match="not a fastdnn model"):
        fastdnn.load(tmp_path / "x.npz")
