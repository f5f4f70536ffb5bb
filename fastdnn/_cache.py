"""A damaged entry of Numba's disk cache is recompiled, never fatal.

Numba keeps each cached function as an index (``.nbi``: signature -> data file) and one
data file per signature (``.nbc``), both pickles. It writes them whole (a temporary file
renamed over the old one), yet a crash before the data reached the disk, a full disk or a
bad copy can leave one truncated or garbled, and Numba then raises from its unpickler on
every later load: every process fails its first step. ``harden_cache`` gives one
function's cache object a loader that takes such an entry for a miss instead: it warns,
removes the damaged file and lets Numba compile and save the function afresh.

Only the cache object of each fastdnn function is changed (its own ``load_overload`` and
``save_overload``), never Numba's classes, which other libraries share. What Numba's
loader raises was found by damaging entries: a truncated file UnpicklingError ("pickle
data was truncated"), an empty one EOFError, random bytes UnpicklingError or ValueError
("unregistered extension code"), flipped bits also UnicodeDecodeError or AttributeError
(a garbled name). Some flipped bits inside the machine code pass the unpickler and abort
the process in LLVM; nothing short of a checksum of every entry would catch those.
"""
import os
import pickle
import sys
import warnings

# What unpickling or rebuilding a damaged entry raises (the observed ones above, and
# those the pickle module documents: ImportError, IndexError).
DAMAGE_ERRORS = (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
                 KeyError, IndexError, ImportError, OverflowError)


def harden_caches(module_name):
    """Harden the disk cache of every compiled function at the top level of the module
    ``module_name`` (call it at the bottom of a module that defines cached functions)."""
    for value in list(vars(sys.modules[module_name]).values()):
        if type(value).__module__.startswith("numba."):
            # a fastdnn.engine._link.separate stand-in holds its dispatcher
            harden_cache(getattr(value, "dispatcher", value))


def harden_cache(function):
    """Make the disk cache of ``function`` (a Numba dispatcher or cfunc, CPU or CUDA)
    take a damaged entry for a miss: warn, remove it, recompile. Returns ``function``;
    one without a disk cache is left as it is."""
    cache = getattr(function, "_cache", None)
    if has_disk_cache(function) and not is_hardened(function):
        cache.load_overload = _load_or_recompile(cache, cache.load_overload)
        cache.save_overload = _save_over_damage(cache, cache.save_overload)
        cache._fastdnn_hardened = True
    return function


def has_disk_cache(function):
    """Whether ``function`` is a compiled function cached on disk."""
    cache = getattr(function, "_cache", None)
    return hasattr(cache, "_cache_file") and hasattr(cache, "load_overload")


def is_hardened(function):
    return getattr(getattr(function, "_cache", None), "_fastdnn_hardened", False)


def hardened_cfunc(sig, *, cache=False, **options):
    """``numba.cfunc`` with a hardened disk cache. numba.cfunc compiles (or loads) as it
    decorates, before a cache could be hardened, so this builds the CFunc itself as
    numba.cfunc does and hardens its cache first."""
    from numba.core import sigutils
    from numba.core.ccallback import CFunc

    def compile_cfunc(py_func):
        result = CFunc(py_func, sigutils.normalize_signature(sig), locals={},
                       options=options)
        if cache:
            result.enable_caching()
            harden_cache(result)
        result.compile()
        return result
    return compile_cfunc


def entry_file(function, sig, target_context):
    """The data file that holds ``function``'s cache entry for ``sig``, or None (not
    cached, or the index cannot be read)."""
    cache = function._cache
    try:
        target_context.refresh()   # as Numba does before computing the key
        key = cache._index_key(sig, target_context.codegen())
        name = cache._cache_file._load_index().get(key)
    except (OSError,) + DAMAGE_ERRORS:
        return None
    return None if name is None else cache._cache_file._data_path(name)


def remove_if_damaged(path, is_damaged):
    """Remove ``path`` when ``is_damaged()`` (which reads it) says so, unless another
    process replaced the file meanwhile. True when no damaged file is left there.

    Safe beside other processes: Numba (and fastdnn) replace a file by renaming a whole
    new one over it, so a file written while this one was being checked has another
    inode or mtime and stays. Within the few microseconds between the last look and the
    removal a fresh file could still be lost; that costs one recompile, never an error.
    """
    try:
        before = _identity(path)
        if not is_damaged():
            return False
        if _identity(path) == before:
            os.remove(path)
        return True
    except FileNotFoundError:   # another process removed it first
        return True
    except OSError:
        return False


def _identity(path):
    st = os.stat(path)
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def _load_or_recompile(cache, load_overload):
    def load_overload_or_recompile(*args, **kwargs):
        try:
            return load_overload(*args, **kwargs)
        except DAMAGE_ERRORS as error:
            _remove_damaged_files(cache._cache_file)
            warnings.warn(f"fastdnn: the compile cache entry of {_name(cache)} in "
                          f"{cache._cache_path} was damaged ({type(error).__name__}: "
                          f"{error}); it is removed and the function recompiled",
                          RuntimeWarning)
            return None   # a miss: Numba compiles and saves a fresh entry
    return load_overload_or_recompile


def _save_over_damage(cache, save_overload):
    # Saving reads the index first, so an index damaged since the load (or not removable
    # then) would fail the compile that just succeeded; removed, the save is tried again.
    def save_overload_over_damage(*args, **kwargs):
        try:
            return save_overload(*args, **kwargs)
        except DAMAGE_ERRORS:
            _remove_damaged_files(cache._cache_file)
        return save_overload(*args, **kwargs)
    return save_overload_over_damage


def _remove_damaged_files(files):
    """Remove the index of ``files`` (Numba's IndexDataCacheFile) if it cannot be read,
    else the data files it names that cannot be unpickled. A data file that unpickles
    but does not rebuild stays: the fresh entry's save writes over it."""
    if remove_if_damaged(files._index_path, lambda: _fails(files._load_index)):
        return
    try:
        names = sorted(set(files._load_index().values()))
    except (OSError,) + DAMAGE_ERRORS:
        return
    for name in names:
        remove_if_damaged(files._data_path(name), lambda: _fails(files._load_data, name))


def _fails(read, *args):
    try:
        read(*args)
    except FileNotFoundError:
        return False
    except DAMAGE_ERRORS:
        return True
    return False


def _name(cache):
    py_func = getattr(cache, "_py_func", None)
    if py_func is None:
        return getattr(cache, "_name", "a compiled function")
    return f"{py_func.__module__}.{py_func.__qualname__}"
