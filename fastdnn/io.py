"""Save and load a model to one .npz file, atomically, without pickled code.

The file holds the architecture (a JSON string), the flat weights, BatchNorm's running
statistics, the optimizer (JSON hyperparameters and its state arrays), the schedule, the
step / epoch counters and the shuffling RNG's position, so that training resumed from
a checkpoint gives bit-for-bit the weights of an uninterrupted run.

``load`` trusts nothing in the file. It reads the .npy headers first (shapes and dtypes,
not the data), checks every entry (the format version; the JSON fields' types and ranges;
each array's dtype and size against what the architecture implies; values finite,
variances non-negative) and builds the model only then. An array's header must account
for exactly the bytes stored after it, uncompressed, so a file cannot make ``load``
allocate more than a small multiple of its own size: no cap on model size is needed.
Whatever is wrong raises ModelFileError (a ValueError) naming the file.
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
import zipfile
from typing import TYPE_CHECKING

import numpy as np

from . import config as _config
from ._files import atomic_replace
from ._validation import check_choice, check_int
from .backend import BACKENDS
from .engine.layout import block_size
from .layers import BatchNorm, Dense, layer_from_config
from .optim import optimizer_from_config
from .schedules import schedule_from_config

if TYPE_CHECKING:
    from .model import Sequential

FORMAT = "fastdnn-model-1"
#: Entries every file has; "optimizer" and "optimizer_state/<name>/0" are optional.
_REQUIRED = ("format", "architecture", "params", "running", "training", "schedule")
_MAX_COUNT = 2**63 - 1                  # step, epoch, t: the engines hold them in int64
_SQUARE_AVERAGES = ("v", "sq_avg")      # means of g^2: a negative one makes sqrt NaN
_NPY_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0,
                (2, 0): np.lib.format.read_array_header_2_0}


class ModelFileError(ValueError):
    """``load`` refused a file: the message names it and says what is wrong."""


class _Invalid(Exception):
    """What is wrong with the file being loaded; ``load`` adds the file's name."""


def _text(value):
    return np.array(json.dumps(value))


def save(model: Sequential, path: str | os.PathLike[str]) -> None:
    """Write ``model`` to ``path`` (an .npz file; no suffix is added).

    The file is written to a temporary file in the same directory and moved into place
    with os.replace, so a crash mid-save leaves any previous file intact (and the next
    save of the same path removes what the crashed one left; fastdnn._files).

    Parameters
    ----------
    model : Sequential or MLP
        A built model: its architecture, weights, BatchNorm statistics, optimizer,
        schedule and training state (counters, shuffling RNG) are saved.
    path : str or os.PathLike
        The file to write.
    """
    path = os.fspath(path)
    arrays = _arrays(model)
    with atomic_replace(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def dumps(model: Sequential) -> bytes:
    """The bytes ``save`` would write (what a pickled model holds).

    Parameters
    ----------
    model : Sequential or MLP
        A built model.

    Returns
    -------
    bytes
        An .npz archive.
    """
    buffer = io.BytesIO()
    np.savez(buffer, **_arrays(model))
    return buffer.getvalue()


def loads(data: bytes, *, backend: str | None = None) -> Sequential:
    """The model of ``dumps``' bytes, checked as ``load`` checks a file.

    Parameters
    ----------
    data : bytes
        What ``dumps`` returned.
    backend : str, optional
        Overrides the saved backend.

    Returns
    -------
    Sequential or MLP
        The model, as saved.

    Raises
    ------
    ModelFileError
        As ``load``.
    """
    return _load(io.BytesIO(data), len(data), "<bytes>", backend)


def _arrays(model):
    """The file's entries: {name: array}."""
    model._require_built()
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
    return arrays


def load(path: str | os.PathLike[str], *, backend: str | None = None) -> Sequential:
    """Read a model written by ``save``.

    Every entry of the file is checked before anything is built (see the module
    docstring); nothing in it is unpickled.

    Parameters
    ----------
    path : str or os.PathLike
        The file to read.
    backend : {"auto", "numpy", "cpu", "cuda"}, optional
        Overrides the saved backend.

    Returns
    -------
    Sequential or MLP
        The model, as saved (weights, optimizer, schedule and training state).

    Raises
    ------
    ModelFileError
        (a ValueError) when the file is not a fastdnn model file, is damaged or
        truncated, was written by a newer fastdnn, or holds a value a model cannot have.
    OSError
        when the file cannot be opened.
    """
    path = os.fspath(path)
    if backend is not None:
        check_choice("backend", backend, ("auto",) + BACKENDS)
    with open(path, "rb") as file:
        return _load(file, os.fstat(file.fileno()).st_size, path, backend)


def _load(file, size, path, backend):
    from .model import model_from_config

    try:
        parts = _read_checked(file, size)
        config = dict(parts["architecture"])
        if backend is not None:
            config["backend"] = backend
        with _fault("architecture"):   # (the fields the sizes did not need)
            model = model_from_config(config)
    except _Invalid as exc:
        raise ModelFileError(f"cannot load {path!r}: {exc}") from None
    except (zipfile.BadZipFile, EOFError) as exc:   # (a damage the checks did not foresee)
        raise ModelFileError(f"cannot load {path!r}: the archive is damaged "
                             f"({exc})") from None
    model.parameters.set_host_state(parts["params"], parts["running"])
    model.set_training_state(parts["training"])
    model.schedule = parts["schedule"]
    model.optimizer = parts["optimizer"]
    model._weights_given = True   # predictions are meant, even from a step-0 model
    return model


def _read_checked(file, size):
    """Every part of the model file ``file`` (``size`` bytes), checked: the architecture
    (a dict), the params and running arrays, the training state, and the schedule and
    optimizer objects (or None)."""
    archive = _open_archive(file, size)
    with archive:
        entries = _entries(archive, size)
        _check_format(archive, entries)
        missing = [key for key in _REQUIRED if key not in entries]
        if missing:
            raise _Invalid(f"it lacks {missing}: a fastdnn model file has {list(_REQUIRED)}"
                           " and optionally 'optimizer' with its state")
        for key in entries:
            if key not in _REQUIRED and key != "optimizer" and not (
                    key.startswith("optimizer_state/") and "optimizer" in entries):
                raise _Invalid(f"it holds an unknown entry {key!r}")
        architecture = _json(archive, entries, "architecture")
        n_params, n_bn = _implied_sizes(architecture)
        dtype = architecture.get("dtype", "float32")
        if dtype not in _config.DTYPES:
            raise _Invalid(f"architecture dtype must be one of {list(_config.DTYPES)}, "
                           f"got {dtype!r}")
        params = _float_array(archive, entries, "params", n_params, dtype)
        running = _float_array(archive, entries, "running", max(2 * n_bn, 1), dtype)
        if n_bn and (running[n_bn:] < 0).any():
            at = int(np.argmax(running[n_bn:] < 0))
            raise _Invalid(f"'running' holds a negative BatchNorm running variance "
                           f"({float(running[n_bn + at])} at index {n_bn + at})")
        parts = {"architecture": architecture, "params": params, "running": running,
                 "training": _training_state(_json(archive, entries, "training"))}
        schedule = _json(archive, entries, "schedule")
        if schedule is not None and not isinstance(schedule, dict):
            raise _Invalid(f"schedule must be a JSON object or null, got {schedule!r}")
        with _fault("schedule"):
            parts["schedule"] = None if schedule is None else schedule_from_config(schedule)
        parts["optimizer"] = None
        if "optimizer" in entries:
            parts["optimizer"] = _optimizer(archive, entries, n_params, dtype)
    return parts


# ---------------------------------------------------------------------- the archive
def _open_archive(file, size):
    if size == 0:
        raise _Invalid("the file is empty")
    try:
        return zipfile.ZipFile(file)
    except (zipfile.BadZipFile, EOFError, ValueError, NotImplementedError) as exc:
        file.seek(0)
        if file.read(4) == b"PK\x03\x04":
            raise _Invalid(f"it is a damaged or truncated .npz archive ({exc})") from None
        raise _Invalid("not a fastdnn model file: it is not an .npz (zip) "
                       "archive") from None


def _entries(archive, size):
    """{key: (ZipInfo, shape, dtype)} of every array in ``archive``, read from the .npy
    headers alone, each checked to be stored uncompressed and to fill its entry exactly."""
    entries = {}
    for info in archive.infolist():
        name = info.filename
        key = name[:-4]
        if not name.endswith(".npy") or key in entries:
            raise _Invalid(f"its entry {name!r} is not one array of a NumPy .npz file")
        if info.flag_bits & 1 or info.compress_type != zipfile.ZIP_STORED:
            raise _Invalid(f"its entry {name!r} is compressed or encrypted; fastdnn files "
                           "store arrays as they are (numpy.savez)")
        if not 0 <= info.header_offset <= size - info.compress_size:
            raise _Invalid(f"its entry {name!r} lies outside the file (damaged or "
                           "truncated?)")
        try:
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                if version not in _NPY_HEADERS:
                    raise ValueError(f".npy version {version} (fastdnn reads 1.0 and 2.0)")
                shape, _, dtype = _NPY_HEADERS[version](member)
                data_size = info.file_size - member.tell()
        except (ValueError, NotImplementedError, zipfile.BadZipFile, EOFError) as exc:
            raise _Invalid(f"its entry {name!r} is damaged or not a NumPy array "
                           f"({exc})") from None
        if dtype.hasobject:
            raise _Invalid(f"{key!r} holds Python objects (dtype {dtype}), which load "
                           "never unpickles")
        claimed = math.prod(shape) * dtype.itemsize
        if claimed != data_size:
            raise _Invalid(f"{key!r} claims shape {shape} of {dtype} ({claimed} bytes) "
                           f"but holds {data_size} bytes")
        entries[key] = info, shape, dtype
    return entries


def _read(archive, entries, key):
    """The array ``key``, its header already checked by ``_entries``."""
    try:
        with archive.open(entries[key][0]) as member:
            return np.lib.format.read_array(member, allow_pickle=False)
    except (ValueError, NotImplementedError, zipfile.BadZipFile, EOFError) as exc:
        raise _Invalid(f"{key!r} is damaged ({exc})") from None


def _json(archive, entries, key):
    _, shape, dtype = entries[key]
    if dtype.kind != "U" or shape != ():
        raise _Invalid(f"{key!r} must be JSON text (a 0-d unicode array), got {dtype} "
                       f"of shape {shape}")
    try:
        return json.loads(str(_read(archive, entries, key)), parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise _Invalid(f"{key!r} is not valid JSON: {exc}") from None


def _no_constant(name):
    raise ValueError(f"{name} is not a value any field may have")


def _float_array(archive, entries, key, length, dtype):
    """The 1-D array ``key`` of ``length`` finite values of ``dtype``, read only once
    its header says so."""
    _, shape, stored = entries[key]
    if stored != np.dtype(dtype):
        raise _Invalid(f"{key!r} must hold {dtype} values (the architecture's dtype), "
                       f"got {stored}")
    if shape != (length,):
        raise _Invalid(f"{key!r} must have shape ({length},) for the architecture "
                       f"(its layer sizes imply {length:,} values), got {shape}")
    values = _read(archive, entries, key)
    if not np.isfinite(values).all():
        at = int(np.argmax(~np.isfinite(values)))
        raise _Invalid(f"{key!r} holds NaN or inf (first at index {at})")
    return values


def _check_format(archive, entries):
    if "format" not in entries:
        raise _Invalid("not a fastdnn model file (it has no 'format' entry)")
    found = _json(archive, entries, "format")
    if found == FORMAT:
        return
    newer = isinstance(found, str) and re.fullmatch(r"fastdnn-model-(\d{1,9})", found)
    if newer and int(newer[1]) > 1:
        raise _Invalid(f"it was written by a newer fastdnn (format {found!r}); this "
                       f"fastdnn reads {FORMAT!r} only: upgrade fastdnn to load it")
    raise _Invalid(f"not a fastdnn model file (format {found!r}, expected {FORMAT!r})")


@contextlib.contextmanager
def _fault(field):
    """Report a check that fails on the file's ``field`` (a constructor's TypeError or
    ValueError) as a fault of the file."""
    try:
        yield
    except KeyError as exc:
        raise _Invalid(f"{field} lacks {exc}") from None
    except (TypeError, ValueError, OverflowError) as exc:
        raise _Invalid(f"{field}: {exc}") from None


# ---------------------------------------------------------------------- the fields
def _implied_sizes(architecture):
    """(number of parameters, number of BatchNorm units) that ``architecture`` implies,
    from its widths alone, so that the stored arrays are checked before anything is
    allocated. The layout is fastdnn.engine.layout.Parameters': per dense block W
    (n_out, n_in), b (n_out,) when it has a bias, gamma and beta (n_out,) when BatchNorm
    follows it (and then no bias)."""
    if not isinstance(architecture, dict):
        raise _Invalid(f"architecture must be a JSON object, got {architecture!r:.80}")
    kind = architecture.get("class")
    if kind == "MLP":
        sizes = architecture.get("layer_sizes")
        if not isinstance(sizes, list) or len(sizes) < 2:
            raise _Invalid(f"architecture layer_sizes must be a list of at least 2 "
                           f"widths, got {sizes!r:.80}")
        with _fault("architecture"):
            sizes = [check_int(f"layer_sizes[{i}]", s, 1) for i, s in enumerate(sizes)]
        batchnorm = architecture.get("batchnorm", False)
        if not isinstance(batchnorm, bool):
            raise _Invalid(f"architecture batchnorm must be true or false, got "
                           f"{batchnorm!r:.80}")
        n_in = sizes[0]
        blocks = [[w, not batchnorm, batchnorm] for w in sizes[1:-1]]
        blocks.append([sizes[-1], True, False])
    elif kind == "Sequential":
        with _fault("architecture"):
            n_in = check_int("input_dim", architecture.get("input_dim"), 1)
        layers = architecture.get("layers")
        if not isinstance(layers, list):
            raise _Invalid(f"architecture layers must be a list, got {layers!r:.80}")
        blocks = []   # [n_out, bias, batchnorm]
        for i, layer_config in enumerate(layers):
            with _fault(f"architecture layers[{i}]"):
                layer = layer_from_config(layer_config)
            if isinstance(layer, Dense):
                blocks.append([layer.units, layer.use_bias, False])
            elif isinstance(layer, BatchNorm) and blocks:
                blocks[-1][1:] = [False, True]
    else:
        raise _Invalid(f"architecture class must be 'MLP' or 'Sequential', got "
                       f"{kind!r:.80}")
    n_params = n_bn = 0
    for n_out, bias, batchnorm in blocks:
        n_params += block_size(n_in, n_out, bias, batchnorm)
        n_bn += n_out * batchnorm
        n_in = n_out
    return n_params, n_bn


def _training_state(state):
    """The step and epoch counters and the shuffling RNG's state, checked."""
    if not isinstance(state, dict) or set(state) != {"step", "epoch", "rng"}:
        raise _Invalid(f"training must be a JSON object with step, epoch and rng, got "
                       f"{state!r:.80}")
    with _fault("training"):
        check_int("step", state["step"], 0, _MAX_COUNT)
        check_int("epoch", state["epoch"], 0, _MAX_COUNT)
        # the model's kind of generator (default_rng's) takes it, or says why not
        probe = np.random.default_rng(0).bit_generator
        probe.state = state["rng"]
    # (NumPy casts some values silently: 1.5 to 1, true to 1)
    if json.dumps(probe.state, sort_keys=True) != json.dumps(state["rng"], sort_keys=True):
        raise _Invalid(f"training rng is not a state of {type(probe).__name__}, got "
                       f"{state['rng']!r:.200}")
    return state


def _optimizer(archive, entries, n_params, dtype):
    """The optimizer with its counter and state arrays, each checked."""
    info = _json(archive, entries, "optimizer")
    if not isinstance(info, dict) or set(info) != {"config", "t", "has_state"}:
        raise _Invalid(f"optimizer must be a JSON object with config, t and has_state, "
                       f"got {info!r:.80}")
    if not isinstance(info["config"], dict):
        raise _Invalid(f"optimizer config must be a JSON object, got "
                       f"{info['config']!r:.80}")
    with _fault("optimizer"):
        opt = optimizer_from_config(info["config"])
        check_int("t", info["t"], 0, _MAX_COUNT)
    has_state = info["has_state"]
    if not isinstance(has_state, bool):
        raise _Invalid(f"optimizer has_state must be true or false, got {has_state!r:.80}")
    expected = [f"optimizer_state/{n}/0" for n in opt._state_names] if has_state else []
    stored = sorted(key for key in entries if key.startswith("optimizer_state/"))
    if stored != sorted(expected):
        raise _Invalid(f"{type(opt).__name__}'s state must be the entries {expected}, "
                       f"got {stored}")
    state = None
    if has_state:
        state = {}
        for name, key in zip(opt._state_names, expected):
            values = _float_array(archive, entries, key, n_params, dtype)
            if name in _SQUARE_AVERAGES and (values < 0).any():
                at = int(np.argmax(values < 0))
                raise _Invalid(f"{key!r} holds a negative mean of squared gradients "
                               f"({float(values[at])} at index {at})")
            state[name] = [values]
    with _fault("optimizer"):
        opt.load_state_dict({"config": info["config"], "t": info["t"], "state": state})
    return opt
