"""Fuzz every operation of the OpenAPI schema (`/api/v1/schema/`) with Schemathesis, in
process through the WSGI application, as a cluster admin and as a tenant member.

Each operation gets a few schema-conforming (positive) and schema-violating (negative)
requests. To reach deep code, path ids and the ids in bodies (`network`, `tenant`,
`host`) are often swapped for ids of seeded objects, which the generator cannot guess.
The only property checked is Schemathesis' `not_a_server_error`: whatever arrives, the
answer is never a 5xx. Generation is derandomized, so a run is reproducible.
"""

import json
import os
from collections import Counter

import pytest
import schemathesis
from django.contrib.auth import get_user_model
from django.test import Client
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode

from ciaoweb.events.models import Event
from ciaoweb.instances.models import Attachment
from ciaoweb.inventory.models import PhysicalFunction, VirtualFunction
from ciaoweb.networks.models import Lease, Network
from ciaoweb.operations.models import Operation
from ciaoweb.wsgi import application
from tests.security.conftest import seed_world, token_for

pytestmark = pytest.mark.django_db(transaction=True)

# Cases per operation and role; CIAO_FUZZ_SCALE=10 (or the soak run) explores further.
SCALE = int(os.environ.get("CIAO_FUZZ_SCALE", "5" if os.environ.get("CIAO_SOAK") == "1" else "1"))
EXAMPLES = {GenerationMode.POSITIVE: 3 * SCALE, GenerationMode.NEGATIVE: 2 * SCALE}
# Safe methods first and deletions last, so writes and deletes meet seeded objects.
METHOD_ORDER = {"GET": 0, "POST": 1, "PUT": 2, "PATCH": 3, "DELETE": 4}

MISSING_ID = "00000000-0000-4000-8000-000000000000"
RUNS: Counter = Counter()  # (role, status class) -> cases, for the report below


SCHEMA_PATH = "/api/v1/schema/"
# The schema offers JSON bodies only (tests/api/test_schema.py checks it). Should it offer
# more, multipart stays out: the WSGI test transport cannot encode it for non-objects.
FUZZED_MEDIA_TYPES = ("application/json", "application/x-www-form-urlencoded")


def load_schema():
    """The served schema, loaded like `schemathesis.openapi.from_wsgi` does, with request
    bodies limited to the media types above."""
    answer = Client().get(SCHEMA_PATH, {"format": "json"})
    assert answer.status_code == 200
    raw = json.loads(answer.content)
    for path in raw["paths"].values():
        for operation in path.values():
            content = operation.get("requestBody", {}).get("content")
            if content:
                for media_type in list(content):
                    if media_type not in FUZZED_MEDIA_TYPES:
                        del content[media_type]
    schema = schemathesis.openapi.from_dict(raw)
    schema.app, schema.location = application, SCHEMA_PATH
    return schema


def known_ids(world) -> dict[str, list[str]]:
    """Existing object ids per collection (the first path segment after /api/v1/)."""

    def ids(queryset) -> list[str]:
        return [str(pk) for pk in queryset.values_list("pk", flat=True)[:20]]

    return {
        "tenants": [str(world.tenant_a.pk), str(world.tenant_b.pk)],
        "hosts": [str(h.pk) for h in world.hosts],
        "networks": ids(Network.objects.all()),
        "instances": [str(world.inst_a.pk), str(world.inst_b.pk)],
        "attachments": ids(Attachment.objects.all()),
        "leases": ids(Lease.objects.all()),
        "events": ids(Event.objects.order_by("created")),
        "operations": ids(Operation.objects.order_by("created")),
        "physical-functions": ids(PhysicalFunction.objects.all()),
        "virtual-functions": ids(VirtualFunction.objects.all()),
    }


def deepen(data, case, world, ids: dict[str, list[str]]) -> None:
    """Often replace generated ids by real ones so requests get past the lookups."""
    collection = collection_of(case.operation)
    path_parameters = case.path_parameters or {}
    if "id" in path_parameters and ids.get(collection):
        # Hypothesis starts with the first elements: real ids first, the generated one last.
        chosen = data.draw(st.sampled_from([*ids[collection], None]), label="id")
        if chosen is not None:
            path_parameters["id"] = chosen
    body = case.body if isinstance(case.body, dict) else None
    if body is None:
        return
    choices = {
        "tenant": ids["tenants"],
        "host": [h.name for h in world.hosts] + ids["hosts"],
        "network": ids["networks"],
    }
    items = (
        [body] + [n for n in body.get("networks", []) if isinstance(n, dict)]
        if isinstance(body.get("networks"), list)
        else [body]
    )
    for item in items:
        for key, values in choices.items():
            if key in item:
                chosen = data.draw(st.sampled_from([*values, None]), label=key)
                if chosen is not None:
                    item[key] = chosen


def collection_of(operation) -> str:
    return operation.path.removeprefix("/api/v1/").split("/")[0]


def case_strategy(operation, mode, ids):
    """Schemathesis' strategy for the operation. Negative cases of `/{id}/` operations keep
    a real id and negate the body or query instead: a UUID path parameter has no useful
    negation (the router accepts any segment, the lookup answers 404), and Schemathesis
    spends seconds failing to produce one."""
    if mode.is_negative and "{id}" in operation.path:
        if not operation.body and not operation.query:
            return None
        real = ids.get(collection_of(operation)) or [MISSING_ID]
        return st.sampled_from(real).flatmap(
            lambda pk: operation.as_strategy(generation_mode=mode, path_parameters={"id": pk})
        )
    return operation.as_strategy(generation_mode=mode)


def fuzz_operation(operation, mode, user, world, ids) -> int:
    """Run the operation's examples; return how many requests were sent."""
    sent = 0
    if case_strategy(operation, mode, ids) is None:
        return 0

    @settings(
        max_examples=EXAMPLES[mode],
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],  # no shrinking: the first failure is reported
    )
    @given(case=case_strategy(operation, mode, ids), data=st.data())
    def run(case, data):
        nonlocal sent
        deepen(data, case, world, ids)
        headers = {"Authorization": f"Token {token_for(user)}"}
        response = case.call(headers=headers)
        sent += 1
        RUNS[(user.username, f"{response.status_code // 100}xx")] += 1
        case.validate_response(response, checks=[not_a_server_error], headers=headers)

    try:
        run()
    except Unsatisfiable:
        pass  # e.g. no way to violate the schema of a parameterless GET in negative mode
    return sent


@pytest.mark.parametrize("role", ["admin", "member"])
def test_fuzzed_requests_never_get_a_server_error(role):
    world = seed_world()
    user = world.admin_user if role == "admin" else world.alice_user
    schema = load_schema()
    operations = sorted(
        (result.ok() for result in schema.get_all_operations()),
        key=lambda op: (METHOD_ORDER.get(op.method.upper(), 9), op.path),
    )
    labels = {op.label for op in operations}
    # The schema covers the whole API: the token endpoint (sign-in and revocation) and the
    # quota endpoints (issue 15) included.
    assert {
        "POST /api/v1/instances/",
        "POST /api/v1/instances/{id}/migrate/",
        "POST /api/v1/auth/token/",
        "DELETE /api/v1/auth/token/",
        "POST /api/v1/tenants/{id}/members/",
        "GET /api/v1/tenants/{id}/quota/",
        "PUT /api/v1/tenants/{id}/quota/",
    } <= labels, sorted(labels)
    ids = known_ids(world)
    total = 0
    per_operation = {}
    for operation in operations:
        for mode in EXAMPLES:
            per_operation[(operation.label, mode.value)] = fuzz_operation(
                operation, mode, get_user_model().objects.get(pk=user.pk), world, ids
            )
            total += per_operation[(operation.label, mode.value)]
    untested = [label for (label, mode), n in per_operation.items() if mode == "positive" and not n]
    assert not untested, f"operations without a single positive case: {untested}"
    statuses = {k[1]: v for k, v in RUNS.items() if k[0] == user.username}
    print(f"\nfuzz {role}: {total} cases over {len(operations)} operations, statuses {statuses}")
    assert total >= len(operations) * 2
