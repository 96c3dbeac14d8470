"""The `ciao` command: the root group, its subcommands, and `main()` (the console script),
which turns every error into its exit code (`errors.ExitCode`), never a traceback."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click
from click.shell_completion import get_completion_class

from ciaoweb.cli import auth, hosts, instances, networks, tenants, watch
from ciaoweb.cli.errors import EXIT_CODES_HELP, ExitCode
from ciaoweb.cli.reads import resource_group
from ciaoweb.cli.resources import RESOURCES
from ciaoweb.cli.state import State, common_options

PROG = "ciao"
COMPLETE_VAR = "_CIAO_COMPLETE"
SHELLS = ("bash", "zsh", "fish")
WRITES = {
    "network": networks.COMMANDS,
    "instance": instances.COMMANDS,
    "host": hosts.COMMANDS,
    "tenant": tenants.COMMANDS,
}


@click.group(
    epilog=EXIT_CODES_HELP,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(package_name="ciaoweb", prog_name=PROG)
@common_options
def cli() -> None:
    """Operate a ciaoweb cluster: networks, instances, hosts, tenants, leases, events
    and operations, from the REST API and its live event stream.

    \b
    ciao login --demo                 # after `make demo`, in a second terminal
    ciao instance list
    ciao network create data --physnet physnet1 --cidr 192.168.10.0/24
    ciao instance create web --network data --wait
    ciao watch

    The URL and token come from --url/--token, then CIAO_URL/CIAO_TOKEN, then the config
    file `ciao login` writes. Every command takes -o table|json|yaml and --no-headers,
    before or after its name.
    """


@cli.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> None:
    """Print the shell completion script for SHELL.

    \b
    eval "$(ciao completion bash)"      # in ~/.bashrc
    eval "$(ciao completion zsh)"       # in ~/.zshrc
    ciao completion fish > ~/.config/fish/completions/ciao.fish
    """
    script = get_completion_class(shell)(cli, {}, PROG, COMPLETE_VAR)
    click.echo(script.source())


for _name, _resource in RESOURCES.items():
    _group = resource_group(_resource)
    for _command in WRITES.get(_name, ()):
        _group.add_command(_command)
    cli.add_command(_group)
for _command in (*auth.COMMANDS, watch.watch):
    cli.add_command(_command)


def main(argv: Sequence[str] | None = None, state: State | None = None) -> int:
    """Runs `ciao` and returns its exit code (the console script exits with it)."""
    try:
        result = cli.main(
            args=argv,
            prog_name=PROG,
            complete_var=COMPLETE_VAR,
            standalone_mode=False,
            obj=state or State(),
        )
    except click.Abort:
        click.echo("Interrupted.", err=True)
        return ExitCode.INTERRUPTED
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    return result if isinstance(result, int) else ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
