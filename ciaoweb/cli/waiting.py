"""`--wait`: follow an operation (`operations/{id}/`, DESIGN.md §3a) until it ends.

Polling, not the websocket: an operation that ended before the socket was open would
otherwise be missed. The interval starts small (a simulated create takes a second or
two) and grows to two seconds."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from ciaoweb.cli.client import ApiClient
from ciaoweb.cli.errors import ApiError, CliError, ExitCode
from ciaoweb.operations.choices import OperationState

T = TypeVar("T")
FIRST_INTERVAL, MAX_INTERVAL = 0.2, 2.0


def poll(
    check: Callable[[], T | None],
    timeout: float,
    timed_out: Callable[[], str],
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """`check()` until it returns something (not None); exit 7 after `timeout` seconds
    with `timed_out()` as the message. Ctrl-C says the work goes on (exit 130)."""
    deadline = time.monotonic() + timeout
    interval = FIRST_INTERVAL
    try:
        while True:
            result = check()
            if result is not None:
                return result
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CliError(timed_out(), ExitCode.TIMEOUT)
            sleep(min(interval, remaining))
            interval = min(interval * 1.5, MAX_INTERVAL)
    except KeyboardInterrupt:
        raise CliError(f"stopped waiting: {timed_out()}", ExitCode.INTERRUPTED) from None


class OperationWatch:
    """Follows one operation; `progress` hears each new state/step."""

    def __init__(self, client: ApiClient, op_id: str, progress: Callable[[str], None]) -> None:
        self.client, self.op_id, self.progress = client, op_id, progress
        self.last: dict = {}
        self._seen: tuple = ()

    def check(self) -> dict | None:
        op = self.last = self.client.get(f"operations/{self.op_id}/")
        now = (op["state"], op.get("step"))
        if now != self._seen:
            self._seen = now
            step = f" ({op['step']})" if op.get("step") else ""
            what = op.get("instance_name") or op.get("host_name") or ""
            self.progress(f"{op['kind']} {what}: {op['state']}{step}".replace(" :", ":"))
        return op if op["state"] in OperationState.FINISHED else None

    def describe(self) -> str:
        state = self.last.get("state", "pending")
        return (
            f"operation {self.op_id} still {state} after the timeout; it goes on: "
            f"`ciao operation show {self.op_id}`"
        )


def wait_operation(
    client: ApiClient, op_id: str, timeout: float, progress: Callable[[str], None]
) -> dict:
    """The operation once it ended; exit 8 if it failed, 7 on timeout."""
    watch = OperationWatch(client, op_id, progress)
    op = poll(watch.check, timeout, watch.describe)
    require_success(op)
    return op


def require_success(op: dict) -> None:
    if op["state"] == OperationState.FAILED:
        what = op.get("instance_name") or op.get("host_name") or op["id"]
        raise CliError(
            f"{op['kind']} of {what} failed: {op.get('error') or 'no reason given'}",
            ExitCode.FAILED,
        )


def wait_gone(
    client: ApiClient,
    path: str,
    op_id: str | None,
    timeout: float,
    progress: Callable[[str], None],
) -> None:
    """A deletion: done when `path` answers 404; its operation (if known) failing ends
    the wait with exit 8."""
    watch = OperationWatch(client, op_id, progress) if op_id else None

    def check() -> bool | None:
        try:
            client.get(path)
        except ApiError as exc:
            if exc.status == 404:
                return True
            raise
        if watch is not None and (op := watch.check()) is not None:
            require_success(op)
        return None

    poll(check, timeout, lambda: f"{path} still there after the timeout; the deletion goes on")
