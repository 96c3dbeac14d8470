"""One invocation's options and its API client, shared by every command through the
click context (`pass_state`), and the options every command takes.

The common options (`--url`, `--token`, `-o`, `--no-headers`) are accepted before and
after the subcommand (`ciao -o json network list` and `ciao network list -o json`): each
stores its value in the state, the later one winning."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import click
import httpx

from ciaoweb.cli import config, output
from ciaoweb.cli.client import ApiClient
from ciaoweb.cli.errors import CliError, ExitCode
from ciaoweb.cli.output import Column
from ciaoweb.cli.resources import Refs, Resource


@dataclass
class State:
    url: str | None = None
    token: str | None = None
    output: str = "table"
    headers: bool = True
    env: Mapping[str, str] = field(default_factory=lambda: os.environ)
    # Tests hand in an httpx.MockTransport; None is the network.
    transport: httpx.BaseTransport | None = None
    _client: ApiClient | None = None
    _refs: Refs | None = None

    # --- connection -------------------------------------------------------------------

    def connection(self) -> config.Connection:
        return config.resolve(self.url, self.token, self.env)

    def new_client(self, url: str, token: str | None = None) -> ApiClient:
        return ApiClient(url, token, transport=self.transport)

    def credentials(self) -> tuple[str, str]:
        """URL and token; exit 3 when either is nowhere to be found."""
        conn = self.connection()
        if not conn.url or not conn.token:
            missing = "API URL" if not conn.url else "token"
            raise CliError(
                f"not logged in (no {missing}): run `ciao login`, or set "
                f"{config.URL_ENV} and {config.TOKEN_ENV} (or --url and --token)",
                ExitCode.AUTH,
            )
        return conn.url, conn.token

    @property
    def client(self) -> ApiClient:
        """Authenticated (exit 3 without credentials)."""
        if self._client is None:
            self._client = self.new_client(*self.credentials())
        return self._client

    @property
    def refs(self) -> Refs:
        if self._refs is None:
            self._refs = Refs(lambda: self.client)
        return self._refs

    # --- output -----------------------------------------------------------------------

    @property
    def structured(self) -> bool:
        return self.output != "table"

    def echo(self, text: str) -> None:
        if text:
            click.echo(text)

    def note(self, text: str) -> None:
        """Progress and hints: stderr, so stdout stays the data."""
        click.echo(text, err=True)

    def rows(self, rows: Sequence[dict], columns: Sequence[Column]) -> None:
        if self.structured:
            self.echo(output.dump(list(rows), self.output))
        else:
            self.echo(output.rows_table(rows, columns, self.refs, self.headers))

    def listing(self, resource: Resource, rows: Sequence[dict]) -> None:
        if rows or self.structured:
            self.rows(rows, resource.columns)
        else:
            self.note(f"No {resource.plural}.")

    def one(self, resource: Resource, obj: dict) -> None:
        """A created or changed object: its table row (or the object)."""
        if self.structured:
            self.data(obj)
        else:
            self.rows([obj], resource.columns)

    def detail(self, resource: Resource, obj: dict) -> None:
        """`show`: every field (or the object)."""
        if self.structured:
            self.data(obj)
        else:
            self.echo(output.object_view(obj, resource.subtables, self.refs))

    def data(self, obj: Any) -> None:
        self.echo(output.dump(obj, self.output if self.structured else "json"))

    def done(self, message: str) -> None:
        """What a command without an object to show did (nothing with -o json/yaml)."""
        if not self.structured:
            self.echo(message)


pass_state = click.make_pass_decorator(State, ensure=True)


def current_state() -> State:
    return click.get_current_context().ensure_object(State)


def _store(attr: str, transform: Callable[[Any], Any] = lambda v: v):
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value is not None and value is not False:
            setattr(ctx.ensure_object(State), attr, transform(value))

    return callback


def common_params() -> list[click.Option]:
    """Fresh option objects for one command (click options cannot be shared)."""
    return [
        click.Option(
            ["--url"],
            metavar="URL",
            expose_value=False,
            callback=_store("url"),
            help=f"API server, e.g. http://127.0.0.1:8000 [env {config.URL_ENV}; else config file]",
        ),
        click.Option(
            ["--token"],
            metavar="TOKEN",
            expose_value=False,
            callback=_store("token"),
            help=f"API token [env {config.TOKEN_ENV}; else config file]",
        ),
        click.Option(
            ["-o", "--output"],
            type=click.Choice(output.FORMATS),
            expose_value=False,
            callback=_store("output"),
            help="table (default), or the API's objects as json or yaml",
        ),
        click.Option(
            ["--no-headers"],
            is_flag=True,
            expose_value=False,
            callback=_store("headers", lambda v: False),
            help="tables without their header line",
        ),
    ]


def common_options(f: Callable) -> Callable:
    """Decorator: the common options on a command written with `@click.command`."""
    f.__click_params__ = [*getattr(f, "__click_params__", []), *reversed(common_params())]
    return f


def wait_options(f: Callable) -> Callable:
    f = click.option(
        "--timeout",
        type=click.FloatRange(min=0),
        default=300.0,
        show_default=True,
        help="seconds --wait waits before giving up (exit 7)",
    )(f)
    return click.option(
        "--wait", is_flag=True, help="wait until the operation has ended (exit 8 if it failed)"
    )(f)
