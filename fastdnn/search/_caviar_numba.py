"""The compiled caviar engine: one Numba call per epoch trains all K models.

K = models, G = models per chunk (CHUNK_MODELS), m = batch size, n = examples,
n_l = width of layer l (n_0 = n_x inputs, n_L = k classes), P = parameters per model.

Layer-major parameter layout in one flat buffer: W1 (K, n_1, n_0), b1 (K, n_1), W2 (K,
n_2, n_1), b2 (K, n_2), ...; Adam's moments and the gradient alike. The models are cut
into fixed chunks of G; ``prange`` runs the chunks side by side and each chunk trains its
models through the whole epoch (every mini-batch) without synchronising with the
others, so its parameters stay in cache. Inside a chunk, activations are (m, G * n_l):
model g owns columns [g n_l, (g + 1) n_l). Since all models see the same batch X, the
first layer of a chunk is ONE GEMM, Z1 = X @ W1_chunk^T with W1_chunk (G n_1, n_0), and
so is its weight gradient dW1_chunk = dZ1^T @ X: these carry most of the FLOPs. Deeper
layers are per-model GEMMs on strided blocks. All GEMMs are BLAS (Numba's ``numba_xxgemm``
helper, SciPy's BLAS) called with leading dimensions, so no block is copied; the element
loops around them (bias + activation + dropout, softmax cross-entropy, activation
backward, bias sums, Adam with per-model hyperparameters) are fused plain loops.

Results do not depend on the thread count: the chunks are fixed by G, every reduction
runs in a fixed order inside its chunk, and a chunk computes the same whichever thread
takes it. They equal the NumPy engine to rounding only: BLAS blocks a (G n_1)-wide GEMM
differently from K separate ones, the loss sums run in another order, Adam takes
PyTorch's arrangement of its formula (one division per element) and the softmax's exp
is a vectorised polynomial within 2 ulp of libm's.
"""
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from ..config import CACHE
from ..cpu._rows import bias_activate_inplace, grad_inplace
from ..formulas import _ONE, _ZERO, is_kept

# Models per chunk: the unit of parallel work and of the first layer's GEMM. Results
# depend on it (BLAS blocking), never on the thread count. On digits (64-128-10, batch
# 64, float32) 4, 8 and 16 cost the same CPU time (about 40 ms per model for 30
# epochs, one thread; kernels/caviar.py); 4 gives more chunks to share among threads
# (120 models: 30 chunks, 15 per thread, where 8 gives 15 chunks split 8 / 7).
CHUNK_MODELS = 4
# Rows per block when evaluating the dev set (bounds the scratch memory).
EVAL_ROWS = 512


@intrinsic
def _address(typingctx, arr, offset):
    """void* to element ``offset`` of a contiguous array (for the BLAS call)."""
    sig = types.voidptr(arr, types.intp)

    def codegen(context, builder, sig, args):
        ary = context.make_array(sig.args[0])(context, builder, args[0])
        ptr = builder.gep(ary.data, [args[1]])
        return builder.bitcast(ptr, ir.IntType(8).as_pointer())
    return sig, codegen


@intrinsic
def _fetch_add(typingctx, arr, value):
    """Atomically arr[0] += value, returning the old arr[0] (int64 array)."""
    sig = types.int64(arr, types.int64)

    def codegen(context, builder, sig, args):
        ary = context.make_array(sig.args[0])(context, builder, args[0])
        return builder.atomic_rmw("add", ary.data, args[1], "seq_cst")
    return sig, codegen


# Numba's own BLAS entry point (it loads SciPy's cython_blas ?gemm on first use).
_xxgemm = types.ExternalFunction("numba_xxgemm", types.intc(
    types.char, types.char, types.char, types.intp, types.intp, types.intp,
    types.voidptr, types.voidptr, types.intp, types.voidptr, types.intp,
    types.voidptr, types.voidptr, types.intp))
_N = np.int8(ord("n"))
_T = np.int8(ord("t"))
_ALL = np.uint64(2**32)   # a keep threshold that keeps every unit (keep_prob = 1)


@njit(cache=CACHE, error_model="numpy")
def _gemm(ta, tb, M, N, Kd, A, a0, lda, B, b0, ldb, C, c0, ldc, ab):
    """Row-major C[M, N] = op(A) @ op(B) on blocks of flat arrays: A starts at element
    a0 with row stride lda, likewise B and C; ta / tb are _N or _T; ab = [1, 0]."""
    # row-major C is column-major C^T = op(B)^T op(A)^T: swap the operands
    kind = np.int8(115) if C.itemsize == 4 else np.int8(100)   # 's' or 'd'
    _xxgemm(kind, tb, ta, N, M, Kd, _address(ab, 0), _address(B, b0), ldb,
            _address(A, a0), lda, _address(ab, 1), _address(C, c0), ldc)


def ensure_blas():
    """Raise ImportError when Numba cannot reach SciPy's BLAS."""
    from numba.np.linalg import ensure_blas as numba_ensure_blas
    numba_ensure_blas()
    import scipy.linalg.cython_blas  # noqa: F401  (loaded now, so BLAS limits see it)


@njit(cache=CACHE, error_model="numpy")
def _add_to(acc, x):
    """acc += x, 1-D slices."""
    for j in range(acc.shape[0]):
        acc[j] = acc[j] + x[j]


@njit(cache=CACHE, error_model="numpy")
def _adam(p, g, m, v, b1, omb1, b2, omb2, step, rs, eps, lam, with_l2):
    """Adam on one model's segment, scalars in p's dtype; with_l2 adds the L2 gradient
    lam * p first (as dense_backward). PyTorch's arrangement, as fastdnn.cpu's Adam:
    step = lr / (1 - beta1^t) and rs = 1 / sqrt(1 - beta2^t) from the host, so
    p -= step m / (sqrt(v) rs + eps) takes one division and one square root per element
    (0.3 ns against 0.5 for the reference's lr (m / c1) / (sqrt(v / c2) + eps); equal to
    rounding). error_model="numpy" lets it vectorise (Python's division-by-zero checks
    kept it scalar: 7x slower)."""
    for j in range(p.shape[0]):
        gj = g[j]
        if with_l2:
            gj = gj + lam * p[j]
        mj = m[j] * b1
        mj = mj + omb1 * gj
        vj = v[j] * b2
        vj = vj + omb2 * gj * gj
        m[j] = mj
        v[j] = vj
        p[j] = p[j] - step * mj / (np.sqrt(vj) * rs + eps)


@intrinsic
def _times_pow2(typingctx, p, n):
    """p * 2**n for a normal float p and int64 n with a normal result: n added to the
    exponent bits (vectorises, unlike ldexp)."""
    sig = p(p, n)

    def codegen(context, builder, sig, args):
        fty = context.get_value_type(sig.args[0])
        bits = 32 if fty == ir.FloatType() else 64
        ity = ir.IntType(bits)
        pi = builder.bitcast(args[0], ity)
        ni = builder.trunc(args[1], ity) if bits == 32 else args[1]
        shifted = builder.shl(ni, ir.Constant(ity, 23 if bits == 32 else 52))
        return builder.bitcast(builder.add(pi, shifted), fty)
    return sig, codegen


@njit(cache=CACHE, error_model="numpy")
def _exp_nonpositive(x):
    """x = e^x in place for x <= 0 (softmax's shifted logits), in x's dtype: Cody-Waite
    reduction e^x = 2^n e^r, |r| <= ln2 / 2, and a Taylor polynomial for e^r (degree 6
    in float32, 12 in float64: within 2 ulp of libm's exp; results below the smallest
    normal become 0, -inf too). A loop of libm exp calls stays scalar: this vector loop measured
    7.7x faster (3.7 -> 0.47 ns per float32) and the exps were a tenth of a training
    step. NaN stays NaN."""
    if x.itemsize == 4:
        for j in range(x.shape[0]):
            v = x[j]
            n = np.floor(v * np.float32(1.4426950408889634) + np.float32(0.5))
            r = v - n * np.float32(0.693359375)        # ln 2 in two parts (Cephes)
            r = r - n * np.float32(-2.12194440e-4)
            e = np.float32(1.0 / 720)
            e = e * r + np.float32(1.0 / 120)
            e = e * r + np.float32(1.0 / 24)
            e = e * r + np.float32(1.0 / 6)
            e = e * r + np.float32(0.5)
            e = e * r + _ONE
            e = e * r + _ONE
            e = _times_pow2(e, np.int64(n) if v > np.float32(-87.0) else np.int64(0))
            x[j] = e if v > np.float32(-87.0) else (v if v != v else _ZERO)
    else:
        for j in range(x.shape[0]):
            v = x[j]
            n = np.floor(v * 1.4426950408889634 + 0.5)
            r = v - n * 6.93147180369123816490e-01     # ln 2 in two parts (fdlibm)
            r = r - n * 1.90821492927058770002e-10
            e = 1.0 / 479001600
            e = e * r + 1.0 / 39916800
            e = e * r + 1.0 / 3628800
            e = e * r + 1.0 / 362880
            e = e * r + 1.0 / 40320
            e = e * r + 1.0 / 5040
            e = e * r + 1.0 / 720
            e = e * r + 1.0 / 120
            e = e * r + 1.0 / 24
            e = e * r + 1.0 / 6
            e = e * r + 0.5
            e = e * r + 1.0
            e = e * r + 1.0
            e = _times_pow2(e, np.int64(n) if v > -708.0 else np.int64(0))
            x[j] = e if v > -708.0 else (v if v != v else 0.0)


@njit(cache=CACHE, error_model="numpy")
def _sum_squares(p):
    """sum(p**2) in float64, in 8 fixed partial sums (vectorises; one running sum is a
    dependency chain 3x slower)."""
    n = p.shape[0]
    n8 = n - n % 8
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
    for j in range(0, n8, 8):
        w0, w1 = np.float64(p[j]), np.float64(p[j + 1])
        w2, w3 = np.float64(p[j + 2]), np.float64(p[j + 3])
        w4, w5 = np.float64(p[j + 4]), np.float64(p[j + 5])
        w6, w7 = np.float64(p[j + 6]), np.float64(p[j + 7])
        s0 += w0 * w0
        s1 += w1 * w1
        s2 += w2 * w2
        s3 += w3 * w3
        s4 += w4 * w4
        s5 += w5 * w5
        s6 += w6 * w6
        s7 += w7 * w7
    for j in range(n8, n):
        w = np.float64(p[j])
        s0 += w * w
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))


@njit(cache=CACHE, error_model="numpy")
def forward(X, x0, m, sizes, params, woff, boff, k0, Gc, acts, outs, aoff, drop,
            th, keep, keys, s, ab, code):
    """Forward pass of models k0 .. k0+Gc-1 on rows x0 .. x0+m-1 of X. Hidden
    outputs go to acts (before dropout) and, for the dropout models when ``drop``
    (training, step s counted over all epochs), to outs; the logits to acts' last block."""
    L = sizes.shape[0] - 1
    for l in range(1, L + 1):
        nin, nout = sizes[l - 1], sizes[l]
        width = Gc * nout
        z0 = aoff[l]
        if l == 1:   # all models of the chunk in one GEMM: they share X
            _gemm(_N, _T, m, width, nin, X, x0 * nin, nin, params,
                  woff[0] + k0 * nout * nin, nin, acts, z0, width, ab)
        else:
            for g in range(Gc):
                src = outs if drop and th[k0 + g] < _ALL else acts
                _gemm(_N, _T, m, nout, nin, src, aoff[l - 1] + g * nin, Gc * nin,
                      params, woff[l - 1] + (k0 + g) * nout * nin, nin, acts,
                      z0 + g * nout, width, ab)
        b = boff[l - 1] + k0 * nout   # the chunk's biases: contiguous, as a row's blocks
        for i in range(m):
            c = z0 + i * width
            bias_activate_inplace(acts[c:c + width], params[b:b + width],
                                  code if l < L else 0)
        if l < L and drop:
            for g in range(Gc):
                k = k0 + g
                if th[k] >= _ALL:
                    continue
                key, kp = keys[k, s, l - 1], keep[k]
                for i in range(m):
                    c = z0 + i * width + g * nout
                    for j in range(nout):
                        a = acts[c + j]
                        if not is_kept(key, np.uint64(i * nout + j), th[k]):
                            a = a * _ZERO   # act * mask / keep_prob
                        outs[c + j] = a / kp


@njit(cache=CACHE, error_model="numpy")
def softmax_rows(acts, z0, m, Gc, nk, y, y0, k0, dbuf, scale, loss, right):
    """Cross-entropy of each model's logits (the (m, Gc nk) block of acts at z0); adds
    the row losses to loss[k] and the right answers to right[k]; with scale > 0 writes
    dZ = (p - y) / scale to dbuf (the same block layout; dbuf may be acts)."""
    width = Gc * nk
    for i in range(m):   # max (and argmax) per model and row; shifted logits to dbuf
        label = y[y0 + i]
        for g in range(Gc):
            c = z0 + i * width + g * nk
            zmax = acts[c]
            best = 0
            for j in range(1, nk):
                if acts[c + j] > zmax:
                    zmax, best = acts[c + j], j
            right[k0 + g] += best == label
            loss[k0 + g] -= acts[c + label] - zmax
            for j in range(nk):
                dbuf[c + j] = acts[c + j] - zmax
    _exp_nonpositive(dbuf[z0:z0 + m * width])   # the whole block in one vector loop
    for i in range(m):
        label = y[y0 + i]
        for g in range(Gc):
            c = z0 + i * width + g * nk
            S = scale - scale
            for j in range(nk):
                S += dbuf[c + j]
            loss[k0 + g] += np.log(S)
            if scale > 0:
                for j in range(nk):
                    p = dbuf[c + j] / S
                    if j == label:
                        p = p - _ONE
                    dbuf[c + j] = p / scale


@njit(cache=CACHE, error_model="numpy")
def chunk_train(c, G, X, y, orders, batch, sizes, params, grads, m1, v1, woff, boff,
                lr, b1, omb1, b2, omb2, eps, l2, keep, th, keys, beta1, beta2,
                Xd, yd, dev_at, loss, right, vloss, vright, code):
    """All epochs of chunk c (models c G .. c G + G - 1): epoch e visits the rows of
    (X, y) in orders[e]; after epoch e, the dev evaluation on (Xd, yd) when dev_at[e]
    (and Xd has rows). Per epoch e and model k: summed losses to loss[e, k], right
    answers to right[e, k], likewise vloss and vright on the dev set."""
    K = lr.shape[1]
    L = sizes.shape[0] - 1
    n, nx = X.shape
    n_steps = (n + batch - 1) // batch
    k0 = c * G
    Gc = min(G, K - k0)
    dt = params.dtype.type
    ab = np.zeros(2, params.dtype)
    ab[0] = 1
    aoff = np.zeros(L + 2, np.int64)
    for l in range(1, L + 1):
        aoff[l + 1] = aoff[l] + batch * Gc * sizes[l]
    acts = np.empty(aoff[L + 1], params.dtype)
    outs = np.empty(aoff[L + 1], params.dtype)
    dbuf = np.empty(aoff[L + 1], params.dtype)
    sq = np.zeros(Gc)
    any_drop = False
    for g in range(Gc):
        any_drop = any_drop or th[k0 + g] < _ALL
    Xb = np.empty((batch, nx), params.dtype)
    yb = np.empty(batch, np.int64)
    rows = max(min(Xd.shape[0], EVAL_ROWS), 1)
    eoff = np.zeros(L + 2, np.int64)
    for l in range(1, L + 1):
        eoff[l + 1] = eoff[l] + rows * Gc * sizes[l]
    eacts = np.empty(eoff[L + 1], params.dtype)
    for e in range(orders.shape[0]):
        for s0 in range(n_steps):
            x0 = s0 * batch
            m = min(batch, n - x0)
            for i in range(m):   # the batch's rows, contiguous for the GEMMs
                r = orders[e, x0 + i]
                Xb[i] = X[r]
                yb[i] = y[r]
            _step(Xb, yb, m, e * n_steps + s0, k0, Gc, sizes, params, grads, m1, v1,
                  woff, boff, lr[e], b1, omb1, b2, omb2, eps, l2, keep, th, keys, beta1,
                  beta2, acts, outs, dbuf, aoff, sq, any_drop, ab, loss[e], right[e],
                  code)
        if not dev_at[e]:
            continue
        for x0 in range(0, Xd.shape[0], rows):   # dev evaluation, inference mode
            m = min(rows, Xd.shape[0] - x0)
            forward(Xd, x0, m, sizes, params, woff, boff, k0, Gc, eacts, eacts, eoff,
                    False, th, keep, keys, 0, ab, code)
            softmax_rows(eacts, eoff[L], m, Gc, sizes[L], yd, x0, k0, eacts, dt(0),
                         vloss[e], vright[e])


@njit(cache=CACHE, error_model="numpy")
def _step(Xe, ye, m, s, k0, Gc, sizes, params, grads, m1, v1, woff, boff, lr, b1, omb1,
          b2, omb2, eps, l2, keep, th, keys, beta1, beta2, acts, outs, dbuf, aoff, sq,
          any_drop, ab, loss, right, code):
    """Training step s (counted over all epochs) of models k0 .. k0+Gc-1 on the batch
    (Xe[:m], ye[:m]): forward, loss, backward, Adam."""
    L = sizes.shape[0] - 1
    nk = sizes[L]
    dt = params.dtype.type
    x0 = 0   # the batch is rows 0 .. m-1 of Xe
    forward(Xe, x0, m, sizes, params, woff, boff, k0, Gc, acts, outs, aoff,
            any_drop, th, keep, keys, s, ab, code)
    for g in range(Gc):   # the L2 term of this batch's loss (weights before the step)
        sq[g] = 0.0
    for l in range(1, L + 1):
        sz = sizes[l] * sizes[l - 1]
        for g in range(Gc):
            if l2[k0 + g] > 0:
                base = woff[l - 1] + (k0 + g) * sz
                sq[g] += _sum_squares(params[base:base + sz])
    softmax_rows(acts, aoff[L], m, Gc, nk, ye, x0, k0, dbuf, dt(m), loss, right)
    for g in range(Gc):
        k = k0 + g
        if l2[k] > 0:   # the batch loss times m, as the history sums it
            loss[k] += l2[k] / 2 * sq[g]
    # backward
    for l in range(L, 0, -1):
        nin, nout = sizes[l - 1], sizes[l]
        width = Gc * nout
        if l == 1:
            _gemm(_T, _N, width, nin, m, dbuf, aoff[1], width, Xe, x0 * nin,
                  nin, grads, woff[0] + k0 * nout * nin, nin, ab)
        else:
            for g in range(Gc):
                src = outs if any_drop and th[k0 + g] < _ALL else acts
                _gemm(_T, _N, nout, nin, m, dbuf, aoff[l] + g * nout, width,
                      src, aoff[l - 1] + g * nin, Gc * nin, grads,
                      woff[l - 1] + (k0 + g) * nout * nin, nin, ab)
        b = boff[l - 1] + k0 * nout   # the chunk's biases are contiguous
        for j in range(width):
            grads[b + j] = 0
        for i in range(m):   # bias sums in a fixed order
            r = aoff[l] + i * width
            _add_to(grads[b:b + width], dbuf[r:r + width])
        if l == 1:
            break
        for g in range(Gc):   # dA of the layer below
            _gemm(_N, _N, m, nin, nout, dbuf, aoff[l] + g * nout, width, params,
                  woff[l - 1] + (k0 + g) * nout * nin, nin, dbuf,
                  aoff[l - 1] + g * nin, Gc * nin, ab)
        win = Gc * nin
        for g in range(Gc):   # through dropout (the models that have it)
            k = k0 + g
            if not (any_drop and th[k] < _ALL):
                continue
            key = keys[k, s, l - 2]
            kp = keep[k]
            for i in range(m):
                r = aoff[l - 1] + i * win + g * nin
                for j in range(nin):
                    d = dbuf[r + j]
                    if not is_kept(key, np.uint64(i * nin + j), th[k]):
                        d = d * _ZERO
                    dbuf[r + j] = d / kp
        for i in range(m):    # through the activation, a whole row of the chunk at once
            r = aoff[l - 1] + i * win
            grad_inplace(dbuf[r:r + win], acts[r:r + win], code)
    # Adam, model by model, with that model's hyperparameters
    t = np.float64(s + 1)
    for g in range(Gc):
        k = k0 + g
        step = dt(np.float64(lr[k]) / (1.0 - beta1[k] ** t))
        rs = dt(1.0 / np.sqrt(1.0 - beta2[k] ** t))
        lam = dt(l2[k] / m)
        for l in range(1, L + 1):
            sz = sizes[l] * sizes[l - 1]
            w = woff[l - 1] + k * sz
            b = boff[l - 1] + k * sizes[l]
            _adam(params[w:w + sz], grads[w:w + sz], m1[w:w + sz], v1[w:w + sz],
                  b1[k], omb1[k], b2[k], omb2[k], step, rs, eps[k], lam, True)
            _adam(params[b:b + sizes[l]], grads[b:b + sizes[l]], m1[b:b + sizes[l]],
                  v1[b:b + sizes[l]], b1[k], omb1[k], b2[k], omb2[k], step, rs, eps[k],
                  lam, False)


@njit(parallel=True, cache=CACHE, error_model="numpy")
def train(G, n_workers, X, y, orders, batch, sizes, params, grads, m1, v1, woff, boff, lr,
          b1, omb1, b2, omb2, eps, l2, keep, th, keys, beta1, beta2, Xd, yd, dev_at, loss,
          right, vloss, vright, code):
    """The whole training of all K models: n_workers threads (numba.get_num_threads())
    take chunks of G models from a shared counter until none is left, and train each
    through every epoch (no barrier between epochs). Taking chunks as they come keeps
    both cores busy when one is slowed by another process (a static split waits for the
    slower); which thread trains a chunk does not change its results."""
    K = lr.shape[1]
    n_chunks = (K + G - 1) // G
    counter = np.zeros(1, np.int64)
    for w in prange(n_workers):
        while True:
            c = _fetch_add(counter, 1)
            if c >= n_chunks:
                break
            chunk_train(c, G, X, y, orders, batch, sizes, params, grads, m1, v1, woff,
                        boff, lr, b1, omb1, b2, omb2, eps, l2, keep, th, keys, beta1,
                        beta2, Xd, yd, dev_at, loss, right, vloss, vright, code)
