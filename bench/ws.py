"""A websocket listener on /ws/events/ in a background thread: every message with the
wall-clock time (time.time()) at which this client received it."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable

import websockets


class EventListener:
    def __init__(self, base_url: str, token: str) -> None:
        self.url = base_url.replace("http://", "ws://") + f"/ws/events/?token={token}"
        self.origin = base_url  # Channels' AllowedHostsOriginValidator rejects no Origin
        self.messages: list[tuple[float, dict]] = []
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ws-events", daemon=True)
        self.error: BaseException | None = None

    def start(self, timeout: float = 10.0) -> EventListener:
        self._thread.start()
        if not self._ready.wait(timeout) or self.error is not None:
            raise RuntimeError(f"websocket did not connect: {self.error!r}")
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        try:
            asyncio.run(self._loop())
        except BaseException as exc:  # noqa: BLE001 - reported by start()/wait()
            self.error = exc
            self._ready.set()

    async def _loop(self) -> None:
        async with websockets.connect(
            self.url, origin=self.origin, max_size=None, ping_interval=None
        ) as ws:
            self._ready.set()
            while not self._stop.is_set():
                try:
                    raw = await asyncio.wait_for(ws.recv(), timeout=0.2)
                except TimeoutError:
                    continue
                now = time.time()
                message = json.loads(raw)
                with self._cond:
                    self.messages.append((now, message))
                    self._cond.notify_all()

    def wait(
        self, predicate: Callable[[dict], bool], timeout: float, since: int = 0
    ) -> tuple[float, dict] | None:
        """First message at index >= since matching predicate (waits for it)."""
        deadline = time.monotonic() + timeout
        index = since
        with self._cond:
            while True:
                while index < len(self.messages):
                    stamp, message = self.messages[index]
                    index += 1
                    if predicate(message):
                        return stamp, message
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(min(left, 0.2))

    def mark(self) -> int:
        with self._cond:
            return len(self.messages)

    def find(self, predicate: Callable[[dict], bool], since: int = 0) -> list[tuple[float, dict]]:
        with self._cond:
            return [(t, m) for t, m in self.messages[since:] if predicate(m)]
