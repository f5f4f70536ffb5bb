"""Device-resident arrays for the model engine (fastdnn.model on backend="cuda").

n = examples, m = batch size, n_x = input width, k = outputs, P = parameters.

The model asks its kernel module for ``ENGINE`` (fastdnn.model uses a host twin when the
module has none): an object that allocates, fills and reads the engine's arrays, moves
the training data, computes the batch loss and keeps the epoch's totals. This one keeps
everything on the GPU:

- flat parameters (P,), gradients (P,), optimizer state and BatchNorm running statistics
  are numba device arrays; per-layer views are slices of them (no copies);
- the training set (n, n_x) and its targets (n, k) go to the device once per ``fit``
  when they take at most ``config.CUDA_DATA_FRACTION`` of the free device memory; each
  shuffled batch is then gathered on the device from the epoch's order (uploaded once
  per epoch). Otherwise each batch is gathered on the host and copied once;
- the batch loss (L2 term included) stays a (1,) float64 device array; the epoch's
  summed loss and correct-prediction count live in device buffers and are read once
  per epoch.

Only this module and fastdnn.cuda know the arrays are numba's: porting the backend off
numba-cuda means rewriting this file and the kernels, not the model.
"""
import numpy as np
from numba import cuda

from .. import config
from ..formulas import augment_draws, augment_noise, augment_source
from ..engine.sparse import CsrRows
from ..rng import GEOMETRY, NOISE, augment_key
from . import _device as dev
from .losses import (mean_squared_error_on_device, poisson_deviance_on_device,
                     sigmoid_cross_entropy_on_device, softmax_cross_entropy_on_device,
                     weighted_loss)

# The L2 sum in three order-fixed stages: L2_LANES lanes per weight matrix each sum
# every L2_LANES-th square (coalesced), L2_FINAL threads each sum every L2_FINAL-th lane
# total, and one thread adds those. Fixed counts: the sum never depends on the launch
# geometry.
L2_LANES = 1024
L2_FINAL = 32

_LOSSES = {"softmax": (softmax_cross_entropy_on_device, "dZ_out"),
           "sigmoid": (sigmoid_cross_entropy_on_device, "dZ_out"),
           "identity": (mean_squared_error_on_device, "dA_out"),
           "exp": (poisson_deviance_on_device, "dZ_out")}
_KIND = {"softmax": 0, "sigmoid": 1, "identity": 2, "exp": 3}


# ----------------------------------------------------------------------------- kernels

@cuda.jit
def _gather_rows(src, order, first, out):
    """out[i, :] = src[order[first + i], :]; grid-stride over the m * cols elements."""
    m, n = out.shape
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for t in range(start, m * n, stride):
        i = t // n
        j = t - i * n
        out[i, j] = src[order[first + i], j]


@cuda.jit
def _augment_rows(src, key_geometry, key_noise, height, width, channels, flip, shift,
                  scale, out):
    """out = the augmented rows of the batch src (m, n): each image flipped and shifted
    (zeros shifted in), plus noise when scale > 0 (fastdnn.formulas' augment_*, as the
    compiled gather); grid-stride over the m * n elements."""
    m, n = out.shape
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for t in range(start, m * n, stride):
        i = t // n
        e = t - i * n
        pixel = e // channels
        y = pixel // width
        draws = augment_draws(key_geometry, i, flip, shift)
        p = augment_source(y, pixel - y * width, height, width, draws)
        if p < 0:
            out[i, e] = 0
        else:
            out[i, e] = src[i, p * channels + e - pixel * channels]
        if scale > 0:
            out[i, e] = out[i, e] + augment_noise(key_noise, np.uint64(t), scale)


@cuda.jit
def _sumsq_lanes(x, lanes, partial, offset):
    """partial[offset + l] = sum of x[i]^2 over i = l, l + lanes, ... (float64)."""
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    n = x.shape[0]
    for lane in range(start, lanes, stride):
        s = 0.0
        for i in range(lane, n, lanes):
            v = x[i] + 0.0    # float64
            s += v * v
        partial[offset + lane] = s


@cuda.jit
def _sum_lanes(partial, final):
    """final[f] = sum of partial[i] over i = f, f + len(final), ... in order."""
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    nf = final.shape[0]
    for f in range(start, nf, stride):
        s = 0.0
        for i in range(f, partial.shape[0], nf):
            s += partial[i]
        final[f] = s


@cuda.jit
def _batch_loss(loss, final, scale, out):
    """out[0] = loss[0] + scale * (sum of final, in order), in float64; one thread."""
    if cuda.grid(1) == 0:
        s = 0.0
        for i in range(final.shape[0]):
            s += final[i]
        out[0] = loss[0] + scale * s


@cuda.jit
def _accumulate(total, loss, weight):
    """total[0] += loss[0] * weight (float64); one thread."""
    if cuda.grid(1) == 0:
        total[0] += loss[0] * weight


@cuda.jit
def _count_correct(kind, Z, Y, count):
    """count[0] += right predictions: kind 0 rows whose argmax agree (first maximum, as
    NumPy), kind 1 elements with (Z > 0) == (Y > 0.5); grid-stride over rows."""
    rows, k = Z.shape
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for i in range(start, rows, stride):
        if kind == 0:
            zi = 0
            yi = 0
            for j in range(1, k):
                if Z[i, j] > Z[i, zi]:
                    zi = j
                if Y[i, j] > Y[i, yi]:
                    yi = j
            c = 1 if zi == yi else 0
        else:
            c = 0
            for j in range(k):
                if (Z[i, j] > 0) == (Y[i, j] > 0.5):
                    c += 1
        if c:
            cuda.atomic.add(count, 0, c)


# ----------------------------------------------------------------------------- helpers

def _free_bytes():
    """Free device memory in bytes (under the simulator: unlimited)."""
    if dev.SIMULATOR:
        return float("inf")
    return cuda.current_context().get_memory_info()[0]


def _upload(host):
    return cuda.to_device(np.ascontiguousarray(host))


class DeviceArrays:
    """The engine's array operations on the GPU (see the module docstring)."""

    device = True
    per_step_checks = False   # NaN losses are caught once per epoch, not per step

    # -------------------------------------------------------------- arrays
    def empty(self, shape, dtype):
        return cuda.device_array(shape, dtype=dtype)

    def zeros(self, shape, dtype):
        return dev.zeros(shape, dtype)

    def put(self, host):
        """A device copy of a host array."""
        return _upload(host)

    def get(self, a):
        """A NumPy copy of a device array."""
        return a.copy_to_host()

    def set(self, dst, value):
        """dst[...] = value (a host value, cast and broadcast like NumPy assignment)."""
        host = np.broadcast_to(np.asarray(value).astype(dst.dtype, copy=False),
                               tuple(dst.shape))
        dst.copy_to_device(np.ascontiguousarray(host))

    def clone(self, a):
        """A device-to-device copy."""
        b = cuda.device_array(a.shape, dtype=a.dtype)
        b.copy_to_device(a)
        return b

    def copy_into(self, dst, src):
        """dst[...] = src, both arrays of this engine (device to device)."""
        dst.copy_to_device(src)

    def item(self, loss):
        """A loss value (a (1,) device array) as a float: waits for the GPU."""
        return float(loss.copy_to_host()[0])

    # -------------------------------------------------------------- training
    def batch_loss(self, engine, Z, ws, l2):
        """The batch loss (+ (l2 / 2m) sum ||W||^2 in float64 when l2 > 0) as a (1,)
        device array; also writes dZ into ws["dout"]. Nothing leaves the device."""
        # buffers kept with the workspace: a training step allocates nothing
        loss = ws.get("loss")
        if loss is None:
            loss = ws["loss"] = cuda.device_array(1, dtype=Z.dtype)
        if ws["weight"] is None:
            fn, out_name = _LOSSES[engine.output]
            fn(Z, ws["Y"], **{out_name: ws["dout"]}, loss_out=loss)
        else:   # the feeder checked the weights and summed them on the host
            weighted_loss(_KIND[engine.output], Z, ws["Y"], ws["dout"], loss, ws["w"],
                          ws["weight"])
        if not l2:
            return loss
        L = len(engine.blocks)
        scratch = ws.get("l2_scratch")
        if scratch is None:
            scratch = ws["l2_scratch"] = (cuda.device_array(L2_LANES * L, dtype=np.float64),
                                          cuda.device_array(L2_FINAL, dtype=np.float64),
                                          cuda.device_array(1, dtype=np.float64))
        partial, final, out = scratch
        for l in range(L):
            _sumsq_lanes[dev.launch(L2_LANES)](dev.flat(engine.params.p[f"W{l + 1}"]),
                                               L2_LANES, partial, l * L2_LANES)
        _sum_lanes[dev.launch(L2_FINAL)](partial, final)
        m = ws["X"].shape[0] if ws["weight"] is None else ws["weight"]
        _batch_loss[1, 1](loss, final, float(l2 / (2 * m)), out)
        return out

    def feeder(self, X, Y, weights):
        """Batches of (X, Y) and the row weights (empty: none) for fit: resident on the
        device when they fit."""
        return _Feeder(X, Y, weights)

    def totals(self):
        return _Totals()

    def augment(self, ws, augment, seed_step):
        """Augment the batch in ws["X"] (fastdnn.Augment) at (seed, step) on the device:
        a copy of it is read and the augmented rows written back."""
        X = ws["X"]
        source = ws.get("augment_source")
        if source is None:
            source = ws["augment_source"] = cuda.device_array(X.shape, dtype=X.dtype)
        source.copy_to_device(X)
        augment_batch(source, X, augment, seed_step)


def augment_batch(source, out, augment, seed_step):
    """out = the device rows ``source`` augmented by ``augment`` (a fastdnn.Augment) at
    (seed, step): the draws of fastdnn.reference.augment.augment_rows."""
    seed, step = seed_step
    keys = (np.uint64(augment_key(seed, step, GEOMETRY)),
            np.uint64(augment_key(seed, step, NOISE)))
    _augment_rows[dev.launch(out.size)](
        source, *keys, augment.height, augment.width, augment.channels,
        int(augment.flip), augment.shift, out.dtype.type(augment.noise_scale), out)


class _Feeder:
    """Fills a workspace's X and Y (and row weights "w", their sum "weight") with the
    rows of one batch of the epoch's order."""

    def __init__(self, X, Y, weights):
        self.weights = weights.reshape(-1, 1)    # rows, gathered as X's are
        self.weighted = weights.shape[0] > 0
        arrays = (X, Y) + ((self.weights,) if self.weighted else ())
        self.resident = sum(a.nbytes for a in arrays) <= \
            config.CUDA_DATA_FRACTION * _free_bytes() and not isinstance(X, CsrRows)
        if self.resident:
            self.arrays = tuple(_upload(a) for a in arrays)
        else:
            self.arrays = arrays
            self._staging = {}
        self.order = self.host_order = None

    def epoch(self, order):
        """Take the epoch's example order (host int array): one upload per epoch."""
        self.host_order = order
        self.order = _upload(order.astype(np.int64, copy=False)) if self.resident \
            else order

    def fill(self, ws, start, stop):
        m = stop - start
        ws["weight"] = None
        names = ("X", "Y", "w_rows") if self.weighted else ("X", "Y")
        if self.weighted:   # the sum on the host: the loss kernels divide by it
            ws["weight"] = float(self.weights[self.host_order[start:stop], 0].sum(
                dtype=np.float64))
            if "w_rows" not in ws:
                ws["w_rows"] = cuda.device_array((m, 1), dtype=self.weights.dtype)
            ws["w"] = dev.flat(ws["w_rows"])
        if self.resident:
            for src, name in zip(self.arrays, names):
                _gather_rows[dev.launch(ws[name].size)](src, self.order, start, ws[name])
            return
        idx = self.order[start:stop]
        staging = self._staging.get(m)
        if staging is None:
            staging = self._staging[m] = tuple(
                cuda.pinned_array((m, a.shape[1]), dtype=a.dtype) for a in self.arrays)
        for src, host, name in zip(self.arrays, staging, names):
            if isinstance(src, CsrRows):   # a sparse X: this batch's rows densified
                src.rows(idx, out=host)
            else:
                np.take(src, idx, axis=0, out=host)
            ws[name].copy_to_device(host)


@cuda.jit
def _nan_unless_finite(x, loss):
    """loss[0] = NaN when the flat array x holds a value that is not finite (v - v is
    NaN for inf and NaN); grid-stride over x."""
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for i in range(start, x.shape[0], stride):
        v = x[i] - x[i]
        if v != v:
            loss[0] = v


class _Totals:
    """An epoch's summed loss (float64) and right-prediction count, on the device."""

    def __init__(self):
        self.loss = dev.zeros(1, np.float64)
        self.count = dev.zeros(1, np.int64)

    def spoil_unless_finite(self, flat):
        """Make the loss NaN when the parameters (the epoch's last update) are not
        finite: the one read of the loss per epoch then reports it."""
        _nan_unless_finite[dev.launch(flat.shape[0])](flat, self.loss)

    def add(self, loss, m):
        _accumulate[1, 1](self.loss, loss, float(m))

    def count_correct(self, output, Z, Y):
        _count_correct[dev.launch(Z.shape[0])](_KIND[output], Z, Y, self.count)

    def loss_sum(self):
        return float(self.loss.copy_to_host()[0])

    def correct(self):
        return int(self.count.copy_to_host()[0])


ENGINE = DeviceArrays()
