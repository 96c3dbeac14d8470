"""Issue 5, acceptance 1 and 2: a tenant's containers and VMs on one `controller` SR-IOV
network across hosts reach each other over their VFs and resolve each other's names
through the network's DNS; another tenant's network with the same CIDR on another VLAN
sees none of it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.conftest import (
    dhcp_server_ip,
    netns_exec,
    never_pings,
    pings,
    sriov_attachment,
    wait_guest_address,
    wait_ping,
)

pytestmark = pytest.mark.e2e

CIDR = "10.61.0.0/24"
LAYOUT = [
    ("c1", "container", "node1"),
    ("c2", "container", "node2"),
    ("v1", "vm", "node3"),
    ("v2", "vm", "node1"),
]


@pytest.fixture(scope="module")
def tenant_a(cluster, module_world):
    """Tenant A: two containers and two VMs on three hosts, one network with DNS."""
    world = module_world
    tenant = world.tenant("conn-a")
    domain = f"{world.suffix}.a.test"
    network = world.network(tenant, "data", CIDR, dns_domain=domain)
    created = [
        world.instance(tenant, name, kind, [network], host=host) for name, kind, host in LAYOUT
    ]
    instances = {}
    for made in created:
        body = world.running(made["id"])
        instances[body["name"]] = body
    return {
        "world": world,
        "tenant": tenant,
        "network": network,
        "domain": domain,
        "instances": instances,
        "created": {m["name"]: m for m in created},
    }


def test_tenant_instances_on_one_network_ping_and_resolve(cluster, tenant_a):
    network, instances = tenant_a["network"], tenant_a["instances"]
    for name, kind, host in LAYOUT:
        body = instances[name]
        assert (body["state"], body["kind"], body["host_name"]) == ("running", kind, host)
        att = sriov_attachment(body, network)
        reserved = sriov_attachment(tenant_a["created"][name], network)
        # The IP the controller allocated at create time is the one it still shows.
        assert reserved["ip"] and att["ip"] == reserved["ip"], (name, reserved, att)
        assert att["ip_source"] == "controller" and att["state"] == "active"
        assert att["mac"] == reserved["mac"] and att["vf"]
    assert len({h for _, _, h in LAYOUT}) == 3

    # VMs' guests configure themselves by DHCP from the network's server.
    for name in ("v1", "v2"):
        att = sriov_attachment(instances[name], network)
        wait_guest_address(cluster, instances[name]["netns"], att["ifname"], att["ip"])

    for src in ("c1", "c2"):
        src_att = sriov_attachment(instances[src], network)
        for dst, body in instances.items():
            if dst == src:
                continue
            ip = sriov_attachment(body, network)["ip"]
            wait_ping(cluster, instances[src]["netns"], ip, src_att["ifname"])

    server = dhcp_server_ip(network)
    for src in ("c1", "c2", "v1"):
        for name, body in instances.items():
            fqdn = f"{name}.{tenant_a['domain']}"
            want = sriov_attachment(body, network)["ip"]

            def resolves(netns=instances[src]["netns"], fqdn=fqdn, want=want) -> bool:
                done = netns_exec(netns, "busybox", "nslookup", fqdn, server)
                return done.returncode == 0 and want in done.stdout.split("Name:", 1)[-1]

            cluster.wait_for(
                resolves,
                timeout=15,
                interval=0.2,
                what=f"{fqdn} -> {want} through {server} from {src}",
            )


def test_other_tenant_same_cidr_other_vlan_is_isolated(cluster, tenant_a, world):
    network_a = tenant_a["network"]
    tenant_b = world.tenant("conn-b")
    network_b = world.network(tenant_b, "data", CIDR)
    assert network_b["vlan"] != network_a["vlan"]
    assert network_b["physnet"] == network_a["physnet"] and network_b["cidr"] == network_a["cidr"]
    # Addresses tenant A does not use, so a reply could only come from tenant A.
    ok_b = []
    for name, host, ip in (("b1", "node1", "10.61.0.100"), ("b2", "node2", "10.61.0.101")):
        body = {
            "name": name,
            "kind": "container",
            "tenant": tenant_b.id,
            "host": host,
            "networks": [{"network": network_b["id"], "ip": ip}],
        }
        reply = world.api.post("/api/v1/instances/", json=body)
        assert reply.status_code == 201, reply.text
        world.instances.append(reply.json()["id"])
        ok_b.append(reply.json()["id"])
    b1, b2 = (world.running(i) for i in ok_b)
    b1_att, b2_att = sriov_attachment(b1, network_b), sriov_attachment(b2, network_b)
    assert (b1_att["ip"], b2_att["ip"]) == ("10.61.0.100", "10.61.0.101")

    # The test can pass: tenant B's own peer answers over the VF...
    wait_ping(cluster, b1["netns"], b2_att["ip"], b1_att["ifname"])
    # ...while none of tenant A's instances ever does. (Both networks have a DHCP server
    # on .254, each on its own VLAN: that address answers either tenant, so no probe.)
    probes = [
        (b1["netns"], sriov_attachment(body, network_a)["ip"], b1_att["ifname"])
        for body in tenant_a["instances"].values()
    ]
    # And the other way round: tenant A cannot reach tenant B's addresses.
    a_container = tenant_a["instances"]["c1"]
    a_if = sriov_attachment(a_container, network_a)["ifname"]
    probes += [(a_container["netns"], ip, a_if) for ip in (b1_att["ip"], b2_att["ip"])]
    with ThreadPoolExecutor(len(probes)) as pool:
        silent = list(pool.map(lambda probe: never_pings(*probe), probes))
    crossed = [probe for probe, quiet in zip(probes, silent, strict=True) if not quiet]
    assert not crossed, f"packets crossed between tenants: {crossed}"
    # Tenant B's peer still answers: the silence above is isolation, not a dead datapath.
    assert pings(b1["netns"], b2_att["ip"], b1_att["ifname"], count=3)
