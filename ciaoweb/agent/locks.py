"""Node-wide named locks: one holder at a time across the agent's worker processes.

Celery's prefork pool runs tasks in several processes, and the controller re-sends a
step that made no progress (its watchdog), so two tasks for the same instance or the
same DHCP server can run at once on one node. They take the same lock and run one
after the other; every step being idempotent, the second finds the work done.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path


def lock_path(state_dir: str | os.PathLike[str], key: str) -> Path:
    return Path(state_dir) / "locks" / f"{key}.lock"


@contextlib.contextmanager
def node_lock(state_dir: str | os.PathLike[str], key: str, discard: bool = False) -> Iterator[None]:
    """Hold the node's lock `key` (a file under <state_dir>/locks) for the block.

    `discard`: the thing is gone after this block; its lock file is removed while still
    held. A waiter that opened the old file then finds it unlinked and takes the new one,
    so two holders never coexist (the inode check below)."""
    path = lock_path(state_dir, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        with open(path, "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                current = os.stat(path).st_ino
            except FileNotFoundError:
                current = None
            if current != os.fstat(lock.fileno()).st_ino:
                continue  # removed by a discarding holder while we waited
            try:
                yield
            finally:
                if discard:
                    path.unlink(missing_ok=True)
            return
