"""Save and load a model to one .npz file, atomically, without pickled code.

The file holds the architecture (a JSON string), the flat weights, BatchNorm's running
statistics, the optimizer (JSON hyperparameters and its state arrays), the schedule, the
step / epoch counters and the shuffling RNG's position, so that training resumed from
a checkpoint gives bit-for-bit the weights of an uninterrupted run.
"""
import json
import os

import numpy as np

from ._files import atomic_replace
from .optim import optimizer_from_config
from .schedules import schedule_from_config

FORMAT = "fastdnn-model-1"


def _text(value):
    return np.array(json.dumps(value))


def save(model, path):
    """Write ``model`` to ``path`` (an .npz file; no suffix is added).

    The file is written to a temporary file in the same directory and moved into place
    with os.replace, so a crash mid-save leaves any previous file intact (and the next
    save of the same path removes what the crashed one left; fastdnn._files).
    """
    model._require_built()
    path = os.fspath(path)
    params, running = model.parameters.host_state()
    arrays = {
        "format": _text(FORMAT),
        "architecture": _text(model.get_config()),
        "params": params,
        "running": running,
        "training": _text(model.training_state()),
        "schedule": _text(None if model.schedule is None else model.schedule.get_config()),
    }
    opt = model.optimizer
    if opt is not None:
        state = opt.state_dict()
        arrays["optimizer"] = _text({"config": state["config"], "t": state["t"],
                                     "has_state": state["state"] is not None})
        if state["state"] is not None:
            for name, arrs in state["state"].items():
                for i, a in enumerate(arrs):
                    arrays[f"optimizer_state/{name}/{i}"] = a
    with atomic_replace(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def load(path, *, backend=None):
    """Read a model written by ``save``; ``backend`` overrides the saved one."""
    from .model import model_from_config

    with np.load(os.fspath(path), allow_pickle=False) as data:
        if "format" not in data or json.loads(str(data["format"])) != FORMAT:
            raise ValueError(f"{path} is not a fastdnn model file")
        config = json.loads(str(data["architecture"]))
        if backend is not None:
            config["backend"] = backend
        model = model_from_config(config)
        if model.input_dim is None:
            model.build(config.get("input_dim") or config["layer_sizes"][0])
        model.parameters.set_host_state(data["params"], data["running"])
        model.set_training_state(json.loads(str(data["training"])))
        schedule = json.loads(str(data["schedule"]))
        model.schedule = None if schedule is None else schedule_from_config(schedule)
        if "optimizer" in data:
            info = json.loads(str(data["optimizer"]))
            opt = optimizer_from_config(info["config"])
            state = None
            if info["has_state"]:
                state = {name: [] for name in opt._state_names}
                for name in opt._state_names:
                    i = 0
                    while f"optimizer_state/{name}/{i}" in data:
                        state[name].append(data[f"optimizer_state/{name}/{i}"].copy())
                        i += 1
            opt.load_state_dict({"config": info["config"], "t": info["t"], "state": state})
            model.optimizer = opt
    return model
