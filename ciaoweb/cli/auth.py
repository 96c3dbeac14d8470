"""`ciao login` and `ciao logout`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ciaoweb.cli import config
from ciaoweb.cli.errors import ApiError, CliError, ExitCode
from ciaoweb.cli.state import State, common_options, pass_state

DEFAULT_URL = "http://127.0.0.1:8000"
DEMO_FILE = Path("var/demo.json")


def read_demo(path: Path) -> dict[str, str]:
    """url, username and password of a running `make demo` (DESIGN.md §3)."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise CliError(
            f"{path} not found: is `make demo` running (in this directory, another "
            "terminal)? It writes the file once it is ready; or pass --demo-file",
            ExitCode.USAGE,
        ) from None
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read {path}: {exc}", ExitCode.USAGE) from None
    data = data if isinstance(data, dict) else {}
    missing = [k for k in ("url", "username", "password") if not data.get(k)]
    if missing:
        raise CliError(f"{path} has no {', '.join(missing)}", ExitCode.USAGE)
    return {k: data[k] for k in ("url", "username", "password")}


@click.command("login")
@click.option("-u", "--username", help="prompted for when not given")
@click.option("-p", "--password", help="prompted for (hidden) when not given")
@click.option("--demo", is_flag=True, help="log in to the running `make demo` as its admin")
@click.option(
    "--demo-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEMO_FILE,
    show_default=True,
    help="the demo's credentials file (with --demo)",
)
@common_options
@pass_state
def login(state: State, username, password, demo: bool, demo_file: Path) -> None:
    """Log in: save a token (and the URL) in the config file.

    The token is the API's for USERNAME and PASSWORD; the config file has mode 0600.

    \b
    ciao login --url http://127.0.0.1:8000 -u alice
    ciao login --demo          # after `make demo`, from the same directory
    """
    if demo:
        found = read_demo(demo_file)
        url, username, password = found["url"], found["username"], found["password"]
    else:
        url = state.connection().url or click.prompt("API URL", default=DEFAULT_URL)
        username = username or click.prompt("Username")
        password = password or click.prompt("Password", hide_input=True)
    url = config.normalise_url(url)
    client = state.new_client(url)
    try:
        token = client.post("auth/token/", {"username": username, "password": password})["token"]
    except ApiError as exc:
        if exc.status != 400:
            raise
        raise CliError(f"login refused: {exc.message}", ExitCode.AUTH, exc.details) from None
    path = config.save({"url": url, "username": username, "token": token}, state.env)
    state.note(f"Logged in to {url} as {username} (token saved in {path}).")
    for name in (config.URL_ENV, config.TOKEN_ENV):
        if state.env.get(name):
            state.note(f"Note: {name} is set in the environment and comes before the saved one.")


@click.command("logout")
@click.option(
    "--revoke",
    is_flag=True,
    help="also revoke the token on the server (every client using it is logged out)",
)
@common_options
@pass_state
def logout(state: State, revoke: bool) -> None:
    """Forget the saved token (--revoke: also end it on the server)."""
    if revoke:
        state.client.delete("auth/token/")
    removed = config.remove(state.env)
    state.note("Logged out." if removed else "Not logged in (no config file).")


COMMANDS = (login, logout)
