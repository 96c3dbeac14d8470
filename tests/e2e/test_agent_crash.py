"""Issue 5, acceptance 7: an agent killed with SIGKILL while instances provision on its
host, then started again: reconciliation leaves no VF owned by a deleted or failed
attachment, and every instance ends `running` or `error` with a reason."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import (
    API,
    SETTLE,
    ok,
    results,
    sim_vfs,
    sriov_attachment,
    vf_location,
    wait_ping,
)

pytestmark = pytest.mark.e2e

HOST = "node2"


def test_agent_killed_while_provisioning_reconciles(cluster, world):
    original = sim_vfs(cluster)
    tenant = world.tenant("crash")
    network = world.network(tenant, "data", "10.67.0.0/24")
    peer = world.running(world.instance(tenant, "peer", "container", [network], host="node1")["id"])
    made = [
        world.instance(tenant, f"k{i}", kind, [network], host=HOST)
        for i, kind in enumerate(("container", "container", "vm", "container"))
    ]
    cluster.agents[HOST].kill()  # SIGKILL, mid-provisioning (the tasks are in flight)
    provisioning = [world.get(m["id"])["state"] for m in made]
    assert set(provisioning) <= {"pending", "provisioning", "running", "error"}, provisioning
    # One instance is deleted while its host's agent is dead: its VF must come back free.
    doomed = made.pop()
    assert world.api.delete(f"{API}/instances/{doomed['id']}/").status_code == 204
    doomed_vf = sriov_attachment(doomed, network)["vf"]
    doomed_location = vf_location(cluster, doomed_vf)

    cluster.start_agent(HOST)
    cluster.wait_for(
        lambda: world.api.get(f"{API}/instances/{doomed['id']}/").status_code == 404,
        timeout=SETTLE,
        what="the instance deleted during the outage gone",
    )
    world.instances.remove(doomed["id"])
    settled = [cluster.wait_instance(m["id"], timeout=SETTLE) for m in made]
    for body in settled:
        assert body["state"] in ("running", "error"), body
        if body["state"] == "error":
            assert body["error"].strip(), f"{body['name']} in error without a reason"
        else:
            att = sriov_attachment(body, network)
            assert att["state"] == "active" and att["ip"]
            if body["kind"] == "container":
                wait_ping(
                    cluster, peer["netns"], att["ip"], sriov_attachment(peer, network)["ifname"]
                )

    # The deleted instance's VF: free in the API, reset and home in the simulator.
    assert ok(world.api.get(f"{API}/virtual-functions/{doomed_vf}/"))["state"] == "free"
    state = cluster.sim.get_vf(*doomed_location)
    assert (state.mac, state.netns) == (original[doomed_location]["mac"], None)

    # Every VF of the host that is not free belongs to a live, non-failed attachment, and
    # every VF plugged into a namespace in the simulator is one of those.
    host_id = next(h["id"] for h in results(world.api, "hosts") if h["name"] == HOST)
    live = {}
    for body in settled:
        att = sriov_attachment(body, network)
        if body["state"] == "running" and att["state"] == "active":
            live[att["vf"]] = att
    busy = [
        vf for vf in results(world.api, "virtual-functions", host=host_id) if vf["state"] != "free"
    ]
    assert {vf["id"] for vf in busy} <= set(live), busy
    plugged = {key for key, vf in sim_vfs(cluster).items() if key[0] == HOST and vf["netns"]}
    expected = {vf_location(cluster, vf_id) for vf_id in live}
    assert plugged == expected, (plugged, expected)
    for key in expected:
        mac = next(a["mac"] for vf_id, a in live.items() if vf_location(cluster, vf_id) == key)
        assert cluster.sim.get_vf(*key).mac == mac
    assert cluster.agents[HOST].alive()
