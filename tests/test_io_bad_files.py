"""load() checks every entry of a file before building anything (issue #15).

One row per kind of bad file: (name, a writer of the bad file, the error, a regex its
message must match). Every refusal is a ModelFileError whose message starts with
"cannot load '<path>': ". Then: a tiny file claiming a huge model fails at once without
allocating, damaged files never raise anything else, and every file that save writes
still loads.
"""
import io
import json
import re
import time
import tracemalloc
import zipfile

import numpy as np
import pytest

import fastdnn
from fastdnn.io import ModelFileError


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """The bytes of a file save wrote: a BatchNorm MLP trained one epoch with Adam."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((24, 4)), np.arange(24) % 3
    model = fastdnn.MLP([4, 6, 5, 3], batchnorm=True, backend="numpy", seed=3)
    model.fit(X, y, optimizer=fastdnn.Adam(0.01), schedule=fastdnn.schedules.Exponential(),
              epochs=1, batch_size=8, verbose=0)
    path = tmp_path_factory.mktemp("good") / "model.npz"
    model.save(path)
    return path.read_bytes()


def _arrays_of(data):
    with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
        return {key: arrays[key] for key in arrays}


def _text(value):
    return np.array(json.dumps(value))


# ---------------------------------------------------------------------- writers
def edited(change):
    """A writer of the good file's arrays after ``change(arrays)`` edits them."""
    def write(path, good):
        arrays = _arrays_of(good)
        change(arrays)
        with open(path, "wb") as f:
            np.savez(f, **arrays)
    return write


def set_entry(key, value):
    def change(arrays):
        if value is None:
            del arrays[key]
        else:
            arrays[key] = value(arrays[key]) if callable(value) else value
    return edited(change)


def set_field(key, field, value):
    """Set ``field`` of the JSON entry ``key`` (a "/"-separated path)."""
    def change(arrays):
        document = json.loads(str(arrays[key]))
        *outer, last = field.split("/")
        inner = document
        for name in outer:
            inner = inner[name]
        inner[last] = value
        arrays[key] = _text(document)
    return edited(change)


def raw_bytes(make):
    def write(path, good):
        path.write_bytes(make(good))
    return write


def cut_at(where):
    """The good file truncated at ``where(good)`` bytes."""
    return raw_bytes(lambda good: good[:where(good)])


def _data_offset(good, name):
    """Where entry ``name``'s bytes (its .npy header, then the array) start."""
    with zipfile.ZipFile(io.BytesIO(good)) as archive:
        info = archive.getinfo(name)
    name_length, extra_length = np.frombuffer(good[info.header_offset + 26:
                                                   info.header_offset + 30], "<u2")
    return info.header_offset + 30 + int(name_length) + int(extra_length)


def with_params(make):
    return set_entry("params", make)


def _lying_header(path, good):
    """'params' whose .npy header claims 10**9 values but which holds a few bytes."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False,
                                                  "shape": (10**9,)})
    arrays = _arrays_of(good)
    del arrays["params"]
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("params.npy", header.getvalue() + b"\0" * 64)


def _compressed(path, good):
    with open(path, "wb") as f:
        np.savez_compressed(f, **_arrays_of(good))


def _negative_variance(running):
    running = running.copy()
    running[-1] = -0.5
    return running


def _negative_second_moment(v):
    v = v.copy()
    v[3] = -1e-3
    return v


def as_sequential(use_bias, units=3):
    """The good file's MLP written as the Sequential of the same layout, its last Dense
    given ``use_bias`` and ``units``."""
    dense_bn_relu = [{"type": "Dense", "units": 6, "init": None, "use_bias": True},
                     {"type": "BatchNorm", "momentum": 0.9, "eps": 1e-5},
                     {"type": "Activation", "name": "relu"}]
    dense_bn_relu2 = [dict(dense_bn_relu[0], units=5)] + dense_bn_relu[1:]
    last = [{"type": "Dense", "units": units, "init": None, "use_bias": use_bias},
            {"type": "Activation", "name": "softmax"}]
    return set_entry("architecture", _text(
        {"class": "Sequential", "layers": dense_bn_relu + dense_bn_relu2 + last,
         "input_dim": 4, "init": "he", "l2": 0.0, "dtype": "float32", "backend": "numpy",
         "seed": 3}))


HUGE = set_field("architecture", "layer_sizes", [20000, 20000, 3])
DAMAGED = r"damaged or truncated \.npz archive"

_ROWS = [   # (name, writer, message); every one expects ModelFileError
    ("truncated in the first entry's header", cut_at(lambda g: 10), DAMAGED),
    ("truncated in the first .npy header",
     cut_at(lambda g: _data_offset(g, "format.npy") + 20), DAMAGED),
    ("truncated in the weights", cut_at(lambda g: _data_offset(g, "params.npy") + 160),
     DAMAGED),
    ("truncated in the directory", cut_at(lambda g: len(g) - 30), DAMAGED),
    ("truncated by one byte", cut_at(lambda g: len(g) - 1), DAMAGED),
    ("empty", raw_bytes(lambda g: b""), "the file is empty"),
    ("random bytes", raw_bytes(lambda g: np.random.default_rng(1).bytes(3000)),
     r"not an \.npz \(zip\) archive"),
    ("plain text", raw_bytes(lambda g: b"layer_sizes = [4, 6, 3]\n" * 20),
     r"not an \.npz \(zip\) archive"),
    (".npy, not .npz", raw_bytes(lambda g: _npy_bytes(np.zeros(10, np.float32))),
     r"not an \.npz \(zip\) archive"),
    ("another program's .npz", raw_bytes(lambda g: _npz_bytes(a=np.zeros(3))),
     r"not a fastdnn model file \(it has no 'format' entry\)"),
    ("another format", set_entry("format", _text("keras-3")),
     r"not a fastdnn model file \(format 'keras-3', expected 'fastdnn-model-1'\)"),
    ("future version", set_entry("format", _text("fastdnn-model-2")),
     r"written by a newer fastdnn \(format 'fastdnn-model-2'\); this fastdnn reads "
     r"'fastdnn-model-1' only"),
    ("format not JSON text", set_entry("format", np.zeros(3)),
     r"'format' must be JSON text"),
    ("missing architecture", set_entry("architecture", None), r"lacks \['architecture'\]"),
    ("missing training", set_entry("training", None), r"lacks \['training'\]"),
    ("unknown entry", edited(lambda arrays: arrays.update(extra=np.zeros(2))),
     r"unknown entry 'extra'"),
    ("bad JSON", set_entry("architecture", np.array('{"class": "MLP", "layer_sizes": [4,')),
     r"'architecture' is not valid JSON"),
    ("NaN in JSON", set_field("architecture", "l2", float("nan")),
     r"'architecture' is not valid JSON: NaN is not a value"),
    ("architecture not an object", set_entry("architecture", _text([4, 6, 3])),
     r"architecture must be a JSON object, got \[4, 6, 3\]"),
    ("architecture a float array", set_entry("architecture", np.zeros(4)),
     r"'architecture' must be JSON text \(a 0-d unicode array\), got float64 of "
     r"shape \(4,\)"),
    ("unknown model class", set_field("architecture", "class", "ResNet"),
     r"architecture class must be 'MLP' or 'Sequential', got 'ResNet'"),
    ("layer size a string", set_field("architecture", "layer_sizes", ["4", 6, 5, 3]),
     r"architecture: layer_sizes\[0\] must be an integer, got '4'"),
    ("layer size a float", set_field("architecture", "layer_sizes", [4, 6.5, 5, 3]),
     r"architecture: layer_sizes\[1\] must be an integer, got 6\.5"),
    ("layer size negative", set_field("architecture", "layer_sizes", [4, -6, 5, 3]),
     r"architecture: layer_sizes\[1\] must be in \[1, inf\], got -6"),
    ("layer sizes not a list", set_field("architecture", "layer_sizes", 6),
     r"architecture layer_sizes must be a list of at least 2 widths, got 6"),
    ("layer sizes huge", HUGE,
     r"'params' must have shape \(400100003,\) for the architecture \(its layer sizes "
     r"imply 400,100,003 values\), got \(94,\)"),
    ("batchnorm a string", set_field("architecture", "batchnorm", "no"),
     r"architecture batchnorm must be true or false, got 'no'"),
    ("use_bias a string", as_sequential("no"),
     r"architecture layers\[6\]: use_bias must be True or False, got 'no'"),
    ("Dense units zero", as_sequential(True, units=0),
     r"architecture layers\[6\]: units must be in \[1, inf\], got 0"),
    ("dtype float16", set_field("architecture", "dtype", "float16"),
     r"architecture dtype must be one of \['float32', 'float64'\], got 'float16'"),
    ("unknown activation", set_field("architecture", "activation", "swish"),
     r"architecture: activation must be one of .*, got 'swish'"),
    ("unknown architecture field", set_field("architecture", "depth", 3),
     r"architecture: .*unexpected keyword argument 'depth'"),
    ("weights of the wrong length", with_params(lambda p: p[:-1]),
     r"'params' must have shape \(94,\) .*got \(93,\)"),
    ("weights 2-D", with_params(lambda p: p.reshape(2, 47)),
     r"'params' must have shape \(94,\) .*got \(2, 47\)"),
    ("weights NaN", with_params(lambda p: np.where(np.arange(94) == 7, np.nan, p)
                                .astype(np.float32)),
     r"'params' holds NaN or inf \(first at index 7\)"),
    ("weights inf", with_params(lambda p: np.full_like(p, np.inf)),
     r"'params' holds NaN or inf \(first at index 0\)"),
    ("weights strings", with_params(lambda p: p.astype(str)),
     r"'params' must hold float32 values \(the architecture's dtype\), got <U"),
    ("weights float64 in a float32 model", with_params(lambda p: p.astype(np.float64)),
     r"'params' must hold float32 values .*got float64"),
    ("weights pickled objects", with_params(lambda p: p.astype(object)),
     r"'params' holds Python objects \(dtype object\), which load never unpickles"),
    ("array header claims more than is stored", _lying_header,
     r"'params' claims shape \(1000000000,\) of float32 \(4000000000 bytes\) but holds 64 "
     r"bytes"),
    ("compressed entries", _compressed, r"compressed or encrypted"),
    ("negative running variance", set_entry("running", _negative_variance),
     r"'running' holds a negative BatchNorm running variance \(-0\.5 at index 21\)"),
    ("running statistics of the wrong length", set_entry("running", lambda r: r[:5]),
     r"'running' must have shape \(22,\)"),
    ("step negative", set_field("training", "step", -5),
     r"training: step must be in \[0, 9223372036854775807\], got -5"),
    ("step not an integer", set_field("training", "step", 1.5),
     r"training: step must be an integer, got 1\.5"),
    ("epoch a string", set_field("training", "epoch", "3"),
     r"training: epoch must be an integer, got '3'"),
    ("step beyond int64", set_field("training", "step", 2**64),
     r"training: step must be in \[0, 9223372036854775807\]"),
    ("RNG of another generator", set_field("training", "rng/bit_generator", "MT19937"),
     r"training: state must be for a PCG64 RNG"),
    ("RNG state negative", set_field("training", "rng/state/inc", -1), r"training: "),
    ("RNG flag true for 1", set_field("training", "rng/has_uint32", True),
     r"training rng is not a state of PCG64"),
    ("RNG state a float", set_field("training", "rng/state/state", 1.5),
     r"training rng is not a state of PCG64"),
    ("training not an object", set_entry("training", _text([1, 1])),
     r"training must be a JSON object with step, epoch and rng, got \[1, 1\]"),
    ("schedule boundary not an integer", set_entry("schedule", _text(
        {"name": "Piecewise", "per": "epoch", "boundaries": [1.5], "values": [0.1, 0.01]})),
     r"schedule: boundaries\[0\] must be an integer, got 1\.5"),
    ("unknown schedule", set_field("schedule", "name", "Cosine"),
     r"schedule: schedule must be one of .*, got 'Cosine'"),
    ("schedule not an object", set_entry("schedule", _text("Exponential")),
     r"schedule must be a JSON object or null, got 'Exponential'"),
    ("unknown optimizer", set_field("optimizer", "config/name", "Adamax"),
     r"optimizer: optimizer must be an Optimizer or one of \[.*\], got 'adamax'"),
    ("optimizer name not a string", set_field("optimizer", "config/name", 3),
     r"optimizer: optimizer name must be a string such as 'adam', got 3"),
    ("optimizer lr negative", set_field("optimizer", "config/lr", -0.1),
     r"optimizer: lr must be in \[0, inf\), got -0\.1"),
    ("optimizer initial lr a string", set_field("optimizer", "config/initial_lr", "big"),
     r"optimizer: initial_lr must be a real number, got 'big'"),
    ("optimizer t negative", set_field("optimizer", "t", -1),
     r"optimizer: t must be in \[0, 9223372036854775807\], got -1"),
    ("optimizer state of the wrong length",
     set_entry("optimizer_state/m/0", lambda m: np.concatenate([m, m])),
     r"'optimizer_state/m/0' must have shape \(94,\) .*got \(188,\)"),
    ("optimizer state of integers", set_entry("optimizer_state/v/0",
                                              lambda v: v.astype(np.int32)),
     r"'optimizer_state/v/0' must hold float32 values .*got int32"),
    ("optimizer state NaN", set_entry("optimizer_state/m/0", lambda m: m * np.nan),
     r"'optimizer_state/m/0' holds NaN or inf \(first at index 0\)"),
    ("optimizer second moment negative", set_entry("optimizer_state/v/0",
                                                   _negative_second_moment),
     r"'optimizer_state/v/0' holds a negative mean of squared gradients \(.* at index 3\)"),
    ("optimizer state missing", set_entry("optimizer_state/v/0", None),
     r"Adam's state must be the entries \['optimizer_state/m/0', 'optimizer_state/v/0'\], "
     r"got \['optimizer_state/m/0'\]"),
    ("optimizer state without an optimizer", set_entry("optimizer", None),
     r"unknown entry 'optimizer_state/m/0'"),
    ("optimizer state for another optimizer", set_field("optimizer", "config",
                                                        {"name": "SGD", "lr": 0.1}),
     r"SGD's state must be the entries \[\], got \['optimizer_state/m/0', "
     r"'optimizer_state/v/0'\]"),
]


def _npy_bytes(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _npz_bytes(**arrays):
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


ROWS = [(name, write, ModelFileError, message) for name, write, message in _ROWS]


@pytest.mark.parametrize("name, write, error, message", ROWS, ids=[row[0] for row in ROWS])
def test_load_refuses_a_bad_file_naming_it_and_the_fault(name, write, error, message, good,
                                                         tmp_path):
    path = tmp_path / "model.npz"
    write(path, good)
    with pytest.raises(error) as caught:
        fastdnn.load(path)
    text = str(caught.value)
    assert text.startswith(f"cannot load {str(path)!r}: "), text
    assert re.search(message, text), f"{message!r} not in {text!r}"
    assert isinstance(caught.value, ValueError)


def test_the_good_file_loads(good, tmp_path):
    """(so that each row's fault is the one it names)"""
    path = tmp_path / "model.npz"
    path.write_bytes(good)
    model = fastdnn.load(path)
    assert model.n_params == 94 and model.optimizer.t == 3
    as_sequential(True)(path, good)   # (the layout the Sequential rows start from)
    assert fastdnn.load(path).n_params == 94


def test_a_tiny_file_claiming_a_huge_model_fails_at_once_without_allocating(good,
                                                                            tmp_path):
    """[20000, 20000, 3] asks for 400 M parameters: 6.3 GB and 21 s before the fix."""
    path = tmp_path / "huge.npz"
    HUGE(path, good)
    assert path.stat().st_size < 10_000
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(ModelFileError, match="imply 400,100,003 values"):
            fastdnn.load(path)
    finally:
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert elapsed < 1.0 and peak < 10e6, (elapsed, peak)


def test_a_damaged_file_raises_model_file_error_or_loads(good, tmp_path):
    """Any cut and any single changed byte: ModelFileError, or (where the byte is one
    nothing reads) a model; never another exception."""
    rng = np.random.default_rng(2)
    path = tmp_path / "model.npz"
    damaged = [good[:n] for n in range(0, len(good), 37)]
    for at in rng.integers(0, len(good), 150):
        changed = bytearray(good)
        changed[at] ^= int(rng.integers(1, 256))
        damaged.append(bytes(changed))
    refused = 0
    for data in damaged:
        path.write_bytes(data)
        try:
            fastdnn.load(path)
        except ModelFileError:
            refused += 1
    assert refused > len(damaged) // 2


def _trained(model, optimizer, schedule=None):
    rng = np.random.default_rng(5)
    X = rng.standard_normal((20, 4))
    y = np.arange(20) % model.blocks[-1].n_out
    model.fit(X, y, optimizer=optimizer, schedule=schedule, epochs=2, batch_size=8,
              verbose=0)
    return model


SAVED = {
    "untrained MLP": lambda: fastdnn.MLP([4, 5, 3], backend="numpy", seed=1),
    "MLP, SGD, no BatchNorm": lambda: _trained(
        fastdnn.MLP([4, 5, 2, 3], keep_prob=0.8, backend="numpy", seed=1),
        fastdnn.SGD(0.1)),
    "MLP float64, BatchNorm, RMSprop": lambda: _trained(
        fastdnn.MLP([4, 5, 3], batchnorm=True, dtype="float64", backend="numpy", seed=1),
        fastdnn.RMSprop(0.01), fastdnn.schedules.Piecewise([1], [0.01, 0.001])),
    "Sequential without biases, Momentum": lambda: _trained(fastdnn.Sequential(
        [fastdnn.Dense(5, use_bias=False), fastdnn.Activation("tanh"),
         fastdnn.Dense(3, use_bias=False), fastdnn.Activation("softmax")],
        input_dim=4, backend="numpy", seed=1), fastdnn.Momentum(0.1)),
    "Sequential, BatchNorm in the middle, AdamW": lambda: _trained(fastdnn.Sequential(
        [fastdnn.Dense(6), fastdnn.BatchNorm(0.8), fastdnn.Activation("relu"),
         fastdnn.Dense(5), fastdnn.Activation("sigmoid"), fastdnn.Dense(2),
         fastdnn.BatchNorm(), fastdnn.Activation("softmax")],
        input_dim=4, backend="numpy", seed=1), fastdnn.AdamW(0.01)),
}


@pytest.mark.parametrize("kind", list(SAVED))
def test_every_file_save_writes_loads_unchanged(kind, tmp_path):
    model = SAVED[kind]()
    model.save(tmp_path / "m.npz")
    loaded = fastdnn.load(tmp_path / "m.npz")
    assert loaded.get_config() == model.get_config()
    for ours, theirs in zip(model.parameters.host_state(), loaded.parameters.host_state()):
        assert ours.dtype == theirs.dtype and np.array_equal(ours, theirs)
    assert loaded.training_state() == model.training_state()
    if model.optimizer is None:
        assert loaded.optimizer is None
        return
    ours, theirs = model.optimizer.state_dict(), loaded.optimizer.state_dict()
    assert ours["config"] == theirs["config"] and ours["t"] == theirs["t"]
    for name, arrays in ours["state"].items():
        assert all(np.array_equal(a, b) for a, b in zip(arrays, theirs["state"][name]))
