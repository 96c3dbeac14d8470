"""Per-node persistent VF state: who owns which VF and how to restore it.

One small JSON file per node, replaced atomically (write temp + fsync + rename) and
guarded by an fcntl lock on a sibling lock file, because Celery prefork children of
the same agent share it. The lock is held for a whole driver operation so two
children cannot interleave "read owner, program VF, write owner".
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_NODE_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")

# Lifecycle of a VF record. `claiming` is written before any hardware change so a
# crash mid-setup leaves a record reconcile can release.
CLAIMING = "claiming"
READY = "ready"
FAILED = "failed"


def vf_key(pf: str, index: int) -> str:
    return f"{pf}/{index}"


def parse_vf_key(key: str) -> tuple[str, int]:
    pf, index = key.rsplit("/", 1)
    return pf, int(index)


class StateStore:
    def __init__(self, state_dir: str | os.PathLike[str], node: str) -> None:
        if not _NODE_RE.match(node):
            raise ValueError(f"bad node name {node!r}")
        self.dir = Path(state_dir)
        self.path = self.dir / f"vf-state-{node}.json"
        self._lock_path = self.dir / f".vf-state-{node}.lock"
        self._on_disk = ""

    @contextlib.contextmanager
    def transaction(self) -> Iterator[dict[str, Any]]:
        """Lock, load, yield the mutable state, and save it atomically if it changed."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self._lock_path, "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                state = self._load()
                self._on_disk = _snapshot(state)
                try:
                    yield state
                finally:
                    # Saved on errors too: a failed setup records what it left behind.
                    if _snapshot(state) != self._on_disk:
                        self.save(state)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def read(self) -> dict[str, Any]:
        """A consistent snapshot (shared lock) for read-only callers."""
        if not self.path.exists():
            return {"vfs": {}}
        with open(self._lock_path, "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_SH)
            try:
                return self._load()
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            data = {}
        data.setdefault("vfs", {})
        return data

    def save(self, state: dict[str, Any]) -> None:
        """Write now (only inside `transaction()`, e.g. to record a claim early)."""
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".vf-state-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(state, fh, indent=1, sort_keys=True)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
            self._on_disk = _snapshot(state)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise


def _snapshot(state: dict[str, Any]) -> str:
    return json.dumps(state, sort_keys=True)
