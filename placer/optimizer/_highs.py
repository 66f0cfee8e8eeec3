"""Create HiGHS solver objects without the banner HiGHS writes to standard output.

HiGHS 1.16 prints "Running HiGHS … Copyright …" from its C++ constructor, before any option
(``output_flag``) can be set, straight to file descriptor 1. For a library that is noise; for
``placer plan --json | jq`` it is corrupted output. So the constructor runs with fd 1 pointed
at /dev/null, C stdio flushed on both sides so nothing else is lost or reordered. The lock
keeps a second thread from writing into the void meanwhile.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from typing import Any

_LOCK = threading.Lock()
try:
    _LIBC: Any = ctypes.CDLL(None)
except OSError:  # pragma: no cover - platforms without a process-wide C library handle
    _LIBC = None


def _flush_c_stdio() -> None:
    if _LIBC is not None:
        _LIBC.fflush(None)


def quiet_highs() -> Any:
    """A new ``highspy.Highs`` with output off, having printed nothing."""
    import highspy

    with _LOCK:
        sys.stdout.flush()
        _flush_c_stdio()
        saved = os.dup(1)
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, 1)
                h = highspy.Highs()  # type: ignore[no-untyped-call]
                h.setOptionValue("output_flag", False)
                _flush_c_stdio()
            finally:
                os.dup2(saved, 1)
                os.close(devnull)
        finally:
            os.close(saved)
    return h
