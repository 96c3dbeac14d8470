"""`ciao watch`: the live events of `/ws/events/` (DESIGN.md §3), one line each."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from urllib.parse import quote, urlsplit, urlunsplit

import click

from ciaoweb.cli.errors import CliError, ExitCode
from ciaoweb.cli.output import cell
from ciaoweb.cli.state import State, common_options, pass_state

# What a line shows of each type's data (then its id): (label, field).
SUMMARY: dict[str, tuple[tuple[str, str], ...]] = {
    "instance": (("name", "name"), ("state", "state"), ("host", "host_name")),
    "attachment": (("ifname", "ifname"), ("mac", "mac"), ("ip", "ip"), ("state", "state")),
    "lease": (("ip", "ip"), ("mac", "mac"), ("hostname", "hostname"), ("state", "state")),
    "host": (("name", "name"), ("state", "state")),
    "operation": (
        ("kind", "kind"),
        ("state", "state"),
        ("step", "step"),
        ("instance", "instance_name"),
        ("host", "host_name"),
    ),
}
CLOSE_UNAUTHENTICATED, CLOSE_FORBIDDEN = 4401, 4403
MAX_BACKOFF = 30.0
WATCHING = "watching; Ctrl-C to stop"  # on stderr once connected (tests wait for it)
RECONNECTED = "reconnected (events in between are not replayed: `ciao event list`)"


def socket_url(api_url: str, token: str) -> str:
    parts = urlsplit(api_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    path = parts.path.rstrip("/") + "/ws/events/"
    return urlunsplit((scheme, parts.netloc, path, f"token={quote(token, safe='')}", ""))


def wanted(message_type: str, types: Sequence[str]) -> bool:
    """`--type instance` takes `instance.updated`; `--type instance.updated` that only."""
    return not types or any(message_type in (t, f"{t}.updated") for t in types)


def line(message: dict) -> str:
    kind = str(message.get("type", "?"))
    data = message.get("data") if isinstance(message.get("data"), dict) else {}
    fields = SUMMARY.get(kind.split(".")[0], ())
    shown = [f"{label}={cell(data.get(key))}" for label, key in fields if data.get(key)]
    if data.get("id"):
        shown.append(f"id={data['id']}")
    return f"{datetime.now():%H:%M:%S}  {kind:<19} {' '.join(shown)}".rstrip()


def _refused(code: int | None, reason: str) -> CliError | None:
    if code in (CLOSE_UNAUTHENTICATED, CLOSE_FORBIDDEN):
        return CliError(f"the server ended the stream: {reason or code}", ExitCode.AUTH)
    return None


def stream(
    url: str,
    show: Callable[[dict], None],
    note: Callable[[str], None],
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Prints until Ctrl-C; after a drop it connects again (with a growing pause). A
    server that cannot be reached at the start, or refuses the token, ends it."""
    # Imported here: the other commands start faster without websockets.
    from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
    from websockets.sync.client import connect

    connected_before = False
    backoff = 1.0
    while True:
        try:
            with connect(url, open_timeout=10, close_timeout=2) as ws:
                note(RECONNECTED if connected_before else WATCHING)
                connected_before, backoff = True, 1.0
                for raw in ws:
                    try:
                        message = json.loads(raw)
                    except ValueError:
                        continue
                    if isinstance(message, dict):
                        show(message)
            problem = _refused(ws.close_code, ws.close_reason or "")
            if problem:
                raise problem
            why = f"closed by the server ({ws.close_code})"
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in (401, 403):
                raise CliError(
                    f"the server refused the event stream ({status}): is the token valid? "
                    "`ciao login`",
                    ExitCode.AUTH,
                ) from None
            why = f"handshake answered {status}"
            if not connected_before:
                raise CliError(f"cannot watch: {why}", ExitCode.UNAVAILABLE) from None
        except ConnectionClosed as exc:
            code, reason = (exc.rcvd.code, exc.rcvd.reason) if exc.rcvd else (None, "")
            problem = _refused(code, reason)
            if problem:
                raise problem from None
            why = f"connection lost ({code or 'no close frame'})"
        except InvalidURI as exc:
            raise CliError(f"bad URL for the event stream: {exc}", ExitCode.UNAVAILABLE) from None
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            why = f"cannot connect: {exc or type(exc).__name__}"
            if not connected_before:
                raise CliError(f"cannot watch: {why}", ExitCode.UNAVAILABLE) from None
        note(f"{why}; reconnecting in {backoff:.0f}s")
        sleep(backoff)
        backoff = min(backoff * 2, MAX_BACKOFF)


@click.command("watch")
@click.option(
    "--type",
    "types",
    multiple=True,
    metavar="TYPE",
    help="only this type (instance, attachment, lease, host, operation; or e.g. "
    "instance.updated), repeatable",
)
@common_options
@pass_state
def watch(state: State, types: tuple[str, ...]) -> None:
    """Print live events until Ctrl-C.

    One line per event (JSON lines with -o json); reconnects when the connection drops.

    \b
    ciao watch --type instance --type operation
    ciao watch -o json | jq .data.state
    """
    url, token = state.credentials()

    def show(message: dict) -> None:
        if wanted(str(message.get("type", "")), types):
            click.echo(json.dumps(message) if state.structured else line(message))

    try:
        stream(socket_url(url, token), show, state.note)
    except KeyboardInterrupt:
        return  # the way to stop watching: exit 0
