"""Exit codes, and the one exception every command raises to end with one of them."""

from __future__ import annotations

from enum import IntEnum
from typing import Any

import click


class ExitCode(IntEnum):
    OK = 0
    REFUSED = 1  # the API refused the request: 400, or another 4xx not below
    USAGE = 2  # bad command line (click's own code), or a name matching several objects
    AUTH = 3  # not logged in, token refused (401), or not allowed (403)
    NOT_FOUND = 4  # 404, or no object with that name
    CONFLICT = 5  # 409: in use, quota exceeded, no capacity, wrong state
    UNAVAILABLE = 6  # server error (5xx), no connection, or a reply that is not JSON
    TIMEOUT = 7  # --wait gave up; the operation goes on
    FAILED = 8  # --wait saw the operation fail (or the instance end in `error`)
    INTERRUPTED = 130  # Ctrl-C while a command ran (`ciao watch` ends with 0)


# The root command's epilog and docs/cli.md show this table.
EXIT_CODES_HELP = """\b
Exit codes:
  0    success
  1    the API refused the request (400 and other 4xx); its message per field on stderr
  2    usage error, or a name that matches several objects (use an id)
  3    not logged in, token refused (401) or not allowed (403)
  4    not found (404, or no object with that name)
  5    conflict (409): in use, quota exceeded, no capacity, wrong state
  6    server error (5xx) or cannot connect
  7    --wait timed out (the operation goes on)
  8    --wait: the operation failed
  130  interrupted (Ctrl-C)"""


class CliError(click.ClickException):
    """Ends the command: `Error: <message>` and indented detail lines on stderr."""

    def __init__(
        self, message: str, code: ExitCode = ExitCode.REFUSED, details: list[str] | None = None
    ) -> None:
        super().__init__(message)
        self.exit_code = int(code)
        self.details = list(details or [])

    def show(self, file: Any = None) -> None:
        click.echo(f"Error: {self.message}", err=True)
        for line in self.details:
            click.echo(f"  {line}", err=True)


def status_exit_code(status: int) -> ExitCode:
    if status in (401, 403):
        return ExitCode.AUTH
    if status == 404:
        return ExitCode.NOT_FOUND
    if status == 409:
        return ExitCode.CONFLICT
    if status >= 500:
        return ExitCode.UNAVAILABLE
    return ExitCode.REFUSED


def field_messages(body: Any, prefix: str = "") -> list[str]:
    """The API's error body as lines: `{"cidr": ["..."], "networks": [{}, {"ip": ["..."]}]}`
    becomes `cidr: ...` and `networks[1].ip: ...`; `detail` and `non_field_errors` carry
    no field name."""
    if isinstance(body, dict):
        lines = []
        for key, value in body.items():
            if key in ("detail", "non_field_errors"):
                lines += field_messages(value, prefix)
            else:
                lines += field_messages(value, f"{prefix}.{key}" if prefix else str(key))
        return lines
    if isinstance(body, list):
        if all(isinstance(item, str) for item in body):
            return [f"{prefix}: {item}" if prefix else item for item in body]
        lines = []
        for index, item in enumerate(body):
            lines += field_messages(item, f"{prefix}[{index}]")
        return lines
    if body in (None, ""):
        return []
    return [f"{prefix}: {body}" if prefix else str(body)]


class ApiError(CliError):
    """An HTTP answer >= 400, with the exit code its status maps to."""

    def __init__(self, status: int, reason: str, body: Any) -> None:
        self.status = status
        self.body = body
        lines = field_messages(body)
        head = f"{status} {reason}".strip()
        if len(lines) == 1:
            super().__init__(f"{head}: {lines[0]}", status_exit_code(status))
        else:
            super().__init__(f"{head}{':' if lines else ''}", status_exit_code(status), lines)
