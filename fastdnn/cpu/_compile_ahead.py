"""A cold first training step compiles its backward kernels in a second process.

Numba compiles one function at a time in a process (a global lock), so the first training
step with an empty kernel cache is serial work: about 10 s of one core for an MLP with
BatchNorm, dropout and Adam. Here a helper process rebuilds the model from its config and
runs its backward pass and its optimizer update on a small zero batch (the model's own
code, so the kernels get the very signatures the model's step uses), which compiles them
into the shared on-disk cache while this process compiles the forward pass. The model
waits for the helper before its backward pass, whose kernels then load from the cache.

The helper runs only when the cache looks cold: a marker per kernel set (model
structure, dtype, optimizer, fastdnn's kernel sources and Numba's version) is written
next to the kernel cache after a helper succeeded. FASTDNN_COMPILE_AHEAD=0 turns it off;
with one core it is off. Any failure of the helper costs only the time waited: the
model then compiles the kernels itself.
"""
import hashlib
import json
import os
import subprocess
import sys

import numba
import numpy as np

# Seconds the model waits for the helper before compiling the backward pass itself.
WAIT_S = 120

_SOURCES = os.path.dirname(os.path.abspath(__file__))
_started = set()   # kernel sets this process has compiled or has had compiled


def start(model, optimizer):
    """A running helper for ``model``'s first step with ``optimizer``, or None when the
    kernel cache looks warm, the helper is off, or this process has started one for
    the same kernel set already."""
    if os.environ.get("FASTDNN_COMPILE_AHEAD", "1") == "0" or (os.cpu_count() or 1) < 2:
        return None
    try:
        job = {"model": model.get_config(), "optimizer": optimizer.get_config()}
        key = _kernel_set(job)
        marker = _marker(key)
    except Exception:  # noqa: BLE001 - e.g. a user's optimizer class without a config
        return None
    if key in _started or marker is None or os.path.exists(marker):
        return None
    _started.add(key)
    return _Helper(job, marker)


class _Helper:
    def __init__(self, job, marker):
        self.marker = marker
        package_root = os.path.dirname(os.path.dirname(_SOURCES))
        env = dict(os.environ, NUMBA_NUM_THREADS="1",
                   PYTHONPATH=os.pathsep.join(
                       [package_root] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "fastdnn.cpu._compile_ahead"], env=env,
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.process.stdin.write(json.dumps(job).encode())
            self.process.stdin.close()
        except OSError:
            self.process = None

    def wait(self):
        """Block until the helper is done (at most WAIT_S); mark the cache warm if it
        succeeded."""
        if self.process is None:
            return
        try:
            code = self.process.wait(WAIT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return
        if code == 0:
            try:
                with open(self.marker, "w") as f:
                    f.write("compiled by fastdnn.cpu._compile_ahead\n")
            except OSError:
                pass


def _kernel_set(job):
    """A digest of what decides which kernels a step compiles: the model's structure
    and dtype, the optimizer's kind, the kernel sources and the Numba version."""
    model = {k: v for k, v in job["model"].items() if k not in ("seed", "backend")}
    h = hashlib.sha256(json.dumps([model, job["optimizer"]["name"], numba.__version__],
                                  sort_keys=True, default=str).encode())
    for name in sorted(os.listdir(_SOURCES)):
        if name.endswith(".py"):
            h.update(name.encode() + str(os.stat(os.path.join(_SOURCES, name)).st_mtime_ns)
                     .encode())
    return h.hexdigest()[:20]


def _marker(key):
    """The marker's path in the directory Numba caches fastdnn.cpu's kernels in, or None
    where that cannot be found or written."""
    from .dense import _add_scaled
    cache = getattr(_add_scaled, "_cache", None)
    path = getattr(cache, "_cache_path", None)
    if path is None or not os.access(path, os.W_OK):
        return None
    return os.path.join(path, f"fastdnn-compiled-{key}.marker")


def _compile_backward(job):
    """The helper's work: the model's backward pass and optimizer update on zeros."""
    from ..model import model_from_config
    from ..optim import optimizer_from_config
    model = model_from_config(job["model"])
    model._require_built(np.zeros((1, model.input_dim)))
    ws = model._workspace(2)
    for arrays in [ws] + ws["blocks"]:
        for a in arrays.values():
            if isinstance(a, np.ndarray):
                a[...] = 0
    optimizer = optimizer_from_config(job["optimizer"])
    with model._threads():
        model._backward(ws)
        optimizer.step(model._flat, model._flat_grad, kernels=model._K)


if __name__ == "__main__":
    _compile_backward(json.loads(sys.stdin.read()))
