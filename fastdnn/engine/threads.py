"""How many threads fastdnn's engine may use: a per-thread setting, nothing global."""
from __future__ import annotations

import threading
from typing import Literal

from .. import config

_local = threading.local()


def current_threads() -> int:
    """Threads a run started now on this thread may use (see ``threads``).

    Returns
    -------
    int >= 1
        The innermost ``threads(n)`` block's n on this thread, else
        ``fastdnn.config.NUM_THREADS``.
    """
    return getattr(_local, "threads", None) or config.NUM_THREADS


class threads:
    """Run fastdnn's training, inference and optimizer updates on ``n`` threads.

    Only inside the ``with`` block and for the calling thread's calls (other threads
    keep theirs; the default is ``fastdnn.config.NUM_THREADS``). Results do not depend
    on it.

    Parameters
    ----------
    n : int >= 1
        The number of threads.

    Examples
    --------
    >>> with fastdnn.threads(2):   # doctest: +SKIP
    ...     model.fit(X, y)
    """

    def __init__(self, n: int) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be an integer >= 1, got {n!r}")
        self.n = n

    def __enter__(self) -> threads:
        self._saved = getattr(_local, "threads", None)
        _local.threads = self.n
        return self

    def __exit__(self, *exc: object) -> Literal[False]:
        _local.threads = self._saved
        return False
