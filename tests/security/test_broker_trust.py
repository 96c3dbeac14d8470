"""Issue 14, the messages: against the shared live cluster (its own Redis with ACLs, real
workers), a compromised node (node1's broker login and signing key) and an outsider with
a broker login but no host key try to make the controller believe things. Every attempt
is refused before it changes anything, and leaves a `security.refused` event naming the
sender; an unenrolled agent creates no host. In-process detail: test_message_trust.py."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from kombu import Connection, Producer

from ciaoweb import taskrouting as names
from ciaoweb.agent.app import agent_signer, with_user
from ciaoweb.core import signing
from ciaoweb.core.credentials import Credential, new_secret
from tests.worlds import API, SETTLE, LiveWorld, ok, results

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]


def _refusals(cluster) -> list[dict]:
    return results(cluster.api, "events", kind="security.refused")


def _publish(cluster, login: Credential, signer: signing.Signer | None, task: str, **kwargs):
    """A controller-queue message as an agent's Celery would send it (protocol 1),
    signed by `signer` (None: plain JSON), over `login`'s broker account."""
    body = {
        "task": task,
        "id": new_secret()[:16],
        "args": [],
        "kwargs": kwargs,
        "retries": 0,
        "eta": None,
        "expires": None,
        "utc": True,
    }
    url = with_user(cluster.broker_url, login.broker_user, login.broker_password)
    with Connection(url) as connection:
        producer = Producer(connection, routing_key=names.CONTROLLER_QUEUE)
        if signer is None:
            producer.publish(body, serializer="json")
        else:
            signing.install(signer)  # this test process's own serializer registry
            producer.publish(body, serializer=signing.SERIALIZER)


def _new_refusals(cluster, before: int, count: int) -> list[dict]:
    """The security events recorded since there were `before`, once there are `count`
    more (events are listed newest first)."""

    def arrived() -> list[dict] | None:
        rows = _refusals(cluster)
        return rows[: len(rows) - before] if len(rows) >= before + count else None

    return cluster.wait_for(arrived, timeout=30, what=f"{count} security event(s)")


def _inventory(cluster, host: str) -> dict:
    """The host's inventory as its agent reports it, rebuilt from the API."""
    host_id = next(h["id"] for h in results(cluster.api, "hosts") if h["name"] == host)
    vfs = results(cluster.api, "virtual-functions", host=host_id)
    pfs = []
    for pf in results(cluster.api, "physical-functions", host=host_id):
        mine = [vf for vf in vfs if vf["pf"] == pf["id"]]
        pfs.append(
            {
                **{k: pf[k] for k in ("name", "pci_address", "physnet", "total_vfs", "num_vfs")},
                "vfs": [
                    {
                        "index": vf["index"],
                        "pci_address": vf["pci_address"],
                        "netdev": vf["netdev"],
                        "mac": vf["mac"],
                        "vlan": vf["vlan"] or 0,
                    }
                    for vf in mine
                ],
            }
        )
    return {"host": host, "is_network_node": False, "pfs": pfs}


@pytest.fixture
def node1(cluster) -> Credential:
    return Credential("node1", cluster.secrets["node1"])


def test_a_compromised_node_is_believed_about_nothing_but_itself(cluster, node1):
    world = LiveWorld(cluster)
    try:
        tenant = world.tenant("trust", member=False)
        network = world.network(tenant, world.name("tr"), "10.77.0.0/24", by_admin=True)
        victim = world.running(
            world.instance(tenant, "victim", "container", [network], host="node2")["id"]
        )
        attachment = next(a for a in victim["attachments"] if a["network"] == network["id"])

        def lease_states() -> list[str]:
            found = results(cluster.api, "leases", network=network["id"], mac=attachment["mac"])
            return [lease["state"] for lease in found]

        # The lease row comes from the server's own lease event, which may land after the
        # instance is running (seen in CI: none yet when the attack was over).
        cluster.wait_for(lambda: lease_states() == ["active"], timeout=SETTLE, what="the lease")
        before = len(_refusals(cluster))
        hosts = {h["name"]: h for h in results(cluster.api, "hosts")}
        signer = agent_signer(node1)
        # 1. node1 says node2's instance is released (would delete it and free its VF)
        _publish(
            cluster,
            node1,
            signer,
            names.INSTANCE_RELEASED,
            node="node2",
            result={"instance_id": victim["id"], "ok": True, "generation": 99},
            context={"operation_id": victim["operation"]["id"], "step": "release"},
        )
        # 2. node1 fakes a lease of that network's server (it runs on netnode)
        _publish(
            cluster,
            node1,
            signer,
            names.LEASE_EVENT,
            node="node1",
            event={
                "network_id": network["id"],
                "action": "del",
                "mac": attachment["mac"],
                "ip": attachment["ip"],
            },
        )
        # 3. node1 registers itself as a network node (its true inventory otherwise)
        _publish(
            cluster,
            node1,
            signer,
            names.REGISTER_INVENTORY,
            node="node1",
            inventory=_inventory(cluster, "node1") | {"is_network_node": True},
            owners={},
        )
        # 4. unsigned, over node1's broker login
        _publish(cluster, node1, None, names.HEARTBEAT, node="node2")
        # 5. signed by a host nobody enrolled (a made-up key)
        _publish(
            cluster,
            node1,
            agent_signer(Credential("rogue", new_secret())),
            names.REGISTER_INVENTORY,
            node="rogue",
            inventory={"host": "rogue", "pfs": []},
            owners={},
        )
        refused = _new_refusals(cluster, before, 5)
        text = " | ".join(r["message"] for r in refused)
        assert "node2" in text and "node1" in text and "rogue" in text, text
        assert any("cannot take" in r["message"] for r in refused), text  # the unsigned one
        assert all(r["tenant"] is None for r in refused)  # admins only
        # nothing changed
        after = ok(cluster.api.get(f"{API}/instances/{victim['id']}/"))
        assert after["state"] == "running" and after["host_name"] == "node2"
        assert {a["vf"] for a in after["attachments"]} == {a["vf"] for a in victim["attachments"]}
        assert lease_states() == ["active"]
        hosts_after = {h["name"]: h for h in results(cluster.api, "hosts")}
        assert hosts_after["node1"]["is_network_node"] is False
        assert "rogue" not in hosts_after and set(hosts_after) == set(hosts)
        # and the real node1 still works: it is believed about itself
        world.running(world.instance(tenant, "mine", "container", [network], host="node1")["id"])
    finally:
        world.cleanup()


def test_an_agent_without_a_valid_credential_creates_no_host(cluster, tmp_path):
    forged = Credential("rogue", new_secret()).write(tmp_path / "credential.json")
    agent = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ciaoweb.agent",
            "--node",
            "rogue",
            "--driver",
            "sriov",  # no SR-IOV NIC here: an empty inventory, enough to try to register
            "--broker",
            cluster.broker_url,
            "--credential-file",
            str(forged),
            "--state-dir",
            str(tmp_path / "state"),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20  # long enough to have registered many times over
        while time.monotonic() < deadline and agent.poll() is None:
            assert "rogue" not in {h["name"] for h in results(cluster.api, "hosts")}
            time.sleep(0.5)
    finally:
        agent.kill()
        output = agent.communicate(timeout=10)[0]
    assert "rogue" not in {h["name"] for h in results(cluster.api, "hosts")}
    # refused by the broker itself: its user does not exist
    assert "WRONGPASS" in output or "invalid username-password" in output.lower(), output[-2000:]
