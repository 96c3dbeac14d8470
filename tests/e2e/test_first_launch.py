"""The most ordinary thing a user does: create a network and launch on it at once.

Four networks (controller and dynamic IPAM on both physnets) are created, and as soon as
each POST returns, 50 instances in all (containers and VMs, on every host including the
network node) are launched on them concurrently. Every one must end `running`, with an
IP on its SR-IOV interface that the network's own DHCP server handed out (an active
lease for its MAC): the launch waited for the new server instead of racing it.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from .conftest import API, SETTLE, ok, results

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

NETWORKS = (  # label, physnet, ipam
    ("fl-ctl1", "physnet1", "controller"),
    ("fl-dyn1", "physnet1", "dynamic"),
    ("fl-ctl2", "physnet2", "controller"),
    ("fl-dyn2", "physnet2", "dynamic"),
)
COMPUTE = ("node1", "node2", "node3")
PER_NETWORK = (13, 12, 13, 12)  # 50 in all; 25 per physnet (8 VFs per PF and host)
ON_NETWORK_NODE = 2  # per network: the network node's PF also runs the servers' VFs


def _plan(index: int, count: int) -> list[tuple[str, str]]:
    """(host, kind) of each instance of network `index`: a couple on the network node,
    the rest spread over the compute hosts; containers and VMs alternate."""
    hosts = ["netnode"] * ON_NETWORK_NODE
    hosts += [COMPUTE[(index + n) % len(COMPUTE)] for n in range(count - ON_NETWORK_NODE)]
    return [(host, "vm" if n % 2 else "container") for n, host in enumerate(hosts)]


def test_fifty_launches_on_networks_created_the_same_second(cluster, world):
    tenant = world.tenant("firstlaunch")

    def network_then_launches(index: int) -> list[dict]:
        label, physnet, ipam = NETWORKS[index]
        network = world.network(
            tenant, world.name(label), f"10.{90 + index}.0.0/24", ipam=ipam, physnet=physnet
        )
        plan = _plan(index, PER_NETWORK[index])
        with ThreadPoolExecutor(max_workers=len(plan)) as pool:
            return list(
                pool.map(
                    lambda item: world.instance(
                        tenant, f"{label}-{item[0]}-{item[1]}", item[2], [network], host=item[1]
                    )
                    | {"network_id": network["id"]},
                    [(n, host, kind) for n, (host, kind) in enumerate(plan)],
                )
            )

    with ThreadPoolExecutor(max_workers=len(NETWORKS)) as pool:
        launched = [i for batch in pool.map(network_then_launches, range(4)) for i in batch]
    assert len(launched) == 50
    assert {i["host_name"] for i in launched} == {*COMPUTE, "netnode"}
    assert {i["kind"] for i in launched} == {"container", "vm"}

    settled = [world.wait(i["id"], timeout=SETTLE * 2) for i in launched]
    failed = [(i["name"], i["state"], i["error"]) for i in settled if i["state"] != "running"]
    assert not failed, f"{len(failed)} of 50 not running: {failed}"

    def addressed() -> list[str]:
        """Instances whose SR-IOV IP is not yet backed by an active lease of its server."""
        leases = {
            (lease["network"], lease["mac"]): lease
            for lease in results(cluster.api, "leases", state="active")
        }
        missing = []
        for instance in launched:
            body = ok(cluster.api.get(f"{API}/instances/{instance['id']}/"))
            sriov = next(a for a in body["attachments"] if a["network"] == instance["network_id"])
            lease = leases.get((sriov["network"], sriov["mac"]))
            if not sriov["ip"] or lease is None or lease["ip"] != sriov["ip"]:
                missing.append(f"{body['name']} ip={sriov['ip']} lease={lease and lease['ip']}")
        return missing

    # VM guests run their own DHCP: their leases may land just after `running`.
    try:
        cluster.wait_for(lambda: not addressed(), timeout=SETTLE, what="every SR-IOV IP leased")
    except Exception as exc:
        raise AssertionError(f"{exc}: {addressed()}") from None
    operations = results(cluster.api, "operations", kind="create", state="succeeded")
    assert {i["id"] for i in launched} <= {o["instance"] for o in operations}
