"""Reading the lease events our dnsmasq hook appends (one JSON object per line)."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LeaseEvent:
    action: str  # add | old | del
    mac: str
    ip: str
    hostname: str | None
    expires: int | None  # epoch seconds
    time: float


class LeaseEventReader:
    """Tails an events file: each `read_new()` returns the events appended since the last.

    `offset` is public so the agent can persist it and resume after a restart without
    replaying old events; a truncated/replaced file is read from the start again.
    """

    def __init__(self, path: str | os.PathLike[str], offset: int = 0) -> None:
        self.path = Path(path)
        self.offset = offset
        self._inode: int | None = None

    def read_new(self) -> list[LeaseEvent]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return []
        if st.st_size < self.offset or (self._inode is not None and st.st_ino != self._inode):
            self.offset = 0
        self._inode = st.st_ino
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except FileNotFoundError:  # removed since the stat (its network was deleted)
            return []
        complete = data[: data.rfind(b"\n") + 1]  # leave a half-written line for next time
        self.offset += len(complete)
        return [e for e in map(_parse, complete.splitlines()) if e is not None]

    def __iter__(self) -> Iterator[LeaseEvent]:
        yield from self.read_new()


def _parse(line: bytes) -> LeaseEvent | None:
    try:
        raw = json.loads(line)
        return LeaseEvent(
            action=raw["action"],
            mac=raw["mac"],
            ip=raw["ip"],
            hostname=raw.get("hostname"),
            expires=raw.get("expires"),
            time=raw.get("time", 0.0),
        )
    except (ValueError, KeyError, TypeError):
        log.warning("skipping malformed lease event %r", line[:200])
        return None
