"""A container launch whose DHCP server already runs, on a network node with nothing
queued, sends its plug with the refresh instead of a hop after the server's report. Here
the network node's agent is frozen (SIGSTOP) before the launch, so the refresh cannot
land before the container's udhcpc gives up (three tries a second apart): the launch
must go back to waiting for the server instead of failing, and once the node runs
again end `running` with its reserved address and an active lease from the server."""

from __future__ import annotations

import os
import signal

import pytest

from .conftest import API, SETTLE, ok, results, sriov_attachment

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

FALLBACK = "DHCP failed before its server confirmed"


def _operation_notes(cluster, instance_id: str) -> list[str]:
    operation = results(cluster.api, f"{API}/operations/", instance=instance_id)[0]
    events = results(cluster.api, f"{API}/events/", object_id=operation["id"])
    return [event["message"] for event in events]


def test_a_refresh_that_lands_too_late_sends_the_launch_back_to_wait_for_its_server(cluster, world):
    tenant = world.tenant("beside")
    network = world.network(tenant, world.name("bs"), "10.94.0.0/24")
    first = world.instance(tenant, "bs-first", "container", [network], host="node1")
    world.running(first["id"])  # the network's server runs now
    notes = _operation_notes(cluster, first["id"])
    assert any(n.endswith(": dhcp") for n in notes), notes  # the first launch waited

    # Its own session: dnsmasq (daemonised) is not in it. Frozen about 4 s (udhcpc's three
    # tries, then the report), under the 6 s after which a silent host is declared offline.
    agent = cluster.agents["netnode"].popen.pid
    os.killpg(agent, signal.SIGSTOP)
    try:
        late = world.instance(tenant, "bs-late", "container", [network], host="node2")
        cluster.wait_for(
            lambda: any(FALLBACK in n for n in _operation_notes(cluster, late["id"])),
            timeout=SETTLE,
            what="the launch back in step dhcp after its DHCP client gave up",
        )
        assert world.get(late["id"])["state"] == "provisioning"
    finally:
        os.killpg(agent, signal.SIGCONT)
    body = world.running(late["id"])
    eth1 = sriov_attachment(body, network)
    assert eth1["ip"] == sriov_attachment(late, network)["ip"]  # the reservation it got
    notes = reversed(_operation_notes(cluster, late["id"]))  # oldest first
    steps = [n for n in notes if ": " in n or FALLBACK in n]
    marks = [n.rsplit(": ", 1)[-1] if FALLBACK not in n else "fallback" for n in steps]
    assert marks[:4] == ["plug", "fallback", "dhcp", "plug"], steps
    leases = ok(cluster.api.get(f"{API}/leases/", params={"mac": eth1["mac"]}))["results"]
    assert [(lease["ip"], lease["state"]) for lease in leases] == [(eth1["ip"], "active")]
