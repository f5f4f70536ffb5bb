"""Files written whole or not at all: a fresh temporary file beside the target, then
os.replace.

The temporary file is created exclusively (O_EXCL: a file or symlink planted under its
name is never written through) with the permissions a new file gets under the umask, as
``open`` gives, and named after the target and the writing process, so that the next
write of the same target removes what a killed writer left (only when that process is
gone: a concurrent writer's file is left alone).
"""
import contextlib
import os
import secrets

_SUFFIX = ".fastdnn-tmp"


@contextlib.contextmanager
def atomic_replace(path, mode=0o666):
    """Yield a temporary path to write ``path``'s new content to; on leaving the block
    it is flushed to disk and moved onto ``path``, on an error removed. ``mode``: the
    new file's permissions before the umask."""
    given = os.fspath(path)
    path = os.path.abspath(given)
    _remove_left_behind(path)
    directory, base = os.path.split(path)
    tmp = os.path.join(directory, f".{base}.{os.getpid()}.{secrets.token_hex(6)}{_SUFFIX}")
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode))
    except OSError as err:   # name the user's path, not the temporary file's
        if not os.path.exists(directory):
            reason = (f"the folder {directory!r} does not exist (create it first: "
                      "os.makedirs)")
        elif not os.path.isdir(directory):
            reason = f"{directory!r} is not a folder"
        else:
            reason = err.strerror
        raise type(err)(err.errno, reason, given) from None
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def _remove_left_behind(path):
    """Remove the temporary files of writes of ``path`` whose process is gone."""
    directory, base = os.path.split(path)
    prefix = f".{base}."
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        if name.startswith(prefix) and name.endswith(_SUFFIX):
            pid = name[len(prefix):-len(_SUFFIX)].split(".")[0]
            if pid.isdigit() and not _alive(int(pid)):
                with contextlib.suppress(OSError):
                    os.remove(os.path.join(directory, name))


def _alive(pid):
    if pid == os.getpid() or os.name != "posix":   # (Windows' os.kill would end it)
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:   # another user's process: alive
        return True
    return True
