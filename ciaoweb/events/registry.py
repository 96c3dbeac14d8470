"""The object types whose changes `events.services.record` pushes to websocket clients.

The events app imports no app's serializers: each app registers its own types in its
`AppConfig.ready()`, with the serializer its REST API uses (REST and websocket clients
see the same representation):

    from ciaoweb.events.registry import register_live_type

    class InstancesConfig(AppConfig):
        def ready(self) -> None:
            from ciaoweb.instances.api.serializers import InstanceSerializer

            register_live_type("instance", InstanceSerializer)

`register_live_type(model_name, serializer, *, tenant_of=None, pushed=True)`:

- `model_name`: the model's `_meta.model_name`, also the websocket message type's
  prefix (`<model_name>.updated`).
- `serializer`: a serializer class; `serializer(obj).data` is the representation.
- `tenant_of(obj)`: the id of the tenant whose clients see the object and its events
  (None: cluster admins only). Default: `obj.tenant_id`.
- `pushed=False`: represented (`events.services.represent`) but not pushed.

Registering a name again replaces its entry (tests may swap a serializer).
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

TenantOf = Callable[[Any], Any]


def _own_tenant(obj: Any) -> Any:
    return getattr(obj, "tenant_id", None)


@dataclass(frozen=True)
class LiveType:
    model_name: str
    serializer: type
    tenant_of: TenantOf
    pushed: bool

    @property
    def message_type(self) -> str:
        """The websocket message type for changes of this type."""
        return f"{self.model_name}.updated"


_types: dict[str, LiveType] = {}


def register_live_type(
    model_name: str, serializer: type, *, tenant_of: TenantOf | None = None, pushed: bool = True
) -> None:
    """Declare how objects of `model_name` are represented, scoped and pushed."""
    _types[model_name] = LiveType(
        model_name=model_name,
        serializer=serializer,
        tenant_of=tenant_of or _own_tenant,
        pushed=pushed,
    )


def live_type(model_name: str) -> LiveType | None:
    """The registered entry, or None for objects that are only audited."""
    return _types.get(model_name)


def pushed_message_types() -> frozenset[str]:
    """Every message type the broadcast may send."""
    return frozenset(entry.message_type for entry in _types.values() if entry.pushed)
