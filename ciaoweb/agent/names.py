"""Names the agent gives to what it creates; all carry the `ciao` prefix."""

from __future__ import annotations

import re

_SAFE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def runtime_name(instance_id: str, node: str) -> str:
    """Per-host name of an instance's namespace: a migrating instance briefly has two."""
    name = f"{str(instance_id).replace('-', '')[:10]}-{node}"
    if not _SAFE.match(name):
        raise ValueError(f"unsafe instance runtime name {name!r}")
    return name


def instance_netns(name: str) -> str:
    return f"ciao-i-{name}"
