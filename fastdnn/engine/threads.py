"""How many threads fastdnn's engine may use: a per-thread setting, nothing global."""
import threading

from .. import config

_local = threading.local()


def current_threads():
    """Threads a run started now on this thread may use (see ``threads``)."""
    return getattr(_local, "threads", None) or config.NUM_THREADS


class threads:
    """Run fastdnn's training, inference and optimizer updates on ``n`` threads inside
    the block (the calling thread's calls only; other threads keep theirs; the default
    is ``fastdnn.config.NUM_THREADS``). Results do not depend on it."""

    def __init__(self, n):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be an integer >= 1, got {n!r}")
        self.n = n

    def __enter__(self):
        self._saved = getattr(_local, "threads", None)
        _local.threads = self.n
        return self

    def __exit__(self, *exc):
        _local.threads = self._saved
        return False
