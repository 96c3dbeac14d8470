"""Signed Celery messages: every message between an agent and the controller says who
sent it, proved by an HMAC over the whole message (Celery's protocol 1, whose body holds
the task name, id, args, kwargs and eta), so nothing in it can be changed or re-addressed.

    {"v": 1, "sender": "node1", "ts": 1764625200.0, "body": "<the task message, JSON>",
     "mac": HMAC-SHA256(key, sender \\n ts \\n body)}

Keys (ciaoweb.core.credentials): an agent signs with its own host's key and accepts only
messages from "controller" signed with that same key; the controller signs a node task
with that node's key, and its own tasks (from the web process or beat) with the control
key. So a node can neither read nor forge another node's messages, and the web process,
which has no node keys, cannot send node tasks at all.

The controller's tasks get the proved sender as the `sender` keyword (set here, after
checking, whatever the message itself said), and each decides what that sender may say.
A message that fails to verify never reaches a task: `on_refused` is told (the controller
records a security event) and Celery drops it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from kombu.serialization import register

SERIALIZER = "ciao-signed"
CONTENT_TYPE = "application/x-ciao-signed"
CONTROLLER = "controller"  # the sender name of the controller worker and of beat
WEB = "web"  # the API process: it only asks the controller's worker for work
# A message older than this is refused (a replay window; a node task can wait this long
# in the queue of a host that is down).
MAX_AGE_SECONDS = 24 * 3600.0
MAX_SKEW_SECONDS = 300.0


class SignatureError(Exception):
    """A message that is unsigned, tampered with, from an unknown sender, or too old."""

    def __init__(self, message: str, sender: str = "", task: str = "") -> None:
        super().__init__(message)
        self.sender, self.task = sender, task


def mac(key: bytes, sender: str, ts: float, body: str) -> str:
    return hmac.new(key, f"{sender}\n{ts!r}\n{body}".encode(), hashlib.sha256).hexdigest()


@dataclass
class Signer:
    """One process's side: who it is, the key for each message it sends, and the key of
    each sender it accepts (None: refused)."""

    identity: str
    key_for_outgoing: Callable[[dict], bytes]
    key_of_sender: Callable[[str], bytes | None]
    inject_sender: bool = False
    on_refused: Callable[[SignatureError], None] | None = None

    def encode(self, body: dict) -> str:
        payload = json.dumps(body, sort_keys=True, separators=(",", ":"))
        ts = time.time()
        key = self.key_for_outgoing(body)
        return json.dumps(
            {
                "v": 1,
                "sender": self.identity,
                "ts": ts,
                "body": payload,
                "mac": mac(key, self.identity, ts, payload),
            }
        )

    def decode(self, data: str | bytes) -> dict:
        try:
            return self._verified(data)
        except SignatureError as exc:
            if self.on_refused is not None:
                self.on_refused(exc)
            raise

    def _verified(self, data: str | bytes) -> dict:
        try:
            envelope = json.loads(data)
            sender, ts, payload, given = (
                str(envelope["sender"]),
                float(envelope["ts"]),
                str(envelope["body"]),
                str(envelope["mac"]),
            )
        except (ValueError, TypeError, KeyError) as exc:
            raise SignatureError(f"not a signed message: {exc}") from None
        task = _task_name(payload)
        key = self.key_of_sender(sender)
        if key is None:
            raise SignatureError(f"unknown sender {sender!r}", sender, task)
        if not hmac.compare_digest(mac(key, sender, ts, payload), given):
            raise SignatureError(f"bad signature from {sender!r}", sender, task)
        age = time.time() - ts
        if age > MAX_AGE_SECONDS or age < -MAX_SKEW_SECONDS:
            raise SignatureError(f"message from {sender!r} is {age:.0f} s old", sender, task)
        body = json.loads(payload)
        if self.inject_sender and isinstance(body.get("kwargs"), dict):
            body["kwargs"]["sender"] = sender  # proved above, whatever the message said
        return body


def _task_name(payload: str) -> str:
    try:
        return str(json.loads(payload).get("task", ""))[:200]
    except (ValueError, AttributeError):
        return ""


def install(signer: Signer) -> None:
    """Register the serializer for this process (kombu's registry is per process)."""
    register(
        SERIALIZER,
        signer.encode,
        signer.decode,
        content_type=CONTENT_TYPE,
        content_encoding="utf-8",
    )


# The Celery settings every app of ours adds (taskrouting.CELERY_COMMON).
CELERY_SETTINGS = {
    "task_protocol": 1,  # the task name and id inside the signed body
    "task_serializer": SERIALIZER,
    "accept_content": [SERIALIZER],
    "event_serializer": "json",
}


def install_lazy(factory: Callable[[], Signer]) -> None:
    """Register now, build the signer at its first use (the controller's needs Django's
    models, which a Celery app module is imported before)."""
    built: list[Signer] = []

    def signer() -> Signer:
        if not built:
            built.append(factory())
        return built[0]

    register(
        SERIALIZER,
        lambda body: signer().encode(body),
        lambda data: signer().decode(data),
        content_type=CONTENT_TYPE,
        content_encoding="utf-8",
    )
