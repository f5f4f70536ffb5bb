"""Adam over a model's list of tensors in one call (fastdnn.cpu.optim._adam_tensors).

The six tensors of a 784-512-256-10 model (W and b of each layer, 535,818 float32
parameters), updated in one parallel call over blocks of all of them, inside
owned_threads() (all threads), against the same parameters as one flat buffer.

  flat             one flat buffer per array (a model's layout): the bound
  blocks=k         the list kernel with blocks of k elements over separately allocated
                   arrays (a user's params and grads; fastdnn.optim's state)
  state +48 B      blocks=4096 with m and v placed 48 bytes past the params' offset
                   within a 4 KiB page: a trap met while trying to pack the state
                   into one 64-byte-aligned buffer (1.6-1.8x slower; the processor
                   takes loads for dependent on stores 4 KiB apart, "4K aliasing")
  opt.step         fastdnn.optim.Adam().step(params, grads): the kernel plus the
                   checks, which run once while the same arrays come back

python kernels/optim_tensors.py
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _lab  # noqa: E402  (sets sys.path to the repo root)

import numpy as np  # noqa: E402
from numba import njit, prange  # noqa: E402

import fastdnn  # noqa: E402
from fastdnn.cpu import owned_threads  # noqa: E402
from fastdnn.cpu.optim import _adam, _adam_range  # noqa: E402

LAYERS = [784, 512, 256, 10]
BLOCKS = [1024, 4096, 16384, 65536]


def blocked(block):
    """The list kernel compiled with blocks of ``block`` elements."""
    @njit(parallel=True)
    def kernel(P, G, M, V, *scalars):
        n = len(P)
        first = np.zeros(n + 1, np.int64)
        for t in range(n):
            first[t + 1] = first[t] + (P[t].shape[0] + block - 1) // block
        for k in prange(first[n]):
            t = 0
            while first[t + 1] <= k:
                t += 1
            lo = (k - first[t]) * block
            hi = min(P[t].shape[0], lo + block)
            _adam_range(P[t][lo:hi], G[t][lo:hi], M[t][lo:hi], V[t][lo:hi], *scalars)
    return kernel


def main():
    rng = np.random.default_rng(0)
    shapes = [s for a, b in zip(LAYERS, LAYERS[1:]) for s in ((b, a), (b,))]
    params = [rng.standard_normal(s, dtype=np.float32) for s in shapes]
    grads = [0.01 * rng.standard_normal(s, dtype=np.float32) for s in shapes]
    n = sum(p.size for p in params)
    scalars = tuple(np.float32(x) for x in (1e-3, 0.9, 0.1, 0.999, 0.001, 1.0, 1e-8, 0, 1))

    def flat_views(arrays):
        return tuple(a.reshape(-1) for a in arrays)

    P, G = flat_views(params), flat_views(grads)
    state = [tuple(np.zeros(p.size, np.float32) for p in params) for _ in range(2)]

    def at_offset(p, delta):
        """Zeros like flat ``p``, placed ``delta`` bytes past p's offset in a 4 KiB page."""
        raw = np.zeros(p.size + 2048, np.float32)
        start = ((p.ctypes.data + delta - raw.ctypes.data) % 4096) // 4
        return raw[start:start + p.size]

    shifted = [tuple(at_offset(p, 48) for p in P) for _ in range(2)]
    flat = [np.concatenate(P), np.concatenate(G), np.zeros(n, np.float32),
            np.zeros(n, np.float32)]
    opt = fastdnn.Adam(lr=1e-3, backend="cpu")

    def owned(fn):
        def run():
            with owned_threads():
                fn()
        return run

    variants = {"flat": owned(lambda: _adam(*flat, *scalars))}
    for block in BLOCKS:
        kernel = blocked(block)
        variants[f"blocks={block}"] = owned(lambda k=kernel: k(P, G, *state, *scalars))
        if block == 4096:
            variants["state +48 B"] = owned(lambda k=kernel: k(P, G, *shifted, *scalars))
    variants["opt.step"] = owned(lambda: opt.step(params, grads))
    t = _lab.interleaved(variants, rounds=7, min_time=0.05, settle=0.02)
    rows = [[name, f"{t[name] * 1e6:.0f}", f"{28 * n / t[name] / 1e9:.0f}",
             f"{t[name] / t['flat']:.2f}"] for name in variants]
    print(f"{_lab.STAT} of 7 interleaved rounds; {len(shapes)} tensors, {n:,} float32 "
          "parameters, 28 B each (read p g m v, write p m v)")
    _lab.table(rows, ["variant", "us", "GB/s", "x flat"])


if __name__ == "__main__":
    main()
