"""Domain errors: what the scheduler, IPAM and services refuse, without HTTP in them.

Raised below the API layer; `ciaoweb.core.api.exceptions` turns them into answers:

- `InvalidInput`: 400, the body is its `detail`;
- `Conflict`, `NoCapacity`: 409, `{"detail": message}`.

`detail` has DRF's error shape, so an API client sees one format whoever refused: a list
of messages, or `{field: [messages]}` where a list field nests one entry per item
(`{"networks": [{}, {"ip": ["..."]}]}`).

Also the readable messages for database constraints (see `register_constraint_message`),
which models declare and the API shows for an IntegrityError.
"""

from typing import Any

# A message, a list of details, or {field: detail}.
Detail = str | list | dict


class DomainError(Exception):
    """Base of the refusals a request can meet; `detail` is what its client is told."""

    code = "error"

    def __init__(self, detail: Detail):
        super().__init__(detail)
        self.detail = detail

    def messages(self) -> list[str]:
        """The detail as flat lines, `field: message` (for logs and event messages)."""
        return flatten(self.detail)

    def __str__(self) -> str:
        return "; ".join(self.messages())


class InvalidInput(DomainError):
    """The request itself is wrong (400): a bad value, or a host that cannot take it."""

    code = "invalid"

    def __init__(self, detail: Detail):
        # A bare message becomes a list of one, as DRF's ValidationError does.
        super().__init__([detail] if isinstance(detail, str) else detail)


class Conflict(DomainError):
    """The request is valid but clashes with the current state (e.g. network in use)."""

    code = "conflict"

    def __init__(self, message: str):
        super().__init__(message)


class NoCapacity(DomainError):
    """No VF, IP, VLAN or host is left for the request: the client may retry later."""

    code = "no_capacity"

    def __init__(self, what: str):
        super().__init__(f"no capacity: {what}")


def flatten(detail: Any, prefix: str = "") -> list[str]:
    """`{"networks": [{}, {"ip": ["taken"]}]}` -> `["networks[1]: ip: taken"]`."""
    if isinstance(detail, dict):
        return [
            line for field, value in detail.items() for line in flatten(value, f"{prefix}{field}: ")
        ]
    if isinstance(detail, list | tuple):
        if any(isinstance(item, dict) for item in detail):  # one entry per list item
            label = prefix.removesuffix(": ")
            return [
                line
                for position, item in enumerate(detail)
                for line in flatten(item, f"{label}[{position}]: ")
            ]
        return [line for item in detail for line in flatten(item, prefix)]
    return [f"{prefix}{detail}"]


# Constraint name (as PostgreSQL reports it) -> what the client did wrong.
CONSTRAINT_MESSAGES: dict[str, str] = {}


def register_constraint_message(name: str, message: str) -> None:
    """Apps declare a readable message for their constraints (see each models.py)."""
    CONSTRAINT_MESSAGES[name] = message
