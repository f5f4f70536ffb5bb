"""A damaged compile cache is recompiled with a warning, never fatal (issue #15).

Every run happens in a fresh process with NUMBA_CACHE_DIR set to a directory of the
test's own: the first fills it, then files are truncated or overwritten, and the next
run must print what the first printed and warn; the run after it must be silent (the
entry was written afresh). A small module of our own makes the cheap cases; one model
(a cold fill ~15 s) the cases that need the engine: link records, callers, and
everything damaged at once under two processes.
"""
import glob
import importlib
import inspect
import os
import pkgutil
import random
import shutil
import subprocess
import sys
import textwrap

import pytest

import fastdnn
from fastdnn import config
from fastdnn._cache import has_disk_cache, is_hardened

pytestmark = pytest.mark.skipif(not config.CACHE, reason="FASTDNN_NO_CACHE is set")

WARNING = "RuntimeWarning: fastdnn:"


def _env(cache_dir, **extra):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache_dir), **extra}
    env.pop("FASTDNN_NO_CACHE", None)
    return env


def _start(code, cache_dir, **extra):
    return subprocess.Popen([sys.executable, "-c", code], env=_env(cache_dir, **extra),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(process, timeout=300):
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, f"exit status {process.returncode}\n{err[-3000:]}"
    return out.strip().splitlines()[-1], err


def _run(code, cache_dir, **extra):
    return _finish(_start(code, cache_dir, **extra))


def _damage(cache_dir, pattern, how):
    """Truncate to half ("half"), empty ("empty") or overwrite with random bytes
    ("random") every file under ``cache_dir`` matching ``pattern``; returns their names."""
    paths = sorted(glob.glob(os.path.join(cache_dir, "**", pattern), recursive=True))
    assert paths, f"no cache file matches {pattern}"
    for path in paths:
        with open(path, "rb") as f:
            data = f.read()
        data = {"half": data[:len(data) // 2], "empty": b"",
                "random": random.Random(path).randbytes(len(data))}[how]
        with open(path, "wb") as f:
            f.write(data)
    return [os.path.basename(p) for p in paths]


# ----------------------------------------------------------------- a small module
_KERNELS = '''
from numba import njit, types
from fastdnn._cache import harden_caches, hardened_cfunc

@njit(cache=True)
def double_plus_one(x):
    return 2 * x + 1

@hardened_cfunc(types.float64(types.float64), cache=True)
def halve(x):
    return x / 2

harden_caches(__name__)
'''


@pytest.fixture
def kernels(tmp_path):
    (tmp_path / "cache_fault_kernels.py").write_text(_KERNELS)
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        import cache_fault_kernels as k
        print(k.double_plus_one(3), k.halve(3.0))
    """)
    cache_dir = tmp_path / "cache"
    assert _run(code, cache_dir) == ("7 1.5", "")
    return code, cache_dir


@pytest.mark.parametrize("index, data", [("half", None), (None, "half"),
                                         ("empty", "random")])
def test_damaged_entries_of_a_function_and_a_cfunc_are_recompiled(kernels, index, data):
    code, cache_dir = kernels
    for pattern, how in (("*.nbi", index), ("*.nbc", data)):
        if how:
            _damage(cache_dir, pattern, how)
    out, err = _run(code, cache_dir)
    assert out == "7 1.5"
    for name in ("double_plus_one", "halve"):
        assert f"the compile cache entry of cache_fault_kernels.{name}" in err, err
    assert "damaged" in err
    assert _run(code, cache_dir) == ("7 1.5", "")   # written afresh


def test_processes_loading_one_damaged_entry_at_once_all_succeed(kernels):
    """Each process removes the damaged files (or finds them removed or already
    rewritten by another) and saves its own entry; none fails, none leaves a torn file."""
    code, cache_dir = kernels
    _damage(cache_dir, "*.nbi", "half")
    processes = [_start(code, cache_dir) for _ in range(6)]
    assert [_finish(p)[0] for p in processes] == ["7 1.5"] * 6
    assert _run(code, cache_dir) == ("7 1.5", "")


# -------------------------------------------------------------------------- a model
_MODEL = """
import os
import numpy as np
import fastdnn
if os.environ.get("TEST_NO_COMPILE_AHEAD"):
    # so that link records are read by _link.prepare, not rewritten by compile_ahead
    # (it runs whenever fastdnn's sources changed since its marker was written)
    import fastdnn.engine._link
    fastdnn.engine._link.compile_ahead = lambda jobs: None
rng = np.random.default_rng(0)
X = rng.standard_normal((16, 4)).astype(np.float32)
y = rng.integers(0, 3, 16)
model = fastdnn.MLP([4, 8, 3], backend="cpu", seed=0)
model.fit(X, y, epochs=1, verbose=0)
print(model.predict_proba(X).tolist())
"""


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    """A cache directory a model's training and prediction filled, and what it printed."""
    cache_dir = tmp_path_factory.mktemp("filled")
    out, _ = _run(_MODEL, cache_dir)
    return cache_dir, out


@pytest.fixture
def model_cache(filled, tmp_path):
    cache_dir = tmp_path / "cache"
    shutil.copytree(filled[0], cache_dir)
    return cache_dir, filled[1]


@pytest.mark.slow
@pytest.mark.parametrize("pattern, how, warned", [
    ("steps.gather-*.nbi", "half", "the compile cache entry of fastdnn.engine.steps.gather"),
    ("steps.optimize-*.nbc", "random",
     "the compile cache entry of fastdnn.engine.steps.optimize"),
    ("fastdnn_optimize_*.fastdnn-link", "half", "the link record"),
    ("fastdnn_gather_*.fastdnn-link", "random", "the link record"),
])
def test_a_damaged_engine_entry_is_recompiled(model_cache, pattern, how, warned):
    cache_dir, expected = model_cache
    _damage(cache_dir, pattern, how)
    out, err = _run(_MODEL, cache_dir, TEST_NO_COMPILE_AHEAD="1")
    assert out == expected
    assert warned in err, err
    if "link" in pattern:   # its callers' cached code calls the symbol it registered
        assert "which no link record provides; it is recompiled" in err, err
    out, err = _run(_MODEL, cache_dir)
    assert (out, WARNING in err) == (expected, False), err


@pytest.mark.slow
def test_two_processes_at_once_over_a_cache_damaged_everywhere(model_cache):
    """Every index, data file and link record truncated: both processes (each with
    its compile-ahead helper) recompile everything into the same directory at once."""
    cache_dir, expected = model_cache
    _damage(cache_dir, "*.nb[ic]", "half")
    _damage(cache_dir, "*.fastdnn-link", "half")
    first, second = _start(_MODEL, cache_dir), _start(_MODEL, cache_dir)
    for process in (first, second):
        out, err = _finish(process)
        assert out == expected
        assert WARNING in err and "damaged" in err, err
    out, err = _run(_MODEL, cache_dir)
    assert (out, WARNING in err) == (expected, False), err


# ------------------------------------------------------------ nothing is forgotten
def _fastdnn_modules():
    """Every fastdnn module that imports here (fastdnn.cuda's do without a GPU; a
    module whose optional dependency is missing is left out)."""
    modules = [fastdnn]
    for info in pkgutil.walk_packages(fastdnn.__path__, "fastdnn."):
        if info.name.endswith("__main__"):
            continue
        try:
            modules.append(importlib.import_module(info.name))
        except ImportError:
            pass
    return modules


def test_every_cached_compiled_function_is_hardened(monkeypatch):
    """At the top level of every module, made by the kernel factories, and any other
    fastdnn function with a disk cache alive in this process."""
    import gc

    from fastdnn.cpu import batchnorm, dense, losses
    from fastdnn.search import caviar
    checked = []

    def check(function, where):
        if has_disk_cache(function):
            checked.append(function)
            assert is_hardened(function), f"{where}: {function} has an unhardened disk cache"

    for module in _fastdnn_modules():
        for name, value in vars(module).items():
            if type(value).__module__.startswith("numba."):
                check(getattr(value, "dispatcher", value), f"{module.__name__}.{name}")
    assert len(checked) > 50   # the walk found the engine's, the kernels' and formulas'

    # kernel factories (closures over compile-time constants; creating them compiles
    # nothing): every argument 0 is a valid choice for each
    for module in (batchnorm, dense, losses):
        for name, value in vars(module).items():
            if hasattr(value, "cache_info") and getattr(value, "__module__", "") == \
                    module.__name__:
                n_args = len(inspect.signature(value).parameters)
                check(value(*[0] * n_args), f"{module.__name__}.{name}(0, ...)")
    monkeypatch.setattr(caviar, "USE_NUMBA_ADAM", True)
    monkeypatch.setattr(caviar, "_ADAM", [])
    check(caviar._adam_kernel(), "fastdnn.search.caviar._adam_kernel()")
    from fastdnn import profile
    for kernel in profile._stream_kernels():
        check(kernel, f"fastdnn.profile.{kernel.py_func.__name__}")

    # whatever else this process made (the blas fallback cfunc, kernels of earlier tests)
    from numba.core.ccallback import CFunc
    from numba.core.dispatcher import Dispatcher
    for obj in gc.get_objects():
        if isinstance(obj, (Dispatcher, CFunc)):
            py_func = getattr(obj, "py_func", None) or obj.__wrapped__
            module = py_func.__module__ or ""
            if module.startswith("fastdnn."):
                check(obj, f"{module}.{py_func.__qualname__}")
