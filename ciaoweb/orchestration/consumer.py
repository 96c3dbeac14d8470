"""The controller worker's Celery consumer: the broker watch (ciaoweb.core.broker_watch),
and a message it cannot take is recorded.

Celery drops (acks) a message it cannot decode; for the controller that message is an
attempt to talk to it unsigned (a content type it does not accept), or signed wrongly.
Either way admins see a security event. A bad signature is already recorded with its
sender by the signer (ciaoweb.orchestration.trust); the rest is recorded here.
"""

from __future__ import annotations

from ciaoweb.core.broker_watch import Consumer
from ciaoweb.core.signing import SignatureError


class RecordingConsumer(Consumer):
    def on_decode_error(self, message, exc) -> None:
        cause = exc.args[0] if exc.args else exc
        if not isinstance(cause, SignatureError):
            from . import trust  # Django's models: the consumer class loads before them

            trust.refuse(
                "",
                f"a message it cannot take ({type(cause).__name__}: {cause})"[:500],
                content_type=str(message.content_type)[:100],
            )
        super().on_decode_error(message, exc)
