"""The engine as a Python loop of kernel calls: the NumPy reference and the GPU.

n = examples, m = batch rows, k = outputs, L = layers (blocks).

``backend="numpy"`` runs each step as calls of fastdnn.reference's functions: short,
obviously correct, the oracle the compiled engine (fastdnn.engine.cpu) is tested
against. ``backend="cuda"`` runs the same calls on fastdnn.cuda's kernels with every
array on the device (``arrays``: fastdnn.cuda.engine.DeviceArrays), reading the loss
once per epoch. Both have the compiled engine's interface: ``train`` and ``infer``.
"""
import math

import numpy as np

from .._validation import finite_checks_skipped
from ..reference.augment import augment_rows
from ..rng import dropout_key
from .cpu import EpochResult, RunningSums, Workspaces, filled_up
from .layout import HostArrays
from .sparse import CsrRows


class StepwiseEngine:
    """Training and inference of one model by kernel calls.

    ``params``: fastdnn.engine.layout.Parameters; ``output``: "softmax", "sigmoid" or
    "identity"; ``seed``: the dropout seed; ``kernels``: the kernel module
    (fastdnn.reference or fastdnn.cuda); ``arrays``: where the arrays live (HostArrays
    or the GPU's DeviceArrays, which also moves the data and keeps the loss on the GPU).
    """

    def __init__(self, params, output, seed, kernels, arrays):
        self.params, self.output, self.seed = params, output, int(seed)
        self.K, self.E = kernels, arrays
        self.blocks = params.blocks
        self._workspaces = Workspaces()
        self._feeder = (None,) * 4   # the last (X, Y, weights, feeder): fit's epochs share it

    # ------------------------------------------------------------------ training
    @finite_checks_skipped()
    def train(self, data, batch, optimizer, lr_of_step, step0, l2, *, update=True,
              stop_on_nan=True, on_run=None, augment=None):
        """As fastdnn.engine.cpu.CpuEngine.train (one model); ``augment``'s draws are
        applied to each gathered batch (fastdnn.reference.augment). A run is one step:
        ``on_run(1, sums)`` after each. On the host ``sums`` are the pass's RunningSums;
        on the GPU None: the totals live on the device and reading them every step would
        make the host wait for the GPU each step (they are read once per epoch)."""
        augment = augment if augment is not None and augment.active else None
        if augment is not None and isinstance(data[0], CsrRows):
            raise ValueError("augment needs a dense X; pass X.toarray()")
        X, Y, order, weights = data
        n, E = order.shape[0], self.E
        if any(a is not b for a, b in zip(self._feeder[:3], (X, Y, weights))):
            self._feeder = (X, Y, weights, E.feeder(X, Y, weights))   # on the GPU: moves once
        feeder = self._feeder[3]
        feeder.epoch(order)
        totals = E.totals()
        running = None if update else E.clone(self.params.running)
        classify = self.output in ("softmax", "sigmoid")
        running_sums = not E.device   # host totals are floats; device ones need a sync
        done = 0
        try:
            for start in range(0, n, batch):
                stop = min(start + batch, n)
                with self._workspaces.take((stop - start, True),
                                           lambda: self._workspace(stop - start)) as ws:
                    feeder.fill(ws, start, stop)
                    if augment is not None:
                        E.augment(ws, augment, (self.seed, step0 + done))
                    loss = self.grads_on(ws, step0 + done, l2)
                    if E.per_step_checks and stop_on_nan and not math.isfinite(loss):
                        return EpochResult(np.array([totals.loss_sum()]),
                                           np.array([totals.correct()]), done, done)
                    if classify:
                        totals.count_correct(self.output, ws["blocks"][-1]["out"], ws["Y"])
                    totals.add(loss, stop - start)
                    if update:
                        optimizer.lr = lr_of_step(done)
                        optimizer.step(self.params.flat, self.params.grad, kernels=self.K)
                done += 1
                if on_run is not None:
                    on_run(1, RunningSums(stop, np.array([totals.loss_sum()]),
                                          np.array([totals.correct()]))
                           if running_sums else None)
        finally:
            if running is not None:
                E.copy_into(self.params.running, running)
        if update:   # on the host the model checks the weights after the epoch
            totals.spoil_unless_finite(self.params.flat)
        total = totals.loss_sum()
        bad = None if math.isfinite(total) or not stop_on_nan else done
        return EpochResult(np.array([total]), np.array([totals.correct()]), done, bad)

    @finite_checks_skipped()
    def step(self, X, Y, optimizer, lr, step, l2, update=True, weights=None,
             augment=None):
        """One step on the batch (X, Y): its loss (L2 term included) as a float, the
        gradients in params.grad, and the update when ``update`` (else BatchNorm's running
        statistics are left as they were). The batch is copied in once and the loss read
        once; nothing else moves. ``weights``: the rows' weights (None: all 1);
        ``augment``: a fastdnn.Augment applied to the copied rows with the draws of
        training step ``step``, as ``train`` does."""
        E, m = self.E, X.shape[0]
        X = X.toarray() if isinstance(X, CsrRows) else X
        running = None if update else E.clone(self.params.running)
        try:
            with self._workspaces.take((m, True), lambda: self._workspace(m)) as ws:
                E.set(ws["X"], X)
                if augment is not None and augment.active:
                    E.augment(ws, augment, (self.seed, step))
                E.set(ws["Y"], Y)
                ws["weight"] = None
                if weights is not None and weights.shape[0]:
                    ws["w"] = E.put(weights)
                    ws["weight"] = float(weights.sum(dtype=np.float64))
                loss = E.item(self.grads_on(ws, step, l2))
            if update and math.isfinite(loss):
                optimizer.lr = lr
                optimizer.step(self.params.flat, self.params.grad, kernels=self.K)
        finally:
            if running is not None:
                E.copy_into(self.params.running, running)
        return loss

    def grads_on(self, ws, step, l2):
        """Forward, loss (L2 term included) and backward on the batch in ws at training
        step ``step``; the gradients go to params.grad. Returns the loss as the arrays
        keep it (a float on the host; see ``arrays.item``)."""
        Z = self._forward(ws, step, training=True)
        loss = self.E.batch_loss(self, Z, ws, l2)
        m, weight = ws["X"].shape[0], ws["weight"]
        # dense_backward adds (l2 / m) W: with row weights the L2 term is over their sum
        self._backward(ws, step, l2 if weight is None else l2 * m / weight)
        return loss

    def _workspace(self, m, training=True):
        e = lambda *shape: self.E.empty(shape, self.params.dtype)  # noqa: E731
        ws = {"X": e(m, self.blocks[0].n_in), "Y": e(m, self.blocks[-1].n_out),
              "dout": e(m, self.blocks[-1].n_out), "blocks": []}
        for l, blk in enumerate(self.blocks):
            b = {"out": e(m, blk.n_out), "act": e(m, blk.n_out)}
            if blk.bn is not None:
                b["Z"] = e(m, blk.n_out)
                if training:
                    b["x_hat"], b["inv_std"] = e(m, blk.n_out), e(blk.n_out)
                    b["dZbn"] = e(m, blk.n_out)
            if training:
                b["dZ"] = e(m, blk.n_out)
                b["dX"] = e(m, blk.n_in) if l > 0 else None
            ws["blocks"].append(b)
        return ws

    def _forward(self, ws, step, training):
        """Forward pass on ws["X"]; returns the output pre-activations (m, k)."""
        K, A = self.K, ws["X"]
        p, rm, rv = self.params.p, self.params.rm, self.params.rv
        for l, (blk, b) in enumerate(zip(self.blocks, ws["blocks"]), start=1):
            kp = blk.keep_prob if training else 1.0
            key = dropout_key(self.seed, step, l) if kp < 1.0 else 0
            if blk.bn is None:
                K.dense_forward(A, p[f"W{l}"], p.get(f"b{l}"), blk.activation, kp, key,
                                out=b["out"], act_out=b["act"])
            else:
                K.dense_forward(A, p[f"W{l}"], None, "identity", 1.0, 0, out=b["Z"],
                                act_out=b["Z"])
                bn = blk.bn
                extra = dict(x_hat_out=b["x_hat"], inv_std_out=b["inv_std"]) \
                    if training else {}
                K.batchnorm_activation_forward(
                    b["Z"], p[f"gamma{l}"], p[f"beta{l}"], rm[l], rv[l], bn.momentum,
                    bn.eps, training, blk.activation, kp, key, out=b["out"],
                    act_out=b["act"], **extra)
            A = b["out"]
        return A

    def data_loss(self, Z, Y, dout, sample_weight=None):
        """The output loss (a float; weighted by sample_weight when given) and its
        gradient into dout."""
        K, w = self.K, sample_weight
        if self.output == "softmax":
            loss, _ = K.softmax_cross_entropy(Z, Y, sample_weight=w, dZ_out=dout)
        elif self.output == "sigmoid":
            loss, _ = K.sigmoid_cross_entropy(Z, Y, sample_weight=w, dZ_out=dout)
        elif self.output == "exp":
            loss, _ = K.poisson_deviance(Z, Y, sample_weight=w, dZ_out=dout)
        else:
            loss, _ = K.mean_squared_error(Z, Y, sample_weight=w, dA_out=dout)
        return float(loss)

    def l2_term(self, m, l2):
        """(l2 / 2m) sum ||W||^2 (BLAS dots on views, no temporaries)."""
        if not l2:
            return 0.0
        total = 0.0
        for l in range(1, len(self.blocks) + 1):
            w = self.params.p[f"W{l}"].reshape(-1)
            total += float(np.dot(w, w))
        return l2 / (2 * m) * total

    def _backward(self, ws, step, l2):
        """Gradients of the loss into the flat gradient buffer (after _forward)."""
        K, d = self.K, ws["dout"]
        p, g = self.params.p, self.params.g
        for l in range(len(self.blocks), 0, -1):
            blk, b = self.blocks[l - 1], ws["blocks"][l - 1]
            A_in = ws["X"] if l == 1 else ws["blocks"][l - 2]["out"]
            kp = blk.keep_prob
            key = dropout_key(self.seed, step, l) if kp < 1.0 else 0
            if blk.bn is None:
                K.dense_backward(d, A_in, p[f"W{l}"], b["act"], blk.activation, kp, key, l2,
                                 blk.bias, l > 1, dX_out=b["dX"], dW_out=g[f"W{l}"],
                                 db_out=g.get(f"b{l}"), dZ_out=b["dZ"])
            else:
                K.batchnorm_activation_backward(
                    d, b["act"], b["x_hat"], b["inv_std"], p[f"gamma{l}"], blk.activation,
                    kp, key, dZ_out=b["dZbn"], dgamma_out=g[f"gamma{l}"],
                    dbeta_out=g[f"beta{l}"])
                K.dense_backward(b["dZbn"], A_in, p[f"W{l}"], b["Z"], "identity", 1.0, 0,
                                 l2, False, l > 1, dX_out=b["dX"], dW_out=g[f"W{l}"],
                                 db_out=None, dZ_out=b["dZ"])
            d = b["dX"]

    # ------------------------------------------------------------------ inference
    @finite_checks_skipped()
    def infer(self, X, Y=None, whole_blocks=False):
        """Logits (n, 1, k) of X in inference mode; with targets Y also the loss (without
        the L2 term) times n and the right predictions, as (1,) arrays. ``whole_blocks``:
        give a row the same bits in any batch (as CpuEngine.infer)."""
        n, k = X.shape[0], self.blocks[-1].n_out
        chunk = 256 if isinstance(self.E, HostArrays) else 4096
        out = np.empty((n, k), self.params.dtype)
        for s in range(0, n, chunk):
            rows = X[s:s + chunk]
            if whole_blocks:   # every BLAS call gets chunk rows
                rows = filled_up(rows, chunk)
            with self._workspaces.take((len(rows), False),
                                       lambda: self._workspace(len(rows), False)) as ws:
                self.E.set(ws["X"], rows)
                logits = self.E.get(self._forward(ws, 0, training=False))
                out[s:s + chunk] = logits[:min(chunk, n - s)]
        logits = out.reshape(n, 1, k)
        if Y is None:
            return logits
        loss = self.data_loss(out, Y, np.empty_like(out)) * n
        return logits, np.array([loss]), np.array([correct(self.output, out, Y)])


def correct(output, Z, Y):
    """Number of right predictions (softmax: rows; sigmoid: elements)."""
    if output == "softmax":
        return int(np.count_nonzero(Z.argmax(axis=1) == Y.argmax(axis=1)))
    return int(np.count_nonzero((Z > 0) == (Y > 0.5)))


class HostTraining:
    """How a loop of kernel calls trains on host arrays (the numpy backend): the loss
    of each batch is a float, checked after every step; the fastdnn.cuda twin keeps it
    on the device (fastdnn.cuda.engine)."""

    per_step_checks = True

    def item(self, loss):
        return loss

    def batch_loss(self, engine, Z, ws, l2):
        if ws["weight"] is None:
            loss = engine.data_loss(Z, ws["Y"], ws["dout"])
            return loss + engine.l2_term(ws["X"].shape[0], l2)
        loss = engine.data_loss(Z, ws["Y"], ws["dout"], sample_weight=ws["w"])
        return loss + engine.l2_term(ws["weight"], l2)

    def feeder(self, X, Y, weights):
        return _HostFeeder(X, Y, weights)

    def augment(self, ws, augment, seed_step):
        """Augment the batch in ws["X"] (fastdnn.Augment) at (seed, step)."""
        augment_rows(ws["X"], seed_step, augment.image_shape, augment.flip, augment.shift,
                     augment.noise, out=ws["X"])

    def totals(self):
        return _HostTotals()


class _HostFeeder:
    def __init__(self, X, Y, weights):
        self.X, self.Y, self.weights, self.order = X, Y, weights, None

    def epoch(self, order):
        self.order = order

    def fill(self, ws, start, stop):
        """The batch's rows into ws["X"], ws["Y"]; with row weights, theirs into ws["w"]
        and their sum into ws["weight"] (else None)."""
        idx = self.order[start:stop]
        if isinstance(self.X, CsrRows):   # a sparse X: this batch's rows densified
            self.X.rows(idx, out=ws["X"])
        else:
            np.take(self.X, idx, axis=0, out=ws["X"])
        np.take(self.Y, idx, axis=0, out=ws["Y"])
        ws["weight"] = None
        if self.weights.shape[0]:
            w = ws.get("w")
            if w is None:
                w = ws["w"] = np.empty(stop - start, self.weights.dtype)
            np.take(self.weights, idx, out=w)
            ws["weight"] = float(w.sum(dtype=np.float64))


class _HostTotals:
    def __init__(self):
        self.total, self.right = 0.0, 0

    def spoil_unless_finite(self, flat):
        pass   # the model checks host weights itself (Sequential._check_finite)

    def add(self, loss, m):
        self.total += loss * m

    def count_correct(self, output, Z, Y):
        self.right += correct(output, Z, Y)

    def loss_sum(self):
        return self.total

    def correct(self):
        return self.right


class _Host(HostArrays, HostTraining):
    """Host arrays with the host's way of training (the numpy and cpu backends)."""


HOST = _Host()
