"""What happens on fork (the README says it): a model trains and predicts in a forked
child; after fastdnn.cpu's parallel kernels ran on Numba's OpenMP layer, GNU OpenMP kills
a forked child, and the parent is told why before it forks."""
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork")


def _run(code):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=300)


def test_a_model_trains_and_predicts_in_a_forked_child():
    out = _run("""
        import multiprocessing as mp
        import numpy as np
        import fastdnn
        X = np.random.default_rng(0).standard_normal((200, 6)); y = np.arange(200) % 3
        m = fastdnn.MLP([6, 16, 3], backend="cpu", seed=0)
        m.fit(X, y, epochs=2, verbose=0)
        def child(q):
            m.fit(X, y, epochs=1, verbose=0)
            q.put(m.predict(X).shape)
        ctx = mp.get_context("fork"); q = ctx.Queue()
        p = ctx.Process(target=child, args=(q,)); p.start(); p.join(120)
        print(p.exitcode, q.get(timeout=5))
    """)
    assert out.stdout.strip() == "0 (200,)", out.stderr


def test_a_fork_after_openmp_kernels_is_explained_in_the_parent():
    out = _run("""
        import os, numba, numpy as np
        from fastdnn import cpu
        cpu.activation_forward(np.ones((4000, 300)), "relu")
        print(numba.threading_layer(), flush=True)
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
    """)
    if out.stdout.strip() != "omp":
        pytest.skip(f"Numba runs on the {out.stdout.strip()!r} threading layer here")
    assert "GNU OpenMP terminates the child" in out.stderr
    assert "get_context('spawn')" in out.stderr
