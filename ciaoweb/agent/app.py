"""The node agent's Celery app: no Django, only the broker it is configured with, as its
own broker user, every message signed with its own key (ciaoweb.core.signing)."""

from __future__ import annotations

import logging
import os
from urllib.parse import quote, urlsplit, urlunsplit

from celery import Celery

from ciaoweb.core import signing
from ciaoweb.core.broker_acl import agent_transport_options
from ciaoweb.core.credentials import Credential
from ciaoweb.core.pdeathsig import install_celery_hooks
from ciaoweb.taskrouting import CELERY_COMMON

from .config import AgentConfig

log = logging.getLogger(__name__)

# Celery lets these environment variables override the broker an app is given; an agent
# serves the broker it is configured with and nothing else.
BROKER_ENV_OVERRIDES = ("CELERY_BROKER_URL", "CELERY_BROKER_READ_URL", "CELERY_BROKER_WRITE_URL")


def with_user(broker_url: str, user: str, password: str) -> str:
    """The broker URL with this agent's broker user (any user in it is replaced)."""
    parts = urlsplit(broker_url)
    host = parts.netloc.rsplit("@", 1)[-1]
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


def agent_signer(credential: Credential | None) -> signing.Signer:
    """Signs with the host's key; accepts only the controller, signing with that key."""

    def own_key(_body: dict) -> bytes:
        if credential is None:
            raise signing.SignatureError("this agent has no credential: enrol the host first")
        return credential.signing_key

    def key_of(sender: str) -> bytes | None:
        return credential.signing_key if credential and sender == signing.CONTROLLER else None

    def refused(exc: signing.SignatureError) -> None:
        log.warning("refused a message (%s): %s", exc.task or "?", exc)

    identity = credential.node if credential else "unenrolled"
    return signing.Signer(identity, own_key, key_of, on_refused=refused)


def make_app(broker_url: str, credential: Credential | None = None) -> Celery:
    for name in BROKER_ENV_OVERRIDES:
        os.environ.pop(name, None)
    if credential is not None:
        broker_url = with_user(broker_url, credential.broker_user, credential.broker_password)
    signing.install(agent_signer(credential))
    app = Celery("ciaoweb-agent", broker=broker_url, include=["ciaoweb.agent.tasks"])
    app.conf.update(CELERY_COMMON)
    if credential is not None:  # its own unacked keys: the only ones its broker user may touch
        app.conf.broker_transport_options = agent_transport_options(
            credential.node, CELERY_COMMON["broker_transport_options"]
        )
    # A node's worker serves its own queue only; it never runs controller tasks.
    app.conf.task_create_missing_queues = True
    # A pool child that has not said "up" within this long is killed (Celery's default
    # is 4 s). On a slow node (QEMU under TCG) a fresh child took longer, and the pool
    # killed and replaced its children in a loop.
    app.conf.worker_proc_alive_timeout = 60.0
    return app


def _configured() -> tuple[str, Credential | None]:
    try:
        config = AgentConfig.from_env()
    except RuntimeError:  # imported outside an agent (tests): it can send nothing
        return os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"), None
    return config.broker_url, config.credential()


app = make_app(*_configured())
# The prefork pool's children die with the agent, even when it is SIGKILLed.
install_celery_hooks()
