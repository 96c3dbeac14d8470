"""Per-host credentials, without Django (the agent imports this too).

Enrolling a host issues one random secret, shown once. Two keys are derived from it, so
one leaked purpose does not give the other: the host agent's broker password (its Redis
ACL user `agent-<host>`) and its message-signing key (HMAC over every message between
it and the controller, see `ciaoweb.core.signing`). The controller keeps the secret
(admins only ever see it in the enrolment answer); the agent keeps it in a 0600 file.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def derive(secret: str, purpose: str) -> str:
    return hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).hexdigest()


def broker_password(secret: str) -> str:
    return derive(secret, "ciao broker password")


def signing_key(secret: str) -> bytes:
    return derive(secret, "ciao message signing").encode()


def agent_broker_user(node: str) -> str:
    return f"agent-{node}"


@dataclass(frozen=True)
class Credential:
    """What an agent needs to talk to the controller: who it is and its secret."""

    node: str
    secret: str

    @property
    def broker_user(self) -> str:
        return agent_broker_user(self.node)

    @property
    def broker_password(self) -> str:
        return broker_password(self.secret)

    @property
    def signing_key(self) -> bytes:
        return signing_key(self.secret)

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Written 0600 from the start (never briefly readable by others)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(asdict(self), out)
        os.replace(tmp, path)
        return path

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> Credential:
        data = json.loads(Path(path).read_text())
        return cls(node=str(data["node"]), secret=str(data["secret"]))
