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
process may have compiled new ones since).
"""
import glob
import hashlib
import inspect
import os
import pickle
import tempfile
import threading

import llvmlite.binding as llvm
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

_SEPARATE = []         # the dispatchers wrapped by ``separate``
_loaded = {}           # symbol -> address, in this process
_loading = set()       # symbols being loaded (their callees load first, re-entrantly)
_lock = threading.RLock()
_SUFFIX = ".fastdnn-link"


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
    if os.path.exists(path):
        return
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            pickle.dump(argtys, f)
        os.replace(tmp, path)
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
                try:
                    with open(path, "rb") as f:
                        argtys = pickle.load(f)
                except Exception:  # noqa: BLE001 - a torn or foreign file: skip it
                    continue
                load(dispatcher, argtys)


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
    cache = getattr(dispatcher, "_cache", None)
    if cache is not None and not getattr(cache, "_fastdnn_guarded", False):
        cache.load_overload = _guarded(cache.load_overload)
        cache._fastdnn_guarded = True


def _guarded(load_overload):
    def load_overload_after_prepare(*args, **kwargs):
        prepare()
        return load_overload(*args, **kwargs)
    return load_overload_after_prepare
