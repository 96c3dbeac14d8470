"""Demo data, created through the public REST API like any client would."""

from __future__ import annotations

import secrets
from collections.abc import Callable

import httpx


def _ok(reply: httpx.Response) -> dict:
    if reply.status_code >= 400:
        raise RuntimeError(
            f"{reply.request.method} {reply.request.url}: {reply.status_code} {reply.text}"
        )
    return reply.json() if reply.content else {}


def seed_demo(api: httpx.Client, progress: Callable[[str], None] = print) -> dict:
    """A tenant with an SR-IOV network per IPAM mode, a shared network, and instances."""
    tenant = _ok(api.post("/api/v1/tenants/", json={"name": "demo"}))
    member_password = secrets.token_urlsafe(12)
    _ok(
        api.post(
            f"/api/v1/tenants/{tenant['id']}/members/",
            json={"username": "alice", "password": member_password, "role": "admin"},
        )
    )

    def network(**fields) -> dict:
        return _ok(api.post("/api/v1/networks/", json={"kind": "sriov", **fields}))

    red = network(
        tenant=tenant["id"],
        name="red",
        physnet="physnet1",
        cidr="10.10.1.0/24",
        ipam="controller",
        dns_domain="red.demo",
    )
    blue = network(
        tenant=tenant["id"],
        name="blue",
        physnet="physnet1",
        cidr="10.10.2.0/24",
        ipam="dynamic",
        dns_domain="blue.demo",
    )
    underlay = network(
        tenant=tenant["id"],
        name="campus",
        physnet="physnet2",
        vlan=300,
        cidr="192.168.30.0/24",
        ipam="underlay",
    )
    shared = network(
        name="shared",
        shared=True,
        physnet="physnet2",
        cidr="10.20.0.0/24",
        ipam="controller",
        dns_domain="shared.demo",
    )
    progress("      networks: red (controller), blue (dynamic), campus (underlay), shared")

    def instance(name: str, kind: str, *networks: dict) -> dict:
        return _ok(
            api.post(
                "/api/v1/instances/",
                json={
                    "name": name,
                    "kind": kind,
                    "tenant": tenant["id"],
                    "networks": [{"network": n["id"]} for n in networks],
                },
            )
        )

    launched = [
        instance("web1", "container", red, blue),
        instance("web2", "container", red, shared),
        instance("vm1", "vm", red),
        instance("probe", "container", underlay),
        instance("guest", "vm", underlay),
    ]
    progress("      instances: " + ", ".join(i["name"] for i in launched))
    return {
        "tenant": tenant,
        "member": {"username": "alice", "password": member_password},
        "networks": [red, blue, underlay, shared],
        "instances": launched,
    }
