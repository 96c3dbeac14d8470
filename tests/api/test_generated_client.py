"""A Python client generated from the committed schema (docs/openapi.yaml) by the pinned
openapi-python-client imports and works against a live cluster (issue 16): sign-in, a
network, an instance, lists, the members endpoint, and error answers parsed into `Error`.

The client is generated once for the module (the generator runs ruff on its output, so
the venv's bin is put on PATH) into a temp dir and imported from there.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import attrs
import pytest

from tests.worlds import SETTLE, LiveWorld

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "docs" / "openapi.yaml"
PACKAGE = "ciaoweb_api_client"  # from the schema's title, "ciaoweb API"
BIN = Path(sys.executable).parent  # the venv: openapi-python-client and ruff


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> SimpleNamespace:
    """The generated package: `.api(module)` is one operation's module, `.models` the
    models, `.Client` / `.AuthenticatedClient` its clients."""
    root = tmp_path_factory.mktemp("client")
    done = subprocess.run(
        [
            str(BIN / "openapi-python-client"),
            "generate",
            "--path",
            str(SCHEMA),
            "--meta",
            "none",
            "--fail-on-warning",
            "--output-path",
            str(root / PACKAGE),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    sys.path.insert(0, str(root))
    try:
        package = importlib.import_module(PACKAGE)
        apis = importlib.import_module(f"{PACKAGE}.api")
        # Every module imports (a schema offering a body as JSON, form and multipart made
        # some of them fail to).
        modules = {
            info.name.rsplit(".", 1)[-1]: importlib.import_module(info.name)
            for info in pkgutil.walk_packages(apis.__path__, f"{PACKAGE}.api.")
            if not info.ispkg
        }
        assert len(modules) > 40, sorted(modules)
        yield SimpleNamespace(
            api=modules.__getitem__,
            operations=sorted(modules),
            models=importlib.import_module(f"{PACKAGE}.models"),
            Client=package.Client,
            AuthenticatedClient=package.AuthenticatedClient,
        )
    finally:
        sys.path.remove(str(root))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


@pytest.fixture(scope="module")
def live(cluster):
    made = LiveWorld(cluster)
    yield made
    made.cleanup()


def unparsed(value: Any, where: str = "") -> list[str]:
    """Where a nested object stayed a plain dict: the generated parser of a nullable or
    union field falls back to the raw value when its model refuses it. Free-form fields
    (`Any`, e.g. an event's `data`) and additional properties may hold dicts."""
    if attrs.has(type(value)):
        found = []
        for field in attrs.fields(type(value)):
            free_form = field.name == "additional_properties" or str(field.type).startswith("Any")
            if not free_form:
                found += unparsed(getattr(value, field.name), f"{where}.{field.name}")
        return found
    if isinstance(value, list):
        return [path for i, item in enumerate(value) for path in unparsed(item, f"{where}[{i}]")]
    return [where] if isinstance(value, dict) else []


def parsed_error(generated: SimpleNamespace, reply, status: int):
    """The reply's body as the client's `Error` model, after checking its status."""
    assert reply.status_code == status, (reply.status_code, reply.content)
    assert isinstance(reply.parsed, generated.models.Error), reply.parsed
    return reply.parsed


def test_a_generated_client_drives_the_api(generated, live, cluster):
    models, api = generated.models, generated.api
    tenant = live.tenant("genclient")
    anonymous = generated.Client(base_url=cluster.url)

    # sign in: the token, then a client that sends it
    reply = api("auth_token_obtain").sync_detailed(
        client=anonymous,
        body=models.SignInRequest(username=tenant.username, password=tenant.password),
    )
    assert reply.status_code == 200 and isinstance(reply.parsed, models.Token)
    member = generated.AuthenticatedClient(
        base_url=cluster.url, token=reply.parsed.token, prefix="Token"
    )
    admin = generated.AuthenticatedClient(
        base_url=cluster.url, token=cluster.admin_token, prefix="Token"
    )

    # a network and an instance on it, as the tenant's member
    reply = api("networks_create").sync_detailed(
        client=member,
        body=models.NetworkRequest(
            name="data",
            kind=models.NetworkKindEnum.SRIOV,
            physnet="physnet1",
            cidr="10.77.0.0/24",
        ),
    )
    assert reply.status_code == 201, reply.content
    network = reply.parsed
    live.networks.append({"id": str(network.id), "name": network.name})
    assert network.vlan is not None and network.ipam == models.IpamEnum.CONTROLLER

    reply = api("instances_create").sync_detailed(
        client=member,
        body=models.InstanceCreateRequest(
            name="web",
            kind=models.InstanceKindEnum.CONTAINER,
            networks=[models.InstanceNetworkRequest(network=network.id)],
        ),
    )
    assert reply.status_code == 201, reply.content
    instance = reply.parsed
    live.instances.append(str(instance.id))
    assert instance.state == models.InstanceStateEnum.PENDING

    # the running instance parses too: host, VF, IP and its latest operation filled in
    def running():
        current = api("instances_retrieve").sync(client=member, id=instance.id)
        return current if current.state == models.InstanceStateEnum.RUNNING else None

    current = cluster.wait_for(running, timeout=SETTLE, interval=0.2, what="instance running")
    sriov = next(a for a in current.attachments if a.network == network.id)
    assert sriov.vf and sriov.ip and sriov.ip_source == models.IpSourceEnum.CONTROLLER
    assert current.operation.kind == models.OperationKindEnum.CREATE

    # lists
    page = api("instances_list").sync(client=member)
    assert isinstance(page, models.PaginatedInstanceList) and page.count == 1
    assert [i.id for i in page.results] == [instance.id]
    page = api("networks_list").sync(client=member)
    assert network.id in {n.id for n in page.results}
    # every collection, read by the admin, parses into its models, nested ones included
    lists = [name for name in generated.operations if name.endswith("_list")]
    assert len(lists) >= 10, lists
    for name in lists:
        path = {"id": tenant.id} if name == "tenants_members_list" else {}
        page = api(name).sync(client=admin, **path)
        assert type(page).__name__.startswith("Paginated"), (name, page)
        assert not unparsed(page), (name, unparsed(page))
        assert page.results or name == "leases_list", name

    # the members endpoint: a page of memberships, and 201 with the one membership
    page = api("tenants_members_list").sync(client=admin, id=tenant.id)
    assert isinstance(page, models.PaginatedMembershipList)
    assert [m.username for m in page.results] == [tenant.username]
    reply = api("tenants_members_create").sync_detailed(
        client=admin,
        id=tenant.id,
        body=models.MemberRequest(username=tenant.username, role=models.MembershipRoleEnum.MEMBER),
    )
    assert reply.status_code == 201 and isinstance(reply.parsed, models.Membership)
    assert reply.parsed.username == tenant.username

    # errors, parsed into the one error model
    reply = api("networks_create").sync_detailed(
        client=member,
        body=models.NetworkRequest(
            name="bad", kind=models.NetworkKindEnum.SRIOV, physnet="physnet1", cidr="10.78.0.0/33"
        ),
    )
    error = parsed_error(generated, reply, 400)
    assert error.additional_properties.keys() == {"cidr"} and error["cidr"]
    reply = api("networks_destroy").sync_detailed(client=member, id=network.id)
    assert "in use" in parsed_error(generated, reply, 409).detail
    reply = api("hosts_list").sync_detailed(client=member)
    assert parsed_error(generated, reply, 403).detail
    stranger = generated.AuthenticatedClient(base_url=cluster.url, token="0" * 40, prefix="Token")
    reply = api("instances_list").sync_detailed(client=stranger)
    assert parsed_error(generated, reply, 401).detail

    reply = api("instances_destroy").sync_detailed(client=member, id=instance.id)
    assert reply.status_code == 204  # `live` waits until it is gone
