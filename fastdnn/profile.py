"""``fastdnn profile``: this machine's limits, and where fastdnn stands against them.

Sections (``--sections``):

bandwidth  STREAM copy (a = b, 8 B/element) and triad (a = b + s*c, 12 B/element) with a
           Numba prange loop on all cores (NUMBA_NUM_THREADS), float32; write-allocate
           traffic is not counted. Everything else runs on ``--threads`` (default 2).
gemm       the BLAS rate (GFLOP/s) for the 3L - 1 matrix products of one training step of
           the network ``--layers`` at batch ``--batch``: L forward X @ W.T, L weight
           gradients dZ.T @ X, L - 1 input gradients dZ @ W (the input needs none).
optim      each optimizer's in-place update of ``--params`` parameters: parameters/s, GB/s
           moved (float32: Adam 28 B/param, RMSprop/momentum 20 B, SGD 12 B) and the
           fraction of the triad bandwidth, for fastdnn, the NumPy reference and PyTorch
           (foreach and fused) when torch is installed.
step       one training step (dense -> BatchNorm -> ReLU -> dropout hidden layers, softmax
           cross-entropy, Adam): time in matrix products (the gemm floor) vs everything
           else, for fastdnn, the NumPy reference and PyTorch.

Method: every comparison runs in one process, in interleaved rounds (A B C A B C ...);
each sample is the mean over a block of calls calibrated to last >= ``--min-time``
(50 ms); each block is preceded by an untimed busy run of the same call (``--settle``,
0.2 s where BLAS runs), because OpenBLAS worker threads spin for ~0.1 s after a
matrix product and a vCPU that idled wakes slowly; tables give medians.

L = number of layers, m = batch size, n = parameter count.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import IO, Any

import numpy as np
from numpy.typing import DTypeLike

SECTIONS = ("bandwidth", "gemm", "optim", "step")
OPTIMIZERS = ("sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw")
# Bytes moved per parameter in units of the element size: SGD reads p, g and writes p;
# momentum/RMSprop also read and write one state; Adam two (STREAM convention).
ACCESSES = {"sgd": 3, "momentum": 5, "nesterov": 5, "rmsprop": 5, "adam": 7, "adamw": 7}
LR = 1e-3
ENV_VARS = ("OPENBLAS_NUM_THREADS", "OPENBLAS_THREAD_TIMEOUT", "OMP_NUM_THREADS",
            "MKL_NUM_THREADS", "NUMBA_NUM_THREADS", "NUMBA_THREADING_LAYER")

#: One row of a result table: column name -> value (what --json writes).
Row = dict[str, Any]
#: A GEMM of ``step_gemms``: (label, shape of A, shape of B, flops).
Gemm = tuple[str, tuple[int, int], tuple[int, int], int]


# --------------------------------------------------------------------------- timing
def _calibrate(fn, min_time):
    """Smallest 1-2-5 call count whose back-to-back run lasts >= min_time seconds."""
    number = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        elapsed = time.perf_counter() - t0
        if elapsed >= min_time or number >= 10**6:
            return number
        want = max(2 * number, int(number * 1.2 * min_time / max(elapsed, 1e-9)) + 1)
        number = next(s * 10**e for e in range(8) for s in (1, 2, 5) if s * 10**e >= want)


def measure(fns: Mapping[Hashable, Callable[[], object]], repeat: int = 7,
            min_time: float = 0.05, settle: float = 0.2,
            warmup: int = 1) -> dict[Hashable, dict[str, Any]]:
    """Median seconds per call of each zero-argument callable in ``fns`` (name -> fn).

    Interleaved rounds; each sample is a calibrated block preceded by ``settle`` seconds
    of untimed calls of the same function.

    Parameters
    ----------
    fns : dict name -> callable
        Zero-argument callables; a name may be any hashable (e.g. a tuple).
    repeat : int
        Samples (rounds) per function.
    min_time : float
        Seconds each sample's block lasts at least (the call count is calibrated);
        0: one call per sample.
    settle : float
        Seconds of untimed calls before each block.
    warmup : int
        Untimed calls of each function before calibrating (compiles).

    Returns
    -------
    dict name -> dict
        {"median_s", "best_s", "samples_s" (list), "number" (calls per sample)}.
    """
    numbers = {}
    for name, fn in fns.items():
        for _ in range(warmup):
            fn()
        numbers[name] = _calibrate(fn, min_time) if min_time > 0 else 1
    samples = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            until = time.perf_counter() + settle
            fn()
            while time.perf_counter() < until:
                fn()
            n = numbers[name]
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            samples[name].append((time.perf_counter() - t0) / n)
    return {name: {"median_s": statistics.median(s), "best_s": min(s), "samples_s": s,
                   "number": numbers[name]} for name, s in samples.items()}


# --------------------------------------------------------------------------- environment
def set_threads(n: int) -> None:
    """Pin Numba, the BLAS (through threadpoolctl) and torch to ``n`` threads.

    Numba gets at most NUMBA_NUM_THREADS; the BLAS and torch only where installed.

    Parameters
    ----------
    n : int >= 1
    """
    import numba
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(n)
    except ImportError:
        pass
    torch = _torch()
    if torch is not None:
        torch.set_num_threads(n)


def _torch():
    """torch when installed (optional), else None."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def environment() -> dict[str, Any]:
    """What the measurements ran on: versions, CPU, BLAS, threads, environment variables.

    Returns
    -------
    dict
        python, machine, cpu, logical_cpus, numpy, numba, numba_threads, blas, torch
        (None when not installed) and env (the ENV_VARS that are set).
    """
    import numba
    info = {"python": platform.python_version(), "machine": platform.machine(),
            "cpu": _cpu_model(), "logical_cpus": os.cpu_count(), "numpy": np.__version__,
            "numba": numba.__version__, "numba_threads": numba.get_num_threads(),
            "blas": None, "torch": None}
    try:
        from threadpoolctl import threadpool_info
        blas = [p for p in threadpool_info() if p.get("user_api") == "blas"]
        if blas:
            p = blas[0]
            info["blas"] = (f"{p.get('internal_api')} {p.get('version')} "
                            f"({p.get('architecture')}, {p.get('num_threads')} threads)")
    except ImportError:
        pass
    if info["blas"] is None:
        try:
            blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
            info["blas"] = f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
        except Exception:  # older NumPy: no dictionary form
            info["blas"] = "unknown"
    torch = _torch()
    if torch is not None:
        info["torch"] = f"{torch.__version__} ({torch.get_num_threads()} threads)"
    # OPENBLAS_THREAD_TIMEOUT matters: idle OpenBLAS threads spin ~0.1 s after a GEMM and
    # slow down a Numba kernel launched right after it (a small value avoids that).
    info["env"] = {k: os.environ[k] for k in ENV_VARS if k in os.environ}
    return info


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


# --------------------------------------------------------------------------- bandwidth
_STREAM = {}


def _stream_kernels():
    """The prange copy and triad kernels, compiled on first use (cached on disk)."""
    if not _STREAM:
        from numba import njit, prange

        @njit(parallel=True, cache=True)
        def stream_copy(a, b):  # parallel over elements
            for i in prange(a.size):
                a[i] = b[i]

        @njit(parallel=True, cache=True)
        def stream_triad(a, b, c, s):  # parallel over elements
            for i in prange(a.size):
                a[i] = b[i] + s * c[i]

        from ._cache import harden_cache
        _STREAM.update(copy=harden_cache(stream_copy), triad=harden_cache(stream_triad))
    return _STREAM["copy"], _STREAM["triad"]


def stream_bandwidth(n: int, opts: argparse.Namespace,
                     ops: Sequence[str] = ("copy", "triad")) -> dict[str, Row]:
    """GB/s of STREAM copy (8 B/element) and triad (12 B/element) on n float32 elements.

    Runs on all NUMBA_NUM_THREADS threads, whatever ``set_threads`` chose.

    Parameters
    ----------
    n : int
        Elements per array.
    opts : argparse.Namespace
        repeat, min_time and settle (at most 0.05 s used here).
    ops : sequence of "copy" and "triad"

    Returns
    -------
    dict op -> dict
        elements, bytes_per_element, threads, GBps (median), best_GBps, median_s.
    """
    copy, triad = _stream_kernels()
    a = np.zeros(n, np.float32)  # zeros, full: every page is touched before timing
    b = np.full(n, 1.0, np.float32)
    c = np.full(n, 2.0, np.float32)
    s = np.float32(3.0)
    fns = {"copy": lambda: copy(a, b), "triad": lambda: triad(a, b, c, s)}
    fns = {k: v for k, v in fns.items() if k in ops}
    import numba
    threads = numba.get_num_threads()
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)  # all cores: the machine's limit
    try:
        t = measure(fns, opts.repeat, opts.min_time, min(opts.settle, 0.05))
    finally:
        numba.set_num_threads(threads)
    triad(a, b, c, s)
    assert a[0] == 7.0 and a[-1] == 7.0, "triad kernel computed a wrong value"
    bytes_per = {"copy": 8, "triad": 12}
    return {op: {"elements": n, "bytes_per_element": bytes_per[op],
                 "threads": numba.config.NUMBA_NUM_THREADS,
                 "GBps": bytes_per[op] * n / r["median_s"] / 1e9,
                 "best_GBps": bytes_per[op] * n / r["best_s"] / 1e9,
                 "median_s": r["median_s"]} for op, r in t.items()}


# --------------------------------------------------------------------------- GEMMs
def step_gemms(layers: Sequence[int], m: int) -> list[Gemm]:
    """(label, a_shape, b_shape, flops) of the 3L - 1 matrix products of a training step.

    Parameters
    ----------
    layers : sequence of int
        The widths [n_0, n_1, ..., n_L].
    m : int
        The batch size.

    Returns
    -------
    list of (str, (int, int), (int, int), int)
        Per layer l: forward X @ W.T, weight gradient dZ.T @ X, and for l > 1 the input
        gradient dZ @ W.
    """
    out = []
    for l, (n_in, n_out) in enumerate(zip(layers[:-1], layers[1:]), start=1):
        flops = 2 * m * n_in * n_out
        out.append((f"L{l} fwd X@W.T", (m, n_in), (n_in, n_out), flops))
        out.append((f"L{l} dW dZ.T@X", (n_out, m), (m, n_in), flops))
        if l > 1:
            out.append((f"L{l} dX dZ@W", (m, n_out), (n_out, n_in), flops))
    return out


def gemm_rates(layers: Sequence[int], m: int, dtype: DTypeLike, opts: argparse.Namespace,
               with_torch: bool = True) -> list[Row]:
    """GFLOP/s of each step GEMM with NumPy's BLAS (and torch's when installed).

    Parameters
    ----------
    layers : sequence of int
        The network's widths.
    m : int
        The batch size.
    dtype : float32 or float64
    opts : argparse.Namespace
        repeat, min_time, settle.
    with_torch : bool
        Also time torch.mm when torch is installed.

    Returns
    -------
    list of dict
        One per GEMM of ``step_gemms``: gemm, shape, flops, numpy_us, numpy_GFLOPs
        (torch_us, torch_GFLOPs with torch).
    """
    rng = np.random.default_rng(0)
    rows, fns, torch = [], {}, _torch() if with_torch else None
    for label, sa, sb, flops in step_gemms(layers, m):
        A = rng.standard_normal(sa).astype(dtype)
        B = rng.standard_normal(sb).astype(dtype)
        C = np.empty((sa[0], sb[1]), dtype)
        fns[("numpy", label)] = (lambda A=A, B=B, C=C: np.matmul(A, B, out=C))
        if torch is not None:
            tA, tB, tC = torch.from_numpy(A), torch.from_numpy(B), torch.from_numpy(C)
            fns[("torch", label)] = (lambda tA=tA, tB=tB, tC=tC: torch.mm(tA, tB, out=tC))
        rows.append((label, sa, sb, flops))
    t = measure(fns, opts.repeat, opts.min_time, opts.settle)
    result = []
    for label, sa, sb, flops in rows:
        row = {"gemm": label, "shape": f"{sa[0]}x{sa[1]} @ {sb[0]}x{sb[1]}", "flops": flops}
        for lib in ("numpy", "torch"):
            if (lib, label) in t:
                r = t[(lib, label)]
                row[f"{lib}_us"] = r["median_s"] * 1e6
                row[f"{lib}_GFLOPs"] = flops / r["median_s"] / 1e9
        result.append(row)
    return result


# --------------------------------------------------------------------------- optimizers
def _optimizer_arrays(n, dtype, name, seed=0, shapes=None):
    """[param, grad, state...]: flat arrays of n elements, or lists of arrays of ``shapes``
    (a model's tensors) when given."""
    rng = np.random.default_rng(seed)
    param = rng.standard_normal(n).astype(dtype)
    grad = (0.01 * rng.standard_normal(n)).astype(dtype)
    arrays = [param, grad] + [np.zeros(n, dtype) for _ in range((ACCESSES[name] - 3) // 2)]
    if shapes is None:
        return arrays
    cuts = np.cumsum([int(np.prod(s)) for s in shapes])[:-1]
    return [[part.reshape(s).copy() for part, s in zip(np.split(a, cuts), shapes)]
            for a in arrays]


def _tensor_shapes(layers):
    """W and b of each layer: the per-layer tensors a model hands an optimizer."""
    return [shape for n_in, n_out in zip(layers, layers[1:])
            for shape in ((n_out, n_in), (n_out,))]


def _fastdnn_update(K, name, arrays):
    update, counter = getattr(K, f"{name}_update"), [0]
    if name in ("adam", "adamw"):
        def step():
            counter[0] += 1
            update(*arrays, counter[0], LR)
        return step
    return lambda: update(*arrays, LR)


def _optimizer_step(K, name, arrays):
    """fastdnn.optim's ``name`` optimizer stepping arrays[0] from arrays[1] on kernel
    module ``K``; it keeps its own state (the other arrays go unused)."""
    from .optim import get_optimizer
    opt = get_optimizer(name, lr=LR)
    params, grads = arrays[0], arrays[1]
    return lambda: opt.step(params, grads, kernels=K)


def _torch_update(name, arrays, mode):
    """A torch.optim step over the same parameters, or None if unsupported."""
    torch = _torch()
    params, grads = arrays[0], arrays[1]
    if isinstance(params, np.ndarray):
        params, grads = [params], [grads]
    ps = []
    for p_, g_ in zip(params, grads):
        p = torch.nn.Parameter(torch.from_numpy(p_.copy()))
        p.grad = torch.from_numpy(g_.copy())
        ps.append(p)
    flag = {"foreach": {"foreach": True}, "fused": {"fused": True}}[mode]
    make = {"sgd": lambda: torch.optim.SGD(ps, lr=LR, **flag),
            "momentum": lambda: torch.optim.SGD(ps, lr=LR, momentum=0.9, **flag),
            "nesterov": lambda: torch.optim.SGD(ps, lr=LR, momentum=0.9, nesterov=True,
                                                **flag),
            "rmsprop": lambda: torch.optim.RMSprop(ps, lr=LR, alpha=0.999, **flag),
            "adam": lambda: torch.optim.Adam(ps, lr=LR, **flag),
            "adamw": lambda: torch.optim.AdamW(ps, lr=LR, **flag)}[name]
    try:
        opt = make()
        opt.step()  # allocates the state; raises here if the mode is unsupported
    except (RuntimeError, TypeError, ValueError):
        return None
    return opt.step


def _agreement(K, name, n, dtype):
    """Max relative difference from the float64 reference after 3 steps (n <= 1e5)."""
    from . import reference as R
    n = min(n, 100_000)
    ref = [a.astype(np.float64) for a in _optimizer_arrays(n, dtype, name, seed=1)]
    got = _optimizer_arrays(n, dtype, name, seed=1)
    got = _on_backend(K, got)
    step_ref, step_got = _fastdnn_update(R, name, ref), _fastdnn_update(K, name, got)
    for _ in range(3):
        step_ref()
        step_got()
    return max(_rel_error(g, r) for g, r in zip(got, ref))


def optimizer_throughput(n: int, names: Sequence[str], backend: str, dtype: DTypeLike,
                         opts: argparse.Namespace, triad: Mapping[str, float],
                         shapes: Sequence[tuple[int, ...]] | None = None) -> list[Row]:
    """Rows per (optimizer, implementation): us/step, Mparam/s, GB/s, fraction of triad.

    Parameters
    ----------
    n : int
        Parameters updated per step.
    names : sequence of str
        Optimizers, from OPTIMIZERS.
    backend : "numpy", "cpu" or "cuda"
        fastdnn's kernels to time beside the NumPy reference (and torch when installed).
    dtype : float32 or float64
    opts : argparse.Namespace
        repeat, min_time, settle (at most 0.05 s used here).
    triad : dict name -> GB/s
        Bandwidths each row is compared with (a column frac_<name> each).
    shapes : sequence of tuple of int, optional
        Update lists of tensors of these shapes (n elements in all) instead of one flat
        array; the NumPy reference then runs one call per tensor.

    Returns
    -------
    list of dict
        optimizer, impl, params, bytes_per_param, us, Mparams_per_s, GBps, vs_numpy,
        frac_*, rel_err_vs_ref (fastdnn rows); a row with a note for an unsupported
        torch mode.
    """
    from . import reference as R
    K = _kernels(backend)
    itemsize = np.dtype(dtype).itemsize
    torch = _torch()
    rows = []
    for name in names:
        fns, notes = {}, {}
        # lists of tensors go through the optimizer object, the drop-in users call
        # (opt.step(params, grads), its state its own); flat arrays through the kernel
        update = _fastdnn_update if shapes is None else _optimizer_step
        if backend != "numpy":
            arrays = _on_backend(K, _optimizer_arrays(n, dtype, name, shapes=shapes))
            fns[f"fastdnn {backend}"] = _synced(K, update(K, name, arrays))
        ref = _optimizer_arrays(n, dtype, name, shapes=shapes)
        if shapes is None:
            fns["numpy reference"] = _fastdnn_update(R, name, ref)
        else:
            steps = [_fastdnn_update(R, name, [a[i] for a in ref]) for i in range(len(shapes))]
            fns["numpy reference"] = lambda steps=steps: [s() for s in steps]
        if torch is not None:
            for mode in ("foreach", "fused"):
                step = _torch_update(name, _optimizer_arrays(n, dtype, name, shapes=shapes),
                                     mode)
                if step is None:
                    notes[f"torch {mode}"] = "unsupported"
                else:
                    fns[f"torch {mode}"] = step
        error = _agreement(K, name, n, dtype) if backend != "numpy" else None
        t = measure(fns, opts.repeat, opts.min_time, min(opts.settle, 0.05))
        base = t["numpy reference"]["median_s"]
        bytes_per_param = ACCESSES[name] * itemsize
        for impl, r in t.items():
            gbps = bytes_per_param * n / r["median_s"] / 1e9
            row = {"optimizer": name, "impl": impl, "params": n,
                   "bytes_per_param": bytes_per_param, "us": r["median_s"] * 1e6,
                   "Mparams_per_s": n / r["median_s"] / 1e6, "GBps": gbps,
                   "vs_numpy": base / r["median_s"]}
            for key, value in triad.items():
                row[f"frac_{key}"] = gbps / value
            if impl.startswith("fastdnn"):
                row["rel_err_vs_ref"] = error
            rows.append(row)
        for impl, note in notes.items():
            rows.append({"optimizer": name, "impl": impl, "params": n, "note": note})
    return rows


# --------------------------------------------------------------------------- training step
def _torch_step(layers, X, y, keep_prob, mode):
    torch = _torch()
    nn = torch.nn
    torch.manual_seed(0)
    mods = []
    for n_in, n_out in zip(layers[:-2], layers[1:-1]):
        mods += [nn.Linear(n_in, n_out, bias=False), nn.BatchNorm1d(n_out), nn.ReLU(),
                 nn.Dropout(1 - keep_prob)]
    mods.append(nn.Linear(layers[-2], layers[-1]))
    model = nn.Sequential(*mods).to(getattr(torch, str(X.dtype))).train()
    flag = {"foreach": {"foreach": True}, "fused": {"fused": True}}[mode]
    opt = torch.optim.Adam(model.parameters(), lr=LR, **flag)
    tX, ty = torch.from_numpy(X), torch.from_numpy(y.astype(np.int64))

    def step():
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(tX), ty)
        loss.backward()
        opt.step()
        return loss
    return step


def _model_step(backend, layers, X, y, keep_prob):
    """fastdnn.MLP(...).train_step on ``backend`` ("numpy": the reference engine)."""
    from . import optim
    from .model import MLP
    model = MLP(list(layers), batchnorm=True, keep_prob=keep_prob, dtype=str(X.dtype),
                backend=backend, seed=0)
    optimizer = optim.Adam(lr=LR)
    return lambda: model.train_step(X, y, optimizer)


def training_step(layers: Sequence[int], m: int, backend: str, dtype: DTypeLike,
                  opts: argparse.Namespace, gemm: Sequence[Mapping[str, Any]]) -> list[Row]:
    """Rows per implementation: ms/step, samples/s, GEMM floor ms, other ms, vs NumPy.

    Parameters
    ----------
    layers : sequence of int
        The network's widths.
    m : int
        The batch size.
    backend : "numpy", "cpu" or "cuda"
        fastdnn's backend, timed beside the NumPy reference (and torch when installed).
    dtype : float32 or float64
    opts : argparse.Namespace
        repeat, min_time, settle.
    gemm : list of dict
        ``gemm_rates``' rows for the same layers and batch: the GEMM floor.

    Returns
    -------
    list of dict
        impl, ms, samples_per_s, gemm_ms, other_ms, gemm_share, GFLOPs, vs_numpy, note.
    """
    rng = np.random.default_rng(0)
    X = rng.standard_normal((m, layers[0])).astype(dtype)
    y = rng.integers(0, layers[-1], m)
    fns = {}
    if backend != "numpy":
        fns[f"fastdnn MLP.train_step ({backend})"] = _model_step(backend, layers, X, y, 0.8)
    fns["numpy reference"] = _model_step("numpy", layers, X, y, 0.8)
    if _torch() is not None:
        for mode in ("foreach", "fused"):
            fns[f"torch eager, Adam {mode}"] = _torch_step(layers, X, y, 0.8, mode)
    t = measure(fns, opts.repeat, opts.min_time, opts.settle)
    floor = {lib: sum(r[f"{lib}_us"] for r in gemm) / 1e3
             for lib in ("numpy", "torch") if f"{lib}_us" in gemm[0]}
    flops = sum(r["flops"] for r in gemm)
    base = t["numpy reference"]["median_s"]
    rows = []
    for impl, r in t.items():
        ms = r["median_s"] * 1e3
        gemm_ms = floor["torch" if impl.startswith("torch") else "numpy"]
        rows.append({"impl": impl, "ms": ms, "samples_per_s": m / r["median_s"],
                     "gemm_ms": gemm_ms, "other_ms": max(ms - gemm_ms, 0.0),
                     "gemm_share": gemm_ms / ms, "GFLOPs": flops / r["median_s"] / 1e9,
                     "vs_numpy": base / r["median_s"],
                     "note": "noisy: GEMMs alone took longer" if gemm_ms > ms else None})
    return rows


# --------------------------------------------------------------------------- helpers
def _kernels(backend):
    from .backend import kernels
    return kernels(backend)


def _is_cuda(K):
    return K.__name__.endswith(".cuda")


def _on_backend(K, arrays):
    if not _is_cuda(K):
        return arrays
    from numba import cuda
    return [cuda.to_device(a) for a in arrays]


def _synced(K, fn):
    """fn, followed by a device synchronisation on the CUDA backend."""
    if not _is_cuda(K):
        return fn
    from numba import cuda

    def call():
        fn()
        cuda.synchronize()
    return call


def _rel_error(got, ref):
    got = got.copy_to_host() if hasattr(got, "copy_to_host") else np.asarray(got)
    scale = np.max(np.abs(ref))
    diff = np.max(np.abs(got.astype(np.float64) - ref))
    return float(diff / scale) if scale else float(diff)


def _int(text):
    return int(float(text))


def _layers(text):
    try:
        layers = [int(w) for w in text.split(",")]
    except ValueError:
        layers = []
    if len(layers) < 2 or min(layers) < 1:
        raise argparse.ArgumentTypeError(
            f"--layers must be at least two positive comma-separated widths such as "
            f"784,512,256,10, got {text!r}")
    return layers


def _sections(text):
    names = [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in names if s not in SECTIONS]
    if bad or not names:
        raise argparse.ArgumentTypeError(
            f"--sections must be a comma-separated subset of {','.join(SECTIONS)}, "
            f"got {text!r}")
    return names


def _optimizers(text):
    names = [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in names if s not in OPTIMIZERS]
    if bad or not names:
        raise argparse.ArgumentTypeError(
            f"--optimizers must be a comma-separated subset of {','.join(OPTIMIZERS)}, "
            f"got {text!r}")
    return names


def _default_backend():
    try:
        _kernels("cpu")
        return "cpu"
    except Exception:  # fastdnn.cpu missing or broken: profile the reference instead
        return "numpy"


# --------------------------------------------------------------------------- output
def _table(rows, columns, title, out):
    """Print rows (dicts) as an aligned table; columns: (key, header, format or None)."""
    print(f"\n## {title}", file=out)
    cells = [[h for _, h, _ in columns]]
    for row in rows:
        cells.append(["-" if row.get(k) is None else (f.format(row[k]) if f else str(row[k]))
                      for k, _, f in columns])
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    for j, r in enumerate(cells):
        print("  ".join(c.rjust(w) if f else c.ljust(w)
                        for c, w, (_, _, f) in zip(r, widths, columns)).rstrip(), file=out)
        if j == 0:
            print("  ".join("-" * w for w in widths), file=out)


def report(result: Mapping[str, Any], out: IO[str] | None = None) -> None:
    """Print ``result`` (from profile()) as readable tables.

    Parameters
    ----------
    result : dict
        What ``profile`` returns.
    out : file, optional
        Default sys.stdout.
    """
    out = sys.stdout if out is None else out
    env, a = result["environment"], result["settings"]
    print(f"fastdnn profile: {env['cpu']}, {env['logical_cpus']} logical CPUs, "
          f"{a['threads']} threads", file=out)
    print(f"numpy {env['numpy']} (BLAS {env['blas']}), numba {env['numba']}, "
          f"torch {env['torch'] or 'not installed'}; backend {a['backend']}, {a['dtype']}",
          file=out)
    if env.get("env"):
        print("environment: " + " ".join(f"{k}={v}" for k, v in env["env"].items()), file=out)
    if "bandwidth" in result:
        bw = result["bandwidth"]
        rows = [dict(op=op, **v) for op, v in bw.items()]
        _table(rows, [("op", "op", None), ("elements", "elements", "{:,}"),
                      ("bytes_per_element", "B/elem", "{}"), ("GBps", "GB/s median", "{:.1f}"),
                      ("best_GBps", "GB/s best", "{:.1f}")],
               f"memory bandwidth: Numba prange, all {rows[0]['threads']} threads, float32 "
               "(STREAM bytes, write-allocate not counted)", out)
    if "gemm" in result:
        cols = [("gemm", "GEMM", None), ("shape", "shape", None),
                ("numpy_us", "numpy us", "{:.0f}"), ("numpy_GFLOPs", "numpy GFLOP/s", "{:.1f}")]
        if "torch_us" in result["gemm"][0]:
            cols += [("torch_us", "torch us", "{:.0f}"),
                     ("torch_GFLOPs", "torch GFLOP/s", "{:.1f}")]
        total = {k: sum(r[k] for r in result["gemm"]) for k in ("numpy_us", "torch_us", "flops")
                 if k in result["gemm"][0]}
        rows = result["gemm"] + [dict(gemm="all (step floor)", shape="-",
                                      numpy_GFLOPs=total["flops"] / total["numpy_us"] / 1e3,
                                      torch_GFLOPs=(total["flops"] / total["torch_us"] / 1e3
                                                    if "torch_us" in total else None),
                                      **{k: v for k, v in total.items() if k != "flops"})]
        _table(rows, cols, f"matrix products of one training step: layers "
                           f"{'-'.join(map(str, a['layers']))}, batch {a['batch']}, "
                           f"{a['dtype']}", out)
    if "optim" in result:
        fracs = [k for k in result["optim"][0] if k.startswith("frac_")]
        cols = [("optimizer", "optimizer", None), ("impl", "implementation", None),
                ("us", "us/step", "{:.0f}"), ("Mparams_per_s", "Mparam/s", "{:.0f}"),
                ("GBps", "GB/s", "{:.1f}")]
        cols += [(k, "x " + k[5:].replace("_", " "), "{:.2f}") for k in fracs]
        cols += [("vs_numpy", "vs numpy", "{:.1f}x"), ("rel_err_vs_ref", "rel err", "{:.1e}"),
                 ("note", "note", None)]
        size = np.dtype(a["dtype"]).itemsize
        per_param = ", ".join(f"{k} {ACCESSES[k] * size}" for k in a["optimizers"])
        _table(result["optim"], cols, f"optimizer updates: {a['params']:,} parameters, "
                                      f"{a['dtype']} (B/param: {per_param})", out)
        if "optim_tensors" in result:
            rows = result["optim_tensors"]
            _table(rows, cols, f"optimizer updates: the tensors of layers "
                               f"{'-'.join(map(str, a['layers']))} as lists "
                               f"({len(a['layers']) * 2 - 2} tensors, {rows[0]['params']:,} "
                               f"parameters; fastdnn rows: opt.step(params, grads)), "
                               f"{a['dtype']}", out)
    if "step" in result:
        _table(result["step"], [("impl", "implementation", None), ("ms", "ms/step", "{:.2f}"),
                                ("samples_per_s", "samples/s", "{:,.0f}"),
                                ("gemm_ms", "GEMM ms", "{:.2f}"),
                                ("other_ms", "other ms", "{:.2f}"),
                                ("gemm_share", "GEMM share", "{:.0%}"),
                                ("vs_numpy", "vs numpy", "{:.2f}x"), ("note", "note", None)],
               f"training step: layers {'-'.join(map(str, a['layers']))} (BatchNorm, ReLU, "
               f"dropout 0.8, softmax, Adam), batch {a['batch']}, {a['dtype']}; "
               "GEMM = the step's matrix products alone", out)
    print(f"\n{result['seconds']:.1f} s; medians of {a['repeat']} interleaved samples, "
          f"each >= {a['min_time'] * 1e3:.0f} ms", file=out)


def plot(result: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Bar charts of the measured sections into ``path`` (needs matplotlib).

    Parameters
    ----------
    result : dict
        What ``profile`` returns.
    path : str or path
        The image file (format from the extension).
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    panels = [s for s in ("optim", "gemm", "step") if s in result]
    fig, axes = plt.subplots(1, max(len(panels), 1), figsize=(6 * max(len(panels), 1), 4.5),
                             squeeze=False)
    for ax, section in zip(axes[0], panels):
        if section == "optim":
            rows = [r for r in result["optim"] if "GBps" in r]
            ax.barh([f"{r['optimizer']} {r['impl']}" for r in rows], [r["GBps"] for r in rows])
            for op, v in result.get("bandwidth", {}).items():
                ax.axvline(v["GBps"], ls="--", color="k" if op == "triad" else "grey",
                           label=f"{op} {v['GBps']:.0f} GB/s")
            ax.set_xlabel("GB/s moved")
            ax.set_title(f"optimizer updates, {result['settings']['params']:,} params")
            if "bandwidth" in result:
                ax.legend()
        elif section == "gemm":
            rows = result["gemm"]
            ax.barh([r["gemm"] for r in rows], [r["numpy_GFLOPs"] for r in rows], label="numpy")
            if "torch_GFLOPs" in rows[0]:
                ax.barh([r["gemm"] for r in rows], [r["torch_GFLOPs"] for r in rows],
                        height=0.4, label="torch")
            ax.set_xlabel("GFLOP/s")
            ax.set_title("matrix products of one step")
            ax.legend()
        else:
            rows = result["step"]
            names = [r["impl"] for r in rows]
            ax.barh(names, [r["gemm_ms"] for r in rows], label="matrix products")
            ax.barh(names, [r["other_ms"] for r in rows],
                    left=[r["gemm_ms"] for r in rows], label="everything else")
            ax.set_xlabel("ms per training step")
            ax.set_title(f"training step, batch {result['settings']['batch']}")
            ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --------------------------------------------------------------------------- command
def profile(opts: argparse.Namespace) -> dict[str, Any]:
    """Run the selected sections.

    Parameters
    ----------
    opts : argparse.Namespace
        The options ``configure`` adds, parsed (backend resolved).

    Returns
    -------
    dict
        What --json writes: environment, settings, the sections' results (bandwidth,
        optim, optim_tensors, gemm, step) and seconds.
    """
    start = time.perf_counter()
    set_threads(opts.threads)
    result = {"environment": environment(), "settings": {
        "layers": opts.layers, "batch": opts.batch, "params": opts.params,
        "backend": opts.backend, "dtype": opts.dtype, "threads": opts.threads,
        "optimizers": opts.optimizers, "tensors": opts.tensors, "repeat": opts.repeat, "min_time": opts.min_time,
        "settle": opts.settle, "stream_size": opts.stream_size}}
    if "bandwidth" in opts.sections or "optim" in opts.sections:
        result["bandwidth"] = stream_bandwidth(opts.stream_size, opts)
    if "optim" in opts.sections:
        triad = {"triad": result["bandwidth"]["triad"]["GBps"]}
        if opts.params < opts.stream_size:  # cache-resident sizes run above DRAM
            triad["same_size_triad"] = stream_bandwidth(
                opts.params, opts, ops=("triad",))["triad"]["GBps"]
        result["optim"] = optimizer_throughput(opts.params, opts.optimizers, opts.backend,
                                               opts.dtype, opts, triad)
        if opts.tensors:
            shapes = _tensor_shapes(opts.layers)
            n = sum(int(np.prod(s)) for s in shapes)
            result["optim_tensors"] = optimizer_throughput(
                n, opts.optimizers, opts.backend, opts.dtype, opts, triad, shapes=shapes)
    if "gemm" in opts.sections or "step" in opts.sections:
        result["gemm"] = gemm_rates(opts.layers, opts.batch, opts.dtype, opts)
    if "step" in opts.sections:
        result["step"] = training_step(opts.layers, opts.batch, opts.backend, opts.dtype,
                                       opts, result["gemm"])
    result["seconds"] = time.perf_counter() - start
    return result


def run(opts: argparse.Namespace) -> int:
    """Entry point of the ``profile`` subcommand.

    Parameters
    ----------
    opts : argparse.Namespace
        The options ``configure`` adds, parsed.

    Returns
    -------
    int
        The exit status: 0, or 2 when --plot lacks matplotlib or the backend cannot be
        used.
    """
    if opts.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            print("fastdnn profile: --plot needs matplotlib: pip install 'fastdnn[plot]'",
                  file=sys.stderr)
            return 2
    if opts.backend is None:
        opts.backend = _default_backend()
    try:
        _kernels(opts.backend)
    except (ImportError, RuntimeError) as exc:
        print(f"fastdnn profile: backend {opts.backend!r} is not usable here: {exc}",
              file=sys.stderr)
        return 2
    result = profile(opts)
    if opts.json == "-":
        json.dump(result, sys.stdout, indent=1, default=float)
        print()
    else:
        report(result)
        if opts.json:
            with open(opts.json, "w") as f:
                json.dump(result, f, indent=1, default=float)
            print(f"wrote {opts.json}")
    if opts.plot:
        plot(result, opts.plot)
        if opts.json != "-":
            print(f"wrote {opts.plot}")
    return 0


def configure(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the profile options to ``parser`` and make it run the profile.

    Parameters
    ----------
    parser : argparse.ArgumentParser

    Returns
    -------
    argparse.ArgumentParser
        ``parser``, its default ``run`` set to ``run``.
    """
    parser.add_argument("--layers", type=_layers, default=[784, 512, 256, 10],
                        help="network widths for the gemm and step sections "
                             "(default 784,512,256,10)")
    parser.add_argument("--batch", type=int, default=256, help="batch size (default 256)")
    parser.add_argument("--params", type=_int, default=1_000_000,
                        help="parameter count for the optimizer updates (default 1e6)")
    parser.add_argument("--optimizers", type=_optimizers, default=["sgd", "momentum",
                                                                   "rmsprop", "adam"],
                        help="comma-separated, from " + ",".join(OPTIMIZERS)
                             + " (default sgd,momentum,rmsprop,adam)")
    parser.add_argument("--tensors", action="store_true",
                        help="also update the per-layer tensors of --layers as lists (W1, "
                             "b1, W2, ...), as a model's optimizer sees them")
    parser.add_argument("--backend", choices=["numpy", "cpu", "cuda"], default=None,
                        help="fastdnn backend to profile (default cpu, or numpy if the "
                             "cpu kernels cannot be imported)")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--sections", type=_sections, default=list(SECTIONS),
                        help="comma-separated subset of " + ",".join(SECTIONS) + " (default all)")
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1),
                        help="threads for Numba, the BLAS and torch (default 2)")
    parser.add_argument("--stream-size", type=_int, default=2**26,
                        help="elements per array for the bandwidth test (default 2**26: "
                             "256 MB float32 arrays, beyond the caches)")
    parser.add_argument("--repeat", type=int, default=7,
                        help="interleaved samples per measurement (default 7)")
    parser.add_argument("--min-time", type=float, default=0.05,
                        help="seconds each sample's block lasts at least (default 0.05)")
    parser.add_argument("--settle", type=float, default=0.2,
                        help="untimed busy seconds before each block where BLAS runs "
                             "(default 0.2; 0.05 at most elsewhere)")
    parser.add_argument("--json", nargs="?", const="-", default=None, metavar="PATH",
                        help="write the results as JSON to PATH, or alone: JSON to stdout "
                             "instead of the tables")
    parser.add_argument("--plot", metavar="FILE.png", help="bar charts (needs matplotlib)")
    parser.set_defaults(run=run)
    return parser


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``profile`` on the ``fastdnn`` command's subparsers.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        What ``ArgumentParser.add_subparsers`` returns.

    Returns
    -------
    argparse.ArgumentParser
        The ``profile`` subcommand's parser.
    """
    return configure(subparsers.add_parser(
        "profile", help="measure this machine's limits and fastdnn against them",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m fastdnn.profile [options]``: the same as ``fastdnn profile``.

    Parameters
    ----------
    argv : sequence of str, optional
        The options; default ``sys.argv[1:]``.

    Returns
    -------
    int
        The exit status (see ``run``).
    """
    parser = configure(argparse.ArgumentParser(prog="fastdnn profile",
                                               description=__doc__.split("\n\n")[0]))
    opts = parser.parse_args(argv)
    return opts.run(opts)


if __name__ == "__main__":
    raise SystemExit(main())
