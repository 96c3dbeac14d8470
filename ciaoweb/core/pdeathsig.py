"""Children that die with their parent: Linux's PR_SET_PDEATHSIG.

Used by the local cluster for every process it starts, and by the Celery workers (the
controller's and the agents') for their own children. Plain Python and ctypes: the
agent imports no Django.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1

# SIGKILL rather than SIGTERM: the signal only comes when the parent died without its
# teardown, so nobody waits for an orderly exit, and a SIGTERM can be caught or stall
# (daphne's and Celery's warm shutdowns wait for what is in flight, a wedged task for
# ever). Every process of ours survives a SIGKILL by design (the reliability tests kill
# agents and the controller that way); what they leave, `make clean` removes.
DEATH_SIGNAL = signal.SIGKILL

# Resolved before any fork: a child between fork and exec should not dlopen.
_prctl = None
if sys.platform.startswith("linux"):
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
    _prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
    _prctl.restype = ctypes.c_int


def die_with_parent(parent_pid: int | None, sig: int = DEATH_SIGNAL) -> None:
    """In a child: receive `sig` when its parent dies. `parent_pid` is the parent's pid
    taken before the fork: when the parent died before this ran, the signal will never
    come, so the child exits now. (On other systems: nothing.)"""
    if _prctl is None:
        return
    if _prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"prctl(PR_SET_PDEATHSIG): {os.strerror(errno)}")
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)


# --- Celery workers --------------------------------------------------------------------

_worker_pid: int | None = None


def _remember_worker(**_: object) -> None:
    global _worker_pid
    _worker_pid = os.getpid()


def _worker_child_init(**_: object) -> None:
    # The solo pool sends worker_process_init in the worker itself: not a child.
    if os.getpid() != _worker_pid:
        die_with_parent(_worker_pid)


def install_celery_hooks() -> None:
    """A Celery worker's children die with its main process: the prefork pool's (Celery
    sets PDEATHSIG there itself, but without the check that the parent was still alive)
    and the embedded beat's (`-B`), which Celery leaves orphaned after a SIGKILL."""
    from celery import signals

    signals.worker_init.connect(_remember_worker, weak=False)
    signals.worker_process_init.connect(_worker_child_init, weak=False)
    signals.beat_embedded_init.connect(_worker_child_init, weak=False)
