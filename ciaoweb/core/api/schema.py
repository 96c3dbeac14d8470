"""The OpenAPI schema (`/api/v1/schema/`, committed as docs/openapi.yaml): drf-spectacular's
AutoSchema with what a generated client needs.

- Every operation documents the error answers it can give (400, 401, 403, 404, 409, 413,
  415, 429), all with the one shape `exception_handler` returns: `Error` (`{"detail": ...}`,
  or for bad input a message list per field), a 400 also a plain list of messages. Which
  codes apply is read from the view: its authenticators, permissions, throttles, whether
  the operation takes a body, has a path id or is a list.
- Descriptions are public text only: never a view's docstring (those are for developers),
  only what `extend_schema(description=...)` says; a summary ("List networks", "Create a
  network") is derived from the model for the standard actions.
- A one-method custom action's operation id is its path (`instances_migrate`, not
  `instances_migrate_create`).
- Descriptions of components and fields come from help_text, never from docstrings.
- A nested list's `max_length` / `min_length` (`networks`: at most 8) becomes
  maxItems / minItems.
- A view's `extra_error_codes` (`{action: (codes...)}`) adds codes its rules give that
  the method alone does not tell (the 400 of `DELETE attachments/{id}/` for eth0).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular import openapi
from drf_spectacular.plumbing import ResolvedComponent, is_list_serializer
from rest_framework import permissions

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": (
        "Every error answer has this shape. `detail` says what went wrong (401, 403, 404, "
        "409, 413, 415, 429, and a 400 for a body that is not valid JSON). A 400 for bad "
        "input names instead each refused field with a list of messages, "
        '`{"cidr": ["not a valid IPv4 CIDR"]}`, nested per item of a list, '
        '`{"networks": [{}, {"ip": ["192.168.10.1 is the gateway of data"]}]}`; '
        "`non_field_errors` is about the body as a whole."
    ),
    "properties": {
        "detail": {"type": "string", "description": "What went wrong."},
    },
    "additionalProperties": {},
    "example": {"detail": "no capacity: no online host has 1 free VF(s) on physnet physnet1"},
}
ERROR_LIST_SCHEMA: dict[str, Any] = {
    "type": "array",
    "items": {"type": "string"},
    "description": "A 400 about the request as a whole may also be a plain list of messages.",
    "example": ["not a valid IPv4 CIDR"],
}

ERROR_DESCRIPTIONS = {
    400: "Bad input: a list of messages per refused field (see `Error`).",
    401: "No credentials, or a token that is unknown, expired or revoked.",
    403: (
        "Not allowed: a write reserved to cluster administrators or tenant admins, a "
        "member setting an admin-only field, or a session request without its CSRF token."
    ),
    404: "No such object (another tenant's objects do not exist for a member either).",
    409: (
        "Conflicts with the current state: in use, no capacity left, quota exceeded, "
        "or a concurrent change."
    ),
    413: "The request body is larger than the server accepts.",
    415: "The request body is not JSON (`Content-Type: application/json`).",
    429: "Too many sign-ins: wait as many seconds as `Retry-After` says.",
}
LIST_404 = "No such page."
ADMIN_403 = "Cluster administrators only (or a session request without its CSRF token)."

# Summaries of the standard actions, from the model's verbose names.
SUMMARIES = {
    "list": "List {plural}",
    "create": "Create {a} {name}",
    "retrieve": "Show {a} {name}",
    "update": "Replace {a} {name}",
    "partial_update": "Change some fields of {a} {name}",
    "destroy": "Delete {a} {name}",
}
BODY_METHODS = {"POST", "PUT", "PATCH"}


class AutoSchema(openapi.AutoSchema):
    """REST_FRAMEWORK's DEFAULT_SCHEMA_CLASS."""

    def get_description(self) -> str:
        return ""  # only extend_schema(description=...) describes an operation

    def get_summary(self) -> str | None:
        template = SUMMARIES.get(getattr(self.view, "action", None) or "")
        model = getattr(getattr(self.view, "queryset", None), "model", None)
        if template is None or model is None:
            return None
        name, plural = str(model._meta.verbose_name), str(model._meta.verbose_name_plural)
        article = "an" if name[:1] in "aeiou" else "a"
        return template.format(a=article, name=name, plural=plural)

    def get_operation_id(self) -> str:
        action = getattr(self.view, "action", None)
        handler = getattr(self.view, action, None) if action else None
        mapping = getattr(handler, "mapping", None)  # set on @action methods only
        if mapping is not None and len(mapping) == 1 and self.method != "GET":
            return "_".join(t.replace("-", "_") for t in self._tokenize_path())
        return super().get_operation_id()

    # A serializer's or a `get_<field>` method's docstring is for developers, not clients;
    # fields are described by their help_text.
    def _map_basic_serializer(self, serializer, direction):
        schema = super()._map_basic_serializer(serializer, direction)
        schema.pop("description", None)
        return schema

    def _map_response_type_hint(self, method):
        schema = super()._map_response_type_hint(method)
        schema.pop("description", None)
        return schema

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if schema is not None and is_list_serializer(field):
            if field.max_length is not None:
                schema["maxItems"] = field.max_length
            if field.min_length is not None:
                schema["minItems"] = field.min_length
        return schema

    # -- errors ---------------------------------------------------------------------------

    def error_codes(self) -> list[int]:
        """The error statuses this operation can answer."""
        view, method = self.view, self.method
        has_body = method in BODY_METHODS and self.get_request_serializer() is not None
        is_list = method == "GET" and self._is_list_view()
        codes = []
        if has_body or is_list:
            codes.append(400)  # a list's filters and paging parameters are validated too
        if view.get_authenticators():
            codes.append(401)  # a bad token is refused before anything else
        if method not in permissions.SAFE_METHODS or getattr(view, "admin_only", False):
            codes.append(403)
        if is_list or "{" in self.path:
            codes.append(404)
        if method not in permissions.SAFE_METHODS and getattr(view, "queryset", None) is not None:
            codes.append(409)
        if has_body:
            codes += [413, 415]
        if view.get_throttles():
            codes.append(429)
        # What the view's rules add for an action (a DELETE that refuses with a 400).
        extra = getattr(view, "extra_error_codes", {}).get(getattr(view, "action", None), ())
        return sorted(set(codes) | set(extra))

    def _error_ref(self, name: str, schema: dict[str, Any]) -> dict[str, str]:
        component = ResolvedComponent(
            name=name, type=ResolvedComponent.SCHEMA, object=name, schema=schema
        )
        self.registry.register_on_missing(component)
        return component.ref

    def _error_description(self, code: int, is_list: bool) -> str:
        if code == 404 and is_list:
            return LIST_404
        if code == 403 and getattr(self.view, "admin_only", False):
            return ADMIN_403
        return ERROR_DESCRIPTIONS[code]

    def _error_response(self, code: int, is_list: bool) -> dict[str, Any]:
        error = self._error_ref("Error", ERROR_SCHEMA)
        if code == 400:
            schema = {"oneOf": [error, self._error_ref("ErrorList", ERROR_LIST_SCHEMA)]}
        else:
            schema = error
        response: dict[str, Any] = {
            "description": self._error_description(code, is_list),
            "content": {"application/json": {"schema": schema}},
        }
        if code == 429:
            response["headers"] = {
                "Retry-After": {
                    "schema": {"type": "integer"},
                    "description": "Seconds to wait before signing in again.",
                }
            }
        return response

    def _get_response_bodies(self, direction="response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        is_list = self.method == "GET" and self._is_list_view()
        for code in self.error_codes():
            responses.setdefault(str(code), self._error_response(code, is_list))
        return responses
