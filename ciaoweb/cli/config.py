"""Where the API URL and the token come from: `--url`/`--token`, then `CIAO_URL`/
`CIAO_TOKEN`, then the config file `ciao login` writes
(`$XDG_CONFIG_HOME/ciao/config.json`, else `~/.config/ciao/config.json`, mode 0600)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ciaoweb.cli.errors import CliError, ExitCode

URL_ENV = "CIAO_URL"
TOKEN_ENV = "CIAO_TOKEN"


def config_path(env: Mapping[str, str] = os.environ) -> Path:
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base) / "ciao" / "config.json"


def normalise_url(url: str) -> str:
    """`http://host:8000/`, `http://host:8000/api/v1/` -> `http://host:8000`."""
    url = url.strip().rstrip("/")
    return url.removesuffix("/api/v1").rstrip("/")


def load(env: Mapping[str, str] = os.environ) -> dict[str, Any]:
    path = config_path(env)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise CliError(
            f"cannot read the config file {path}: {exc} (remove it or run `ciao login`)",
            ExitCode.USAGE,
        ) from None
    return data if isinstance(data, dict) else {}


def save(data: dict[str, Any], env: Mapping[str, str] = os.environ) -> Path:
    """Written with mode 0600 from the start (it holds a token), replaced atomically."""
    path = config_path(env)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(data, out, indent=2)
        out.write("\n")
    os.replace(tmp, path)
    return path


def remove(env: Mapping[str, str] = os.environ) -> bool:
    path = config_path(env)
    existed = path.exists()
    path.unlink(missing_ok=True)
    return existed


@dataclass(frozen=True)
class Connection:
    url: str | None
    token: str | None
    # Where each came from: "flag", "env", "config" or "" (nowhere).
    url_source: str = ""
    token_source: str = ""


def resolve(
    url_flag: str | None,
    token_flag: str | None,
    env: Mapping[str, str] = os.environ,
    stored: Mapping[str, Any] | None = None,
) -> Connection:
    """Flags, then the environment, then the config file. The file's token is used only
    for the file's own URL: it was issued by that server, not by one named elsewhere."""
    stored = load(env) if stored is None else stored
    stored_url = normalise_url(stored["url"]) if stored.get("url") else None
    url, url_source = None, ""
    for value, source in ((url_flag, "flag"), (env.get(URL_ENV), "env"), (stored_url, "config")):
        if value:
            url, url_source = normalise_url(value), source
            break
    token, token_source = None, ""
    if token_flag:
        token, token_source = token_flag, "flag"
    elif env.get(TOKEN_ENV):
        token, token_source = env[TOKEN_ENV], "env"
    elif stored.get("token") and (url is None or url == stored_url):
        token, token_source = stored["token"], "config"
        url, url_source = url or stored_url, url_source or "config"
    return Connection(url, token, url_source, token_source)
