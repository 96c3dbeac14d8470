"""Audit events and live updates: every change goes through `record`.

`record` writes an Event row in the caller's transaction and, after commit, pushes the
object's REST representation (taken then, so no serializer query runs while the caller
holds its row locks) to websocket clients through `ciaoweb.events.broadcast`
(imported lazily: `notify` is the one place that talks to it). Which objects are pushed,
with which serializer and to which tenant, their apps declare in `ciaoweb.events.registry`.

Inside `deferred_pushes()` (each controller task, each API request) the pushes of what
committed wait until the block ends: the node tasks and next steps those commits send go
out first, and representing the objects (a few queries each) is off their path.
"""

import contextlib
import importlib
import json
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

from django.db import models, transaction
from rest_framework.utils.encoders import JSONEncoder

from ciaoweb.events.choices import EventKind
from ciaoweb.events.models import Event
from ciaoweb.events.registry import live_type

log = logging.getLogger(__name__)

BROADCAST_MODULE = "ciaoweb.events.broadcast"


def tenant_id_of(obj: models.Model) -> Any:
    """The tenant an object belongs to, for scoping events (None = cluster-wide): a
    tenant itself, or what its app registered (see `registry`), else `obj.tenant_id`."""
    if isinstance(obj, Event._meta.get_field("tenant").related_model):
        return obj.pk
    entry = live_type(obj._meta.model_name)
    return entry.tenant_of(obj) if entry else getattr(obj, "tenant_id", None)


def represent(obj: models.Model) -> dict:
    """The object's REST representation (the serializer its app registered, the one the
    API uses), or just its id for a type nobody registered."""
    entry = live_type(obj._meta.model_name)
    if entry is None:
        return {"id": str(obj.pk)}
    # Through JSON once: UUIDs, dates and decimals become what REST clients see, and what
    # the Redis channel layer (msgpack) can carry.
    data = _serializer(entry.serializer).to_representation(obj)
    return json.loads(json.dumps(data, cls=JSONEncoder))


_serializers = threading.local()


def _serializer(serializer_class: type) -> Any:
    """One unbound serializer per class and thread, reused as a ListSerializer reuses its
    child: DRF builds a serializer's fields anew for each instance (a third of representing
    an instance). A class registered again (tests swap them) gets a serializer of its own."""
    cache = _serializers.__dict__.setdefault("by_class", {})
    if serializer_class not in cache:
        cache[serializer_class] = serializer_class()
    return cache[serializer_class]


def notify(message_type: str, tenant_id: Any, data: Callable[[], dict]) -> None:
    """After commit (and after the current `deferred_pushes` block), publish `data()` to
    websocket clients if the broadcast module is installed. A failure is logged: the
    change it reports is committed already."""

    def push() -> None:
        try:
            broadcast = importlib.import_module(BROADCAST_MODULE)
        except ModuleNotFoundError as exc:
            if exc.name != BROADCAST_MODULE:
                raise
            return
        broadcast.publish(message_type, tenant_id, data())

    def committed() -> None:
        waiting = getattr(_deferred, "pushes", None)
        if waiting is None:
            push()
        else:
            waiting.append(push)

    transaction.on_commit(committed, robust=True)


_deferred = threading.local()  # pushes: held until the outermost block ends; depth


@contextlib.contextmanager
def deferred_pushes() -> Iterator[None]:
    """Hold the pushes of transactions committed inside until the block ends, then send
    them in commit order (even if the block raised: what committed is reported). A nested
    block leaves them to the outermost."""
    defer_pushes()
    try:
        yield
    finally:
        send_deferred_pushes()


def defer_pushes() -> None:
    """Begin a deferral that `send_deferred_pushes` ends: `deferred_pushes` as two calls,
    for hooks that cannot wrap a block (Celery's task_prerun and task_postrun)."""
    _deferred.depth = getattr(_deferred, "depth", 0) + 1
    if _deferred.depth == 1:
        _deferred.pushes = []


def send_deferred_pushes() -> None:
    """End a deferral; the outermost sends what it held."""
    _deferred.depth = max(getattr(_deferred, "depth", 0) - 1, 0)
    if _deferred.depth:
        return
    waiting, _deferred.pushes = getattr(_deferred, "pushes", None) or [], None
    for push in waiting:
        try:
            push()
        except Exception:  # the next ones still go; the change is committed already
            log.exception("websocket push failed")


def record(
    kind: str,
    obj: models.Model,
    message: str,
    data: dict | None = None,
    tenant: Any = None,
) -> Event:
    """Write an audit event for `obj` (call it before deleting the object)."""
    object_type = obj._meta.model_name
    tenant_id = tenant.pk if hasattr(tenant, "pk") else tenant
    if tenant_id is None:
        tenant_id = tenant_id_of(obj)
    event = Event.objects.create(
        tenant_id=tenant_id,
        kind=kind,
        object_type=object_type,
        object_id=obj.pk,
        message=message,
        data=_json_safe(data or {}),
    )
    entry = live_type(object_type)
    if entry is not None and entry.pushed:  # websocket message types: DESIGN §3
        message_type = entry.message_type
        if kind.endswith(".deleted"):  # gone after commit: its last state, taken now
            last = {**represent(obj), "deleted": True}  # lets live clients drop it
            notify(message_type, tenant_id, lambda: last)
        else:  # serialised after commit: outside the caller's row locks, in its final state
            notify(message_type, tenant_id, lambda: represent(obj))
    return event


def _json_safe(data: dict) -> dict:
    return {key: value if _is_plain(value) else str(value) for key, value in data.items()}


def _is_plain(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool | list | dict)


def record_security(message: str, **data: Any) -> Event:
    """A refused message or report, for admins (no tenant, no object): who tried what."""
    log.warning("security: %s %s", message, data)
    return Event.objects.create(
        tenant_id=None,
        kind=EventKind.SECURITY_REFUSED,
        object_type="security",
        object_id=None,
        message=message[:2000],
        data=_json_safe(data),
    )
