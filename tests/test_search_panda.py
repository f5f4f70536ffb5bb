"""Panda: live curves and a hook that changes the learning rate or stops training."""
import io

import numpy as np

import fastdnn
from fastdnn.search.panda import Panda, reduce_lr_on_plateau


def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 5))
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    return X, y


def test_panda_records_curves_and_sets_lr_then_stops():
    X, y = data()
    seen = []

    def hook(model, epoch, logs, curves):
        seen.append(model.optimizer.lr)
        if epoch == 1:
            return {"lr": 1e-4}
        if epoch == 3:
            return "stop"
    out = io.StringIO()
    panda = Panda(hook, stream=out)
    model = fastdnn.MLP([5, 8, 2], backend="numpy", seed=0)
    hist = model.fit(X, y, optimizer=fastdnn.Adam(1e-2), epochs=10, batch_size=32,
                     validation_data=(X, y), callbacks=[panda], verbose=0)
    assert len(hist["loss"]) == 4 and panda.curves["epoch"] == [0, 1, 2, 3]
    assert panda.curves["val_accuracy"] == hist["val_accuracy"]
    assert seen == [1e-2, 1e-2, 1e-4, 1e-4] and hist["lr"][2] == 1e-4
    assert panda.events == ["epoch 2: lr -> 0.0001", "epoch 4: stop"]
    assert out.getvalue().count("[panda] epoch") == 4


def test_reduce_lr_on_plateau_hook():
    class Opt:
        lr = 1.0

    class Model:
        optimizer = Opt()
    hook = reduce_lr_on_plateau(factor=0.5, patience=1, stop_after=1)
    actions = [hook(Model, e, {"val_loss": v}, {}) for e, v in
               enumerate([1.0, 0.9, 0.95, 0.96, 0.97, 0.98])]
    assert actions[:3] == [None, None, None]
    assert actions[3] == {"lr": 0.5} and actions[5] == "stop"
