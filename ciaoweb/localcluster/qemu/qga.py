"""A small client for QEMU's guest agent (qemu-ga), over the guest's chardev socket.

The host runs commands inside a guest with `guest-exec` (argv, environment, captured
output) and polls `guest-exec-status` until the command exits. One connection per
request: the chardev socket takes one client at a time, so holding it while a long
command runs would block every other caller (several agents' tasks, a test, a ping).
"""

from __future__ import annotations

import base64
import json
import random
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GUEST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class QgaError(Exception):
    """The agent answered an error, or never answered."""


@dataclass
class ExecResult:
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def check(self, argv: list[str]) -> ExecResult:
        if self.returncode != 0:
            raise QgaError(f"{argv!r} exited {self.returncode}: {self.stderr.strip()[-2000:]}")
        return self


class QgaClient:
    def __init__(self, socket_path: str | Path, timeout: float = 10.0) -> None:
        self.path = str(socket_path)
        self.timeout = timeout

    def call(self, command: str, arguments: dict[str, Any] | None = None) -> Any:
        """One request on a fresh connection, resynchronised with guest-sync-delimited."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(self.timeout)
            sock.connect(self.path)
            reader = _Reader(sock)
            token = random.randrange(1, 2**31)
            # 0xFF first: the agent drops any half-read request and resyncs.
            sock.sendall(b"\xff" + _encode("guest-sync-delimited", {"id": token}))
            reader.sync(token)
            sock.sendall(_encode(command, arguments))
            reply = reader.message()
        if "error" in reply:
            err = reply["error"]
            raise QgaError(f"{command}: {err.get('class')}: {err.get('desc')}")
        return reply.get("return")

    def ping(self) -> None:
        self.call("guest-ping")

    def exec(
        self,
        argv: list[str],
        *,
        env: dict[str, str] | None = None,
        input: bytes | None = None,  # noqa: A002 - like subprocess.run
        timeout: float = 120.0,
        poll_max: float = 0.05,
    ) -> ExecResult:
        """Run argv in the guest; its exit code and output (like subprocess.run).
        `poll_max`: the longest pause between status polls (a long-running command, an
        agent, polls seldom so other callers get the socket)."""
        if not argv:
            raise ValueError("empty argv")
        t0 = time.monotonic()
        full_env = {"PATH": GUEST_PATH, "HOME": "/root", "LC_ALL": "C.UTF-8"}
        full_env.update(env or {})
        args: dict[str, Any] = {
            "path": argv[0],
            "arg": list(argv[1:]),
            "env": [f"{k}={v}" for k, v in full_env.items()],
            "capture-output": True,
        }
        if input is not None:
            args["input-data"] = base64.b64encode(input).decode()
        pid = self.call("guest-exec", args)["pid"]
        delay = 0.002
        deadline = t0 + timeout
        while True:
            status = self.call("guest-exec-status", {"pid": pid})
            if status.get("exited"):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{argv!r} still running in the guest after {timeout} s")
            time.sleep(delay)
            delay = min(delay * 2, poll_max)
        code = status.get("exitcode")
        if code is None:  # killed by a signal
            code = -int(status.get("signal", 9))
        return ExecResult(
            returncode=int(code),
            stdout=_b64(status.get("out-data")),
            stderr=_b64(status.get("err-data")),
            seconds=time.monotonic() - t0,
        )


def _encode(command: str, arguments: dict[str, Any] | None) -> bytes:
    msg: dict[str, Any] = {"execute": command}
    if arguments:
        msg["arguments"] = arguments
    return json.dumps(msg).encode() + b"\n"


def _b64(data: str | None) -> str:
    return base64.b64decode(data).decode(errors="replace") if data else ""


class _Reader:
    """Splits the agent's byte stream into JSON messages."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""
        self.decoder = json.JSONDecoder()

    def _more(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise QgaError("guest agent closed the connection")
        self.buf += chunk

    def sync(self, token: int) -> None:
        """Skip everything up to the 0xFF delimiter, then expect our sync reply."""
        while True:
            while b"\xff" not in self.buf:
                self.buf = b""
                self._more()
            self.buf = self.buf[self.buf.index(b"\xff") + 1 :]
            reply = self.message()
            if reply.get("return") == token:
                return

    def message(self) -> dict[str, Any]:
        while True:
            text = self.buf.lstrip(b"\xff \r\n\t").decode(errors="replace")
            if text:
                try:
                    obj, end = self.decoder.raw_decode(text)
                except json.JSONDecodeError:
                    pass
                else:
                    self.buf = text[end:].encode()
                    return obj
            self._more()
