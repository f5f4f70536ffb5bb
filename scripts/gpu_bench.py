"""GPU benchmark of fastdnn.cuda: optimizer bandwidth and an MLP training step.

Prints (1) Adam / RMSprop / momentum over N float32 parameters in GB/s next to the
device-to-device copy bandwidth measured with CuPy, and torch.optim.Adam(fused=True)
when PyTorch is installed; (2) one 784-512-256-10 BatchNorm + dropout + Adam training
step at batch 256 and 4096, through the
device-resident model (fastdnn.MLP, backend="cuda"): ``train_step`` on a host batch (the
batch in, the loss out: one synchronisation per step) and ``fit`` on a training set kept
on the device (loss read once per epoch); and PyTorch eager on the same GPU, the same
network (Linear without bias -> BatchNorm1d -> ReLU -> Dropout(0.2), twice, then
Linear), torch.optim.Adam, with its batch already on the GPU and copied from the host.

Usage: python scripts/gpu_bench.py [--params 16000000] [--repeat 20]
       python scripts/gpu_bench.py --smoke     (tiny sizes: a CUDA-simulator run-through)
Timings: wall clock over repeated calls after a warm-up (compilation) call, with the GPU
synchronised before and after.
"""
import argparse
import sys
import time

import numpy as np


def timed(fn, repeat, sync):
    fn()
    sync()
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    sync()
    return (time.perf_counter() - t0) / repeat


def optimizer_bandwidth(n, repeat):
    from numba import cuda

    import fastdnn.cuda as fc
    sync = cuda.synchronize
    rng = np.random.default_rng(0)
    p = cuda.to_device(rng.standard_normal(n, dtype=np.float32))
    g = cuda.to_device(rng.standard_normal(n, dtype=np.float32))
    s1 = cuda.to_device(np.zeros(n, np.float32))
    s2 = cuda.to_device(np.zeros(n, np.float32))
    rows = []
    try:
        import cupy
        a = cupy.asarray(p)
        b = cupy.empty_like(a)
        t = timed(lambda: b.__setitem__(Ellipsis, a), repeat, sync)
        rows.append(("device-to-device copy (CuPy)", t, 2 * 4 * n))
    except Exception as exc:  # pragma: no cover
        print(f"(no CuPy copy bandwidth: {exc})")
    step = [0]

    def adam():
        step[0] += 1
        fc.adam_update(p, g, s1, s2, step[0], 1e-3)

    rows.append(("fastdnn.cuda adam_update", timed(adam, repeat, sync), 7 * 4 * n))
    rows.append(("fastdnn.cuda rmsprop_update",
                 timed(lambda: fc.rmsprop_update(p, g, s2, 1e-3), repeat, sync), 5 * 4 * n))
    rows.append(("fastdnn.cuda momentum_update",
                 timed(lambda: fc.momentum_update(p, g, s1, 1e-3), repeat, sync), 5 * 4 * n))
    try:
        import torch
        tp = torch.nn.Parameter(torch.randn(n, device="cuda"))
        tp.grad = torch.randn(n, device="cuda")
        opt = torch.optim.Adam([tp], lr=1e-3, fused=True)
        rows.append(("torch.optim.Adam(fused=True)",
                     timed(opt.step, repeat, torch.cuda.synchronize), 7 * 4 * n))
    except Exception as exc:
        print(f"(torch fused Adam skipped: {type(exc).__name__}: {exc})")
    print(f"\nOptimizer step over {n:.3g} float32 parameters ({repeat} repeats)")
    print(f"{'what':34s} {'ms':>9s} {'GB/s':>9s}")
    for name, t, nbytes in rows:
        print(f"{name:34s} {t * 1e3:9.3f} {nbytes / t / 1e9:9.1f}")


def training_step(batches, repeat, sizes=(784, 512, 256, 10)):
    name = "-".join(map(str, sizes))
    print(f"\n{name} BatchNorm + ReLU + dropout(0.8) + Adam, float32, one training step")
    print(f"{'what':44s} {'batch':>6s} {'ms':>9s} {'samples/s':>11s}")
    for m in batches:
        model_step(m, repeat, sizes)
        torch_step(m, repeat, sizes)


def _row(what, m, t):
    print(f"{what:44s} {m:6d} {t * 1e3:9.3f} {m / t:11.0f}")


def model_step(m, repeat, sizes):
    """fastdnn.MLP on backend="cuda": train_step on a host batch, and fit's steps on a
    device-resident training set (skipped with the reason on failure)."""
    try:
        import fastdnn
        from numba import cuda
        rng = np.random.default_rng(2)
        X = rng.standard_normal((m, sizes[0])).astype(np.float32)
        y = rng.integers(0, sizes[-1], m)
        model = fastdnn.MLP(list(sizes), batchnorm=True, keep_prob=0.8, backend="cuda",
                            seed=0)
        opt = fastdnn.Adam()
        t = timed(lambda: model.train_step(X, y, opt), repeat, cuda.synchronize)
        _row("fastdnn.MLP cuda train_step (host batch)", m, t)
        steps = max(2, repeat)
        Xs = rng.standard_normal((m * steps, sizes[0])).astype(np.float32)
        ys = rng.integers(0, sizes[-1], m * steps)
        model.fit(Xs, ys, batch_size=m, epochs=1, verbose=0)    # warm-up (compilation)
        cuda.synchronize()
        history = model.fit(Xs, ys, batch_size=m, epochs=1, verbose=0)
        cuda.synchronize()
        _row("fastdnn.MLP cuda fit step (data on device)", m,
             history.history["epoch_time"][0] / steps)
    except Exception as exc:
        print(f"(fastdnn.MLP on backend='cuda' skipped: {type(exc).__name__}: "
              f"{str(exc)[:150]})")


def torch_step(m, repeat, sizes, keep_prob=0.8):
    """PyTorch eager on the GPU: the same network and optimizer (skipped without it)."""
    try:
        import torch
        if not torch.cuda.is_available():
            raise RuntimeError("torch sees no GPU")
        torch.manual_seed(0)
        layers = []
        for a, b in zip(sizes[:-2], sizes[1:-1]):
            layers += [torch.nn.Linear(a, b, bias=False), torch.nn.BatchNorm1d(b),
                       torch.nn.ReLU(), torch.nn.Dropout(1 - keep_prob)]
        layers.append(torch.nn.Linear(sizes[-2], sizes[-1]))
        net = torch.nn.Sequential(*layers).cuda().train()
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        rng = np.random.default_rng(3)
        X = rng.standard_normal((m, sizes[0])).astype(np.float32)
        y = rng.integers(0, sizes[-1], m)
        Xd, yd = torch.from_numpy(X).cuda(), torch.from_numpy(y).cuda()

        def step(Xb, yb):
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(net(Xb), yb)
            loss.backward()
            opt.step()
            return loss

        sync = torch.cuda.synchronize
        _row("torch eager step (batch on GPU)", m, timed(lambda: step(Xd, yd), repeat, sync))
        _row("torch eager step (host batch, loss.item())", m, timed(
            lambda: step(torch.from_numpy(X).cuda(), torch.from_numpy(y).cuda()).item(),
            repeat, sync))
    except Exception as exc:
        print(f"(torch eager skipped: {type(exc).__name__}: {str(exc)[:150]})")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=float, default=1.6e7)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--batches", type=int, nargs="+", default=[256, 4096])
    parser.add_argument("--sizes", type=int, nargs="+", default=[784, 512, 256, 10],
                        help="layer widths of the training-step network")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes, one repeat: checks the script runs (simulator)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.params, args.repeat, args.batches, args.sizes = 300, 2, [5], [6, 5, 4, 3]
    from fastdnn.backend import cuda_available
    if not cuda_available():
        sys.exit("gpu_bench.py needs an NVIDIA GPU with numba-cuda")
    from numba import cuda
    get = getattr(cuda, "get_current_device", None)   # (absent from the simulator)
    name = getattr(get(), "name", "CUDA simulator") if get else "CUDA simulator"
    print(f"device: {name.decode() if isinstance(name, bytes) else name}")
    optimizer_bandwidth(int(args.params), args.repeat)
    training_step(args.batches, args.repeat, tuple(args.sizes))


if __name__ == "__main__":
    main()
