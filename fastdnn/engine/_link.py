"""Compiled functions that their callers reach through a symbol, not by linking.

Numba links the whole call tree of a compiled function into every caller and optimizes
it again there, so a function called from k levels up is compiled k + 1 times: the
engine's first cold step took 25 s, most of it re-optimizing the same work items in
every function above them. A function wrapped by ``separate`` is compiled once (and
cached on disk like any other); its callers call it through a named symbol, registered
when it is compiled or loaded. They never contain its code.

A caller loaded from the disk cache in a new process needs those symbols before it is
loaded: each one compiled is recorded next to Numba's cache of its function (one small
file per signature, written atomically), and every cache load of a function of the
modules given to ``guard`` first loads the recorded ones it has not loaded yet (another
process may have compiled new ones since). A caller whose cached code calls a symbol that
no record provides (its record was removed, or damaged: it is then removed with a
warning) would call address 0 once loaded; it is compiled instead, which compiles or
loads its callees and records them again.
"""
import glob
import hashlib
import inspect
import os
import pickle
import re
import threading
import warnings

import llvmlite.binding as llvm
import numpy as np
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from .._cache import entry_file, harden_cache, remove_if_damaged
from .._files import atomic_replace

_SEPARATE = []         # the dispatchers wrapped by ``separate``
_loaded = {}           # symbol -> address, in this process
_loading = set()       # symbols being loaded (their callees load first, re-entrantly)
_lock = threading.RLock()
_SUFFIX = ".fastdnn-link"
_DAMAGED = object()    # what _read_record returns for a damaged record


def _symbol(dispatcher, argtys):
    key = f"{dispatcher.py_func.__module__}.{dispatcher.py_func.__qualname__}{argtys}"
    digest = hashlib.sha1(key.encode()).hexdigest()[:16]
    return f"fastdnn_{dispatcher.py_func.__name__}_{digest}"


def _cache_folder(dispatcher):
    cache = getattr(dispatcher, "_cache", None)
    return getattr(cache, "_cache_path", None)


def load(dispatcher, argtys):
    """Compile (or load from the cache) ``dispatcher`` for ``argtys``, register its
    symbol and record the signature for later processes; returns the symbol."""
    symbol = _symbol(dispatcher, argtys)
    with _lock:
        if symbol in _loaded or symbol in _loading:
            return symbol
        _loading.add(symbol)
        try:
            dispatcher.compile(argtys)
        finally:
            _loading.discard(symbol)
        result = dispatcher.overloads[argtys]
        address = result.library.get_pointer_to_function(result.fndesc.llvm_func_name)
        llvm.add_symbol(symbol, address)
        _loaded[symbol] = address
        _record(dispatcher, symbol, argtys)
    return symbol


def _record(dispatcher, symbol, argtys):
    folder = _cache_folder(dispatcher)
    if folder is None:   # not cached: callers are compiled in this process, never loaded
        return
    path = os.path.join(folder, symbol + _SUFFIX)
    recorded = _read_record(path, dispatcher, symbol)
    if recorded is _DAMAGED:
        _warn_damaged_record(path, "rewritten")
    elif recorded is not None:
        return
    try:
        with atomic_replace(path) as tmp, open(tmp, "wb") as f:
            pickle.dump(argtys, f)
    except OSError:
        pass


def prepare():
    """Load every recorded signature of every separate function not loaded yet."""
    with _lock:
        for dispatcher in _SEPARATE:
            folder = _cache_folder(dispatcher)
            if folder is None:
                continue
            prefix = f"fastdnn_{dispatcher.py_func.__name__}_"
            for path in glob.glob(os.path.join(folder, prefix + "*" + _SUFFIX)):
                symbol = os.path.basename(path)[:-len(_SUFFIX)]
                if symbol in _loaded or symbol in _loading:
                    continue
                argtys = _read_record(path, dispatcher, symbol)
                if argtys is _DAMAGED:
                    if remove_if_damaged(path, lambda: _read_record(
                            path, dispatcher, symbol) is _DAMAGED):
                        _warn_damaged_record(path, "removed")
                elif argtys is not None:
                    load(dispatcher, argtys)


def _read_record(path, dispatcher, symbol):
    """The argument types recorded in ``path`` for ``symbol``: None when there is no
    record, _DAMAGED when it is truncated, garbled or not a record of that symbol."""
    try:
        with open(path, "rb") as f:
            argtys = pickle.load(f)
    except FileNotFoundError:
        return None
    except Exception:  # noqa: BLE001 - whatever unpickling a damaged file raises
        return _DAMAGED
    if (isinstance(argtys, tuple) and all(isinstance(t, types.Type) for t in argtys)
            and _symbol(dispatcher, argtys) == symbol):
        return argtys
    return _DAMAGED


def _warn_damaged_record(path, done):
    warnings.warn(f"fastdnn: the link record {path} was damaged; it is {done} and the "
                  "functions that call it are recompiled where needed", RuntimeWarning)


def separate(dispatcher):
    """A stand-in for the compiled function ``dispatcher`` (which returns None) that
    compiled callers call through a symbol: compiled on its own, never linked in."""
    _SEPARATE.append(dispatcher)
    _guard_cache(dispatcher)   # it may call separate functions itself

    def typer(typingctx, *args):
        args = tuple(types.unliteral(a) for a in args)
        symbol = load(dispatcher, args)

        def codegen(context, builder, signature, llargs):
            fnty = context.call_conv.get_function_type(types.none, signature.args)
            fn = cgutils.get_or_insert_function(builder.module, fnty, symbol)
            context.call_conv.call_function(builder, fn, types.none, signature.args,
                                            llargs)
            return context.get_dummy_value()
        return types.none(*args), codegen

    # an intrinsic with the function's own parameters (intrinsics take no *args)
    names = ", ".join(inspect.signature(dispatcher.py_func).parameters)
    scope = {"typer": typer}
    exec(f"def {dispatcher.py_func.__name__}(typingctx, {names}):\n"
         f"    return typer(typingctx, {names})", scope)
    call = intrinsic(scope[dispatcher.py_func.__name__])
    call.dispatcher = dispatcher
    return call


def guard(module):
    """Make every compiled function of ``module`` load the recorded separate functions
    before it loads itself from the disk cache (its code may call them)."""
    from numba.core.registry import CPUDispatcher
    for value in vars(module).values():
        if isinstance(value, CPUDispatcher):
            _guard_cache(value)


def _guard_cache(dispatcher):
    harden_cache(dispatcher)   # first, so that it wraps Numba's own loader
    cache = getattr(dispatcher, "_cache", None)
    if cache is not None and not getattr(cache, "_fastdnn_guarded", False):
        cache.load_overload = _guarded(dispatcher, cache.load_overload)
        cache._fastdnn_guarded = True


def _guarded(dispatcher, load_overload):
    def load_overload_after_prepare(sig, target_context):
        prepare()
        unknown = _unregistered_callees(dispatcher, sig, target_context)
        if unknown:
            name = f"{dispatcher.py_func.__module__}.{dispatcher.py_func.__qualname__}"
            warnings.warn(f"fastdnn: the cached code of {name} calls "
                          f"{', '.join(sorted(unknown))}, which no link record provides; "
                          "it is recompiled", RuntimeWarning)
            return None
        return load_overload(sig, target_context)
    return load_overload_after_prepare


def _unregistered_callees(dispatcher, sig, target_context):
    """The symbols of separate functions that the cache entry of ``dispatcher`` for
    ``sig`` calls and no record has registered (their names are in its machine code)."""
    path = entry_file(dispatcher, sig, target_context)
    if path is None or not _SEPARATE:
        return set()
    names = "|".join(sorted({re.escape(d.py_func.__name__) for d in _SEPARATE}))
    try:
        with open(path, "rb") as f:
            code = f.read()
    except OSError:
        return set()
    found = re.findall(rb"fastdnn_(?:%s)_[0-9a-f]{16}" % names.encode(), code)
    return {s.decode() for s in found} - set(_loaded) - _loading


# ----------------------------------------------------------------------------- ahead
# A cold cache costs the first training step ~20 s of compiling on one core. The
# separately compiled functions are independent units, so a helper process compiles a
# share of them into the disk cache while this process compiles the rest; then every
# caller loads them from there. A marker per set of signatures (with the sources' and
# Numba's versions) says the set was compiled, so a warm start starts no helper.

_done_here = set()
WAIT_S = 300   # the longest this process waits for the helper before going on alone


def compile_ahead(jobs):
    """Compile ``jobs`` [(separate function, its Python arguments)] now: the first half
    here, the second in a helper process at the same time. Does nothing when they were
    compiled before (here, or into the disk cache by any process)."""
    # Typing every argument costs ~1.7 ms (a model's first run of each batch size);
    # what decides their Numba types is cheaper to read, and enough to know a set seen.
    seen = tuple((fn.dispatcher.py_func.__qualname__, _type_facts(args)) for fn, args in jobs)
    if seen in _done_here:
        return
    from numba import typeof
    jobs = [(fn, tuple(typeof(a) for a in args)) for fn, args in jobs]
    key = hashlib.sha1(repr([(fn.dispatcher.py_func.__qualname__, argtys)
                             for fn, argtys in jobs] + [_versions()]).encode()).hexdigest()
    if key not in _done_here:
        _compile_in_halves(jobs, key)
    _done_here.update((key, seen))


def _compile_in_halves(jobs, key):
    """Unless the marker of ``key`` says the set is in the disk cache: the first half of
    jobs [(function, argument types)] here, the second in a helper process."""
    marker = _marker(jobs[0][0].dispatcher, key)
    if marker is None or os.path.exists(marker) or len(jobs) < 2 or (os.cpu_count() or 1) < 2:
        return
    half = len(jobs) // 2
    helper = _Helper(jobs[half:])
    for fn, argtys in jobs[:half]:
        load(fn.dispatcher, argtys)
    if helper.wait():
        for fn, argtys in jobs[half:]:
            load(fn.dispatcher, argtys)   # from the cache now
        try:
            with open(marker, "w") as f:
                f.write("compiled\n")
        except OSError:
            pass


def _type_facts(value):
    """What Numba's typeof reads from the engine's arguments: an array's dtype, ndim,
    layout, writeability and alignment; a tuple's items; a scalar's type."""
    if isinstance(value, np.ndarray):
        flags = value.flags
        return (value.dtype.str, value.ndim, flags.c_contiguous, flags.f_contiguous,
                flags.writeable, flags.aligned)
    if isinstance(value, tuple):
        return tuple(_type_facts(v) for v in value)
    if isinstance(value, int) and not isinstance(value, bool):
        return int, value >= 2**63 or value < -2**63   # typeof: int64 or wider
    return type(value)


def _versions():
    import numba
    sources = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    stamps = [(name, os.stat(os.path.join(root, name)).st_mtime_ns)
              for root in (sources, os.path.join(sources, "engine"),
                           os.path.join(sources, "cpu"))
              for name in sorted(os.listdir(root)) if name.endswith(".py")]
    return numba.__version__, stamps


def _marker(dispatcher, key):
    folder = _cache_folder(dispatcher)
    if folder is None or not os.access(folder, os.W_OK):
        return None
    return os.path.join(folder, f"fastdnn-ahead-{key[:20]}.marker")


class _Helper:
    """A process that compiles some separate functions into the disk cache. It does not
    run from the working directory (a module there named like one it imports would be
    run), and any failure costs only the time waited."""

    def __init__(self, jobs):
        import subprocess
        import sys
        package_root = os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.abspath(__file__))))
        code = ("import sys; sys.path[:] = [p for p in sys.path if p not in ('', '.')];"
                "from fastdnn.engine._link import _helper_main; _helper_main()")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [package_root] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
        jobs = [(fn.dispatcher.py_func.__module__, fn.dispatcher.py_func.__name__, argtys)
                for fn, argtys in jobs]
        try:
            self.process = subprocess.Popen([sys.executable, "-c", code], env=env,
                                            stdin=subprocess.PIPE,
                                            stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL,
                                            cwd=package_root)
            self.process.stdin.write(pickle.dumps(jobs))
            self.process.stdin.close()
        except (OSError, pickle.PicklingError):
            self.process = None

    def wait(self):
        """True when the helper compiled its share."""
        import subprocess
        if self.process is None:
            return False
        try:
            return self.process.wait(WAIT_S) == 0
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return False


def _helper_main():
    import importlib
    import sys
    for module, name, argtys in pickle.loads(sys.stdin.buffer.read()):
        load(getattr(importlib.import_module(module), name).dispatcher, argtys)
