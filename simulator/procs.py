"""Stopping processes we started: by pid (from pid files or our namespaces), never by name."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterable
from pathlib import Path

from .state import pidfile_process


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is "alive" for kill(0) but has finished
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def terminate(pids: Iterable[int], timeout: float = 3.0) -> None:
    """SIGTERM, wait up to ``timeout``, then SIGKILL what is left."""
    pending = [p for p in set(pids) if p > 1 and p != os.getpid()]
    for pid in pending:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        pending = [p for p in pending if alive(p)]
        if pending:
            time.sleep(0.02)
    for pid in pending:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def stop_pidfile(path: Path, timeout: float = 3.0) -> None:
    """Stop the process owning ``path`` (if it is still ours) and remove the file."""
    pid = pidfile_process(path)
    if pid is not None:
        terminate([pid], timeout)
    path.unlink(missing_ok=True)
