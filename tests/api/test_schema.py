"""The OpenAPI schema (issue 16): the committed docs/openapi.yaml is what the code
generates, generation passes drf-spectacular's validation with warnings as errors, and the
schema tells a client what it needs (JSON bodies, every error answer, clean names, public
descriptions) and the truth (the members endpoint, checked against real answers).

Regenerate the committed file with
`manage.py spectacular --validate --fail-on-warn --file docs/openapi.yaml`.
"""

from __future__ import annotations

import difflib
import inspect
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from django.core.management import call_command
from drf_spectacular.generators import SchemaGenerator

from ciaoweb.instances.api.serializers import MAX_NETWORKS
from tests.api.helpers import url

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
COMMAND = "manage.py spectacular --validate --fail-on-warn --file docs/openapi.yaml"
BODY_METHODS = {"post", "put", "patch"}


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> str:
    """The schema as the code generates it now; any warning fails (--fail-on-warn)."""
    out = tmp_path_factory.mktemp("schema") / "openapi.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    return out.read_text()


@pytest.fixture(scope="module")
def schema(generated) -> dict[str, Any]:
    return yaml.safe_load(generated)


def operations(schema: dict[str, Any]):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def test_the_committed_schema_is_the_generated_one(generated):
    committed = COMMITTED.read_text()
    diff = "".join(
        list(
            difflib.unified_diff(
                committed.splitlines(True), generated.splitlines(True), "committed", "generated"
            )
        )[:60]
    )
    if committed != generated:  # the diff's head, not pytest's diff of two long strings
        pytest.fail(f"docs/openapi.yaml is stale: run `{COMMAND}`\n{diff}")


def test_request_bodies_are_json_only(schema):
    bodies = [(p, m, op["requestBody"]) for p, m, op in operations(schema) if "requestBody" in op]
    assert len(bodies) > 10
    for path, method, body in bodies:
        assert list(body["content"]) == ["application/json"], (method, path)


def test_every_operation_documents_its_errors(schema):
    error, error_list = "#/components/schemas/Error", "#/components/schemas/ErrorList"
    for path, method, operation in operations(schema):
        where = f"{method.upper()} {path}"
        codes = {int(code) for code in operation["responses"]}
        assert 401 in codes, where
        if "{id}" in path:
            assert 404 in codes, where
        if "requestBody" in operation:
            assert {400, 403, 413, 415} <= codes, where
        if method != "get" and not path.endswith("/auth/token/"):
            assert 409 in codes, where
        for code in codes - set(range(200, 300)):
            content = operation["responses"][str(code)]["content"]["application/json"]
            expected = {"oneOf": [{"$ref": error}, {"$ref": error_list}]} if code == 400 else None
            assert content["schema"] == (expected or {"$ref": error}), (where, code)
    sign_in = schema["paths"]["/api/v1/auth/token/"]["post"]["responses"]
    assert "Retry-After" in sign_in["429"]["headers"]
    hosts = schema["paths"]["/api/v1/hosts/"]["get"]["responses"]
    assert {"400", "401", "403", "404"} <= set(hosts)  # admin-only, filtered and paged


def test_names_are_clean(schema):
    ids = [op["operationId"] for _, _, op in operations(schema)]
    assert len(ids) == len(set(ids))
    assert {"instances_migrate", "hosts_evacuate", "auth_token_obtain"} <= set(ids)
    assert not [i for i in ids if i.startswith("api_")]
    numbered = [n for n in schema["components"]["schemas"] if re.search(r"[0-9a-f]{3}Enum$", n)]
    assert not numbered


def _docstrings() -> set[str]:
    """Every docstring of the API's views, their base classes and their methods."""
    generator = SchemaGenerator()
    generator._initialise_endpoints()
    found = set()
    for _path, _regex, _method, callback in generator.endpoints:
        for klass in callback.cls.__mro__:
            for owner in (klass, *vars(klass).values()):
                doc = inspect.getdoc(owner) if callable(owner) else None
                if doc:
                    found.add(" ".join(doc.split()))
    return found


def test_descriptions_are_public_text_not_docstrings(schema):
    docstrings = _docstrings()
    assert len(docstrings) > 5
    texts = [op.get("description", "") for _, _, op in operations(schema)]
    texts += [c.get("description", "") for c in schema["components"]["schemas"].values()]
    leaked = [t for t in texts if t and " ".join(t.split()) in docstrings]
    assert not leaked
    assert all(op.get("summary") for _, _, op in operations(schema))
    network = schema["components"]["schemas"]["NetworkRequest"]["properties"]
    assert all(field.get("description") for field in network.values())


def test_the_networks_bound_is_in_the_schema(schema):
    networks = schema["components"]["schemas"]["InstanceCreateRequest"]["properties"]["networks"]
    assert networks["maxItems"] == MAX_NETWORKS


# -- the schema says what the view answers ---------------------------------------------


def _json_schema(node: Any) -> Any:
    """OpenAPI 3.0's `nullable` as JSON Schema's null type, for jsonschema."""
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _json_schema(value) for key, value in node.items()}
    if node.pop("nullable", False):
        node = {"anyOf": [node, {"type": "null"}]}
    return node


def assert_answer_matches(schema, path: str, method: str, answer) -> None:
    responses = schema["paths"][path][method]["responses"]
    assert str(answer.status_code) in responses, (answer.status_code, answer.content)
    expected = responses[str(answer.status_code)]["content"]["application/json"]["schema"]
    root = {**_json_schema(expected), "components": _json_schema(schema["components"])}
    jsonschema.validate(answer.json(), root)


def test_the_members_endpoint_answers_what_the_schema_says(schema, world):
    path = "/api/v1/tenants/{id}/members/"
    parameters = {p["name"] for p in schema["paths"][path]["get"]["parameters"]}
    assert not parameters & {"name", "q", "ordering"}  # the tenants' filters do not apply
    members = url("tenants", world.tenant_a, "members")
    answer = world.admin.get(members)
    assert answer.status_code == 200 and answer.json()["count"] == 1
    assert_answer_matches(schema, path, "get", answer)
    body = {"username": "dave", "password": "long-enough-pw-1", "role": "member"}
    answer = world.admin.post(members, body, format="json")
    assert answer.status_code == 201 and answer.json()["username"] == "dave"
    assert_answer_matches(schema, path, "post", answer)
    answer = world.admin.post(members, {"username": "dave", "role": "boss"}, format="json")
    assert answer.status_code == 400
    assert_answer_matches(schema, path, "post", answer)
    answer = world.alice.post(members, body, format="json")
    assert answer.status_code == 403
    assert_answer_matches(schema, path, "post", answer)


def test_the_hot_plug_endpoints_document_their_answers(schema):
    """Issue 17: attach and detach are 202s with the attachment, and every refusal the
    services give (eth0 is a 400 on a DELETE, which has no body) is in the schema."""
    attach = schema["paths"]["/api/v1/instances/{id}/attachments/"]["post"]
    assert attach["operationId"] == "instances_attachments"
    body = attach["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert body.endswith("/AttachmentCreateRequest")
    assert {"202", "400", "403", "404", "409"} <= set(attach["responses"])
    detach = schema["paths"]["/api/v1/attachments/{id}/"]["delete"]
    assert {"202", "400", "404", "409"} <= set(detach["responses"])
    for operation in (attach, detach):
        answer = operation["responses"]["202"]["content"]["application/json"]["schema"]
        assert answer["$ref"].endswith("/Attachment")
