#!/usr/bin/env python3
"""The broker's ACL file for a deployment (docs/deploy.md, "Redis").

Run with the deployment's own interpreter (`/opt/ciaoweb/bin/python`): it imports the
rules of `ciaoweb.core.broker_acl`, the same the local cluster and its tests use.

    broker_acl.py users --env-file /etc/ciaoweb/web.env --env-file /etc/ciaoweb/controller.env \
        --env-file /etc/ciaoweb/ciaoweb.env [--admin-password-file FILE]
    broker_acl.py agent --credential-file /etc/ciaoweb/credential.json

`users` prints `default` (off), `web`, `controller`, `cache` (when CIAO_CACHE_URL names
it) and, given a password file, `ciao-admin` (for `ACL LOAD`; give it to no process). The
passwords come from the URLs of the env files the units read (REDIS_URL,
CELERY_BROKER_URL, CIAO_CACHE_URL), so they are written down once. `agent` prints the
line of one enrolled host from its credential file (its broker password is derived from
the secret). Each line holds a SHA-256 of the password, never the password.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ciaoweb.core.broker_acl import (
    _COMMON,
    CONTROLLER_USER,
    DEFAULT_RULE,
    WEB_USER,
    admin_rule,
    agent_rule,
    controller_rule,
    password_hash,
    web_rule,
)
from ciaoweb.core.credentials import Credential

CACHE_USER = "cache"
# ciaoweb.settings_production.CACHE_KEY_PREFIX: Django's RedisCache keys are
# "<prefix>:<version>:<key>".
CACHE_KEYS = "ciao-cache:*"
# What Django's RedisCache sends (django/core/cache/backends/redis.py), FLUSHDB (clear())
# excepted: on a shared Redis nobody may empty the database.
CACHE_COMMANDS = (
    "+get",
    "+set",
    "+mget",
    "+mset",
    "+del",
    "+exists",
    "+incrby",
    "+expire",
    "+persist",
)
URL_VARIABLES = ("REDIS_URL", "CELERY_BROKER_URL", "CIAO_CACHE_URL")
PLACEHOLDER = "change-me"  # the example env files' (ciaoweb.settings_production's too)
MIN_PASSWORD_LENGTH = 16


class AclError(ValueError):
    pass


def read_env_file(path: Path) -> dict[str, str]:
    """A systemd EnvironmentFile: KEY=VALUE lines, `#`/`;` comments, optional quotes."""
    values = {}
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise AclError(f"{path}:{number}: not KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def cache_rule(password: str) -> str:
    """Django's cache (sign-in throttles of every API process), its own keys only."""
    return " ".join(
        ["user", CACHE_USER, "on", password_hash(password), "resetkeys", "resetchannels"]
        + ["-@all", *_COMMON, f"({' '.join(CACHE_COMMANDS)} ~{CACHE_KEYS})"]
    )


def passwords_from(env_files: list[Path]) -> dict[str, str]:
    """user -> password, from every broker or cache URL of the env files."""
    found: dict[str, str] = {}
    for path in env_files:
        env = read_env_file(path)
        for variable in URL_VARIABLES:
            if not env.get(variable):
                continue
            parts = urlsplit(env[variable])
            if not parts.username or parts.password is None:
                raise AclError(f"{path}: {variable} names no user and password")
            user, password = unquote(parts.username), unquote(parts.password)
            if PLACEHOLDER in password or len(password) < MIN_PASSWORD_LENGTH:
                raise AclError(
                    f"{path}: {variable}: the password of {user} is the example's or shorter "
                    f"than {MIN_PASSWORD_LENGTH} characters: generate one"
                )
            if found.get(user, password) != password:
                raise AclError(f"{path}: {variable} gives user {user} another password")
            found[user] = password
    return found


def users_file(env_files: list[Path], admin_password: str | None = None) -> str:
    passwords = passwords_from(env_files)
    missing = [user for user in (WEB_USER, CONTROLLER_USER) if user not in passwords]
    if missing:
        raise AclError(
            f"no URL with user {' or '.join(missing)} in {', '.join(map(str, env_files))}"
        )
    unknown = set(passwords) - {WEB_USER, CONTROLLER_USER, CACHE_USER}
    if unknown:
        raise AclError(f"unknown broker users {', '.join(sorted(unknown))}")
    lines = [
        DEFAULT_RULE,
        web_rule(passwords[WEB_USER]),
        controller_rule(passwords[CONTROLLER_USER]),
    ]
    if CACHE_USER in passwords:
        lines.append(cache_rule(passwords[CACHE_USER]))
    if admin_password is not None:
        lines.append(admin_rule(admin_password))
    return "\n".join(lines) + "\n"


def agent_line(credential_file: Path) -> str:
    credential = Credential.read(credential_file)
    return agent_rule(credential.node, credential.broker_password) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    users = commands.add_parser("users", help="default, web, controller, cache, ciao-admin")
    users.add_argument("--env-file", type=Path, action="append", required=True)
    users.add_argument("--admin-password-file", type=Path)
    agent = commands.add_parser("agent", help="one enrolled host's line")
    agent.add_argument("--credential-file", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "users":
            admin = (
                args.admin_password_file.read_text().strip() if args.admin_password_file else None
            )
            sys.stdout.write(users_file(args.env_file, admin))
        else:
            sys.stdout.write(agent_line(args.credential_file))
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
