"""Running `ciao`: the real console script as a subprocess (`ciao`), or in-process
against a scripted REST API behind httpx.MockTransport (`FakeApi`, `run`) for the tests
that need no server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ciaoweb.cli.main import main
from ciaoweb.cli.state import State

URL = "http://ciao.test"
# The console script installed with the project, beside this interpreter (.venv/bin/ciao).
CIAO = Path(sys.executable).with_name("ciao")


def script_env(env: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without its CIAO_* variables, plus `env`."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CIAO_")}
    return {**clean, **env}


def ciao(*argv: str, env: Mapping[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    """`ciao argv...` with exactly the CIAO_* variables of `env` (none inherited). No
    answer of the CLI, whatever its exit code, may be a Python traceback."""
    done = subprocess.run(
        [str(CIAO), *argv], env=script_env(env), capture_output=True, text=True, timeout=timeout
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


Handler = Callable[[httpx.Request], Any]


def page(rows: list[dict], next_query: str | None = None, host: str = URL) -> dict:
    """A paginated body; `next` points at `host` (a proxy may name another one)."""
    following = f"{host}/api/v1/whatever/?{next_query}" if next_query else None
    return {"count": len(rows), "next": following, "previous": None, "results": rows}


@dataclass
class FakeApi:
    """`routes[(method, path)]`: a body (200), a `(status, body)` pair, or a function of
    the request returning either. Every request is recorded."""

    routes: dict[tuple[str, str], Any] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.routes.get((request.method, request.url.path))
        if answer is None:
            return httpx.Response(404, json={"detail": "Not found."})
        if callable(answer):
            answer = answer(request)
        status, body = answer if isinstance(answer, tuple) else (200, answer)
        return httpx.Response(status, content=b"" if body is None else json.dumps(body).encode())

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)

    def sent(self, method: str, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == method and r.url.path == path]


def run(api: FakeApi, *argv: str, env: dict[str, str] | None = None) -> int:
    """`ciao argv...` in this process against `api`, logged in through the environment."""
    base = {"CIAO_URL": URL, "CIAO_TOKEN": "t" * 40, "XDG_CONFIG_HOME": "/nonexistent/ciao"}
    state = State(env={**base, **(env or {})}, transport=api.transport())
    return main(list(argv), state=state)
