"""Control-plane trust, in-process: signed messages (ciaoweb.core.signing) and what the
controller believes of each proved sender (ciaoweb.orchestration.trust). Each refused
message changes nothing in the database and leaves a `security.refused` event saying who
tried what. The same promises against real Redis and real workers:
tests/security/test_broker_trust.py."""

from __future__ import annotations

import json
import time

import pytest

from ciaoweb.agent.app import agent_signer
from ciaoweb.core import signing
from ciaoweb.core.credentials import Credential
from ciaoweb.events.models import Event
from ciaoweb.inventory.models import Host
from ciaoweb.inventory.services import enrol_host
from ciaoweb.networks.models import Lease
from ciaoweb.orchestration import tasks, trust
from ciaoweb.orchestration.models import DhcpServer
from tests.api.helpers import inventory, url

CONTROL_KEY = "test-control-key"


@pytest.fixture(autouse=True)
def control_key(settings):
    settings.CIAO_CONTROL_KEY = CONTROL_KEY


@pytest.fixture
def enrolled(world):
    """node1 and node2 of the world, enrolled: their credentials."""
    return {name: Credential(name, enrol_host(name)[1]) for name in ("node1", "node2")}


def refusals() -> list[Event]:
    return list(Event.objects.filter(kind="security.refused").order_by("created"))


def envelope(credential: Credential, body: dict) -> str:
    return agent_signer(credential).encode(body)


def heartbeat_body(node: str) -> dict:
    return {"task": "controller.heartbeat", "id": "t1", "args": [], "kwargs": {"node": node}}


# --- signatures ---------------------------------------------------------------------------


def test_a_signed_report_reaches_its_task_with_the_proved_sender(enrolled):
    body = heartbeat_body("node1")
    body["kwargs"]["sender"] = "node2"  # whatever the message says, the proof wins
    decoded = trust.controller_signer(signing.CONTROLLER).decode(envelope(enrolled["node1"], body))
    assert decoded["kwargs"] == {"node": "node1", "sender": "node1"}
    assert refusals() == []


@pytest.mark.parametrize(
    "tamper",
    [
        "unsigned",
        "body changed",
        "another node's key",
        "unknown sender",
        "too old",
        "renamed task",
    ],
)
def test_a_forged_or_tampered_message_is_refused_and_recorded(enrolled, tamper):
    controller = trust.controller_signer(signing.CONTROLLER)
    body = heartbeat_body("node1")
    data = json.loads(envelope(enrolled["node1"], body))
    if tamper == "unsigned":
        raw = json.dumps(body)
    else:
        if tamper == "body changed":
            data["body"] = data["body"].replace("node1", "node2")
        elif tamper == "another node's key":
            data = json.loads(envelope(enrolled["node2"], body)) | {"sender": "node1"}
        elif tamper == "unknown sender":
            data = json.loads(envelope(Credential("ghost", "x" * 43), body))
        elif tamper == "too old":
            old = time.time() - signing.MAX_AGE_SECONDS - 60
            data["ts"] = old
            data["mac"] = signing.mac(enrolled["node1"].signing_key, "node1", old, data["body"])
        elif tamper == "renamed task":
            data["body"] = data["body"].replace("controller.heartbeat", "controller.lease_event")
        raw = json.dumps(data)
    with pytest.raises(signing.SignatureError):
        controller.decode(raw)
    [event] = refusals()
    assert event.tenant_id is None and "refused" in event.message


def test_an_agent_accepts_only_the_controller_signing_with_its_own_key(enrolled):
    agent = agent_signer(enrolled["node1"])
    spec = {"task": "agent.ensure_instance", "id": "t2", "args": [], "kwargs": {"node": "node1"}}
    from_controller = trust.controller_signer(signing.CONTROLLER).encode(spec)
    assert agent.decode(from_controller)["kwargs"]["node"] == "node1"
    # node2's spec, signed for node2, is refused by node1's agent
    other = trust.controller_signer(signing.CONTROLLER).encode(spec | {"kwargs": {"node": "node2"}})
    with pytest.raises(signing.SignatureError):
        agent.decode(other)
    # another node cannot pose as the controller
    with pytest.raises(signing.SignatureError):
        agent.decode(agent_signer(enrolled["node2"]).encode(spec))


def test_the_web_process_cannot_sign_node_tasks(enrolled):
    web = trust.controller_signer(signing.WEB)
    with pytest.raises(signing.SignatureError, match="cannot sign"):
        web.encode({"task": "agent.release_instance", "id": "t", "kwargs": {"node": "node1"}})
    assert web.encode({"task": "controller.advance_operation", "id": "t", "kwargs": {}})


# --- what a proved sender may say -----------------------------------------------------------


def test_a_node_may_not_report_about_another_host(enrolled):
    before = Host.objects.get(name="node2").last_seen
    tasks.heartbeat.run(node="node2", sender="node1")
    assert Host.objects.get(name="node2").last_seen == before
    [event] = refusals()
    assert event.data["sender"] == "node1" and "node2" in event.message


def test_only_the_controller_may_ask_for_controller_work(world, enrolled):
    tasks.advance_operation.run(operation_id="00000000-0000-4000-8000-000000000000", sender="node1")
    assert [e.data["task"] for e in refusals()] == ["advance_operation"]


def test_an_unenrolled_agent_creates_no_host(db):
    tasks.register_inventory.run(
        node="rogue", inventory=inventory("rogue", {"physnet1": 2}), owners={}, sender="rogue"
    )
    assert not Host.objects.filter(name="rogue").exists()
    assert "not enrolled" in refusals()[0].message


def test_a_node_cannot_make_itself_a_network_node(world, enrolled):
    claim = {**inventory("node1", {"physnet1": 4}), "is_network_node": True}
    tasks.register_inventory.run(node="node1", inventory=claim, owners={}, sender="node1")
    assert Host.objects.get(name="node1").is_network_node is False
    assert "enrolment stands" in refusals()[0].message


def test_dhcp_and_lease_reports_only_from_the_server_host(world, enrolled, settings):
    netnode = Host.objects.create(name="netnode", is_network_node=True)
    server = DhcpServer.objects.create(
        network_key=world.net_a.pk, network=world.net_a, host=netnode, mac="02:00:00:00:aa:01"
    )
    tasks.dhcp_server_applied.run(
        node="node1", network_id=str(world.net_a.pk), ok=True, error="", netns="x", sender="node1"
    )
    server.refresh_from_db()
    assert server.state == "pending"
    attachment = world.inst_a.attachments.get(network=world.net_a)
    lease = {
        "network_id": str(world.net_a.pk),
        "action": "add",
        "mac": attachment.mac,
        "ip": "192.168.10.77",
        "hostname": "x",
        "expires": 2_000_000_000,
    }
    tasks.lease_event.run(node="node1", event=lease, sender="node1")
    assert not Lease.objects.exists()
    # from the host that runs the server: believed, but only for MACs of that network
    tasks.lease_event.run(
        node="netnode", event=lease | {"mac": "02:66:66:66:66:66"}, sender="netnode"
    )
    assert not Lease.objects.exists()
    tasks.lease_event.run(node="netnode", event=lease, sender="netnode")
    assert Lease.objects.get().mac == attachment.mac
    assert len(refusals()) == 3


# --- enrolment ------------------------------------------------------------------------------


def test_enrolment_shows_the_credential_once(world):
    answer = world.admin.post(
        url("hosts"), {"name": "node9", "is_network_node": True}, format="json"
    )
    assert answer.status_code == 201, answer.data
    credential = answer.data["credential"]
    assert credential["node"] == "node9" and len(credential["secret"]) >= 40
    assert answer.data["broker_user"] == "agent-node9" and answer.data["state"] == "offline"
    shown = world.admin.get(url("hosts", answer.data["id"])).content.decode()
    assert credential["secret"] not in shown and "secret" not in json.loads(shown)
    again = world.admin.post(url("hosts", answer.data["id"], "credential"), format="json")
    assert again.status_code == 200 and again.data["credential"]["secret"] != credential["secret"]
    old = Credential("node9", credential["secret"])
    with pytest.raises(signing.SignatureError):  # the old credential stopped working
        trust.controller_signer(signing.CONTROLLER).decode(envelope(old, heartbeat_body("node9")))
    assert world.alice.post(url("hosts"), {"name": "node10"}, format="json").status_code == 403


def test_a_node_releases_only_its_own_unattached_vfs(world, enrolled):
    """VF keys are the sender's own ("pf/index" on its host): one it does not have is
    refused and recorded; its own VF that an attachment holds is not freed."""
    vf = world.inst_a.attachments.get(network=world.net_a).vf
    host = vf.pf.host.name
    for key in ("pf9/0", "pf0/x", "garbage", f"{vf.pf.name}/{vf.index}"):
        event = {"kind": "vf.orphan_released", "vf": key, "message": "released"}
        tasks.agent_event.run(node=host, event=event, sender=host)
    vf.refresh_from_db()
    assert vf.state == "reserved"  # still the instance's
    assert len(refusals()) == 3 and all(r.data["sender"] == host for r in refusals())


def test_malformed_capabilities_in_an_inventory_are_refused_not_fatal(world, enrolled):
    report = inventory("node1", {"physnet1": 4, "physnet2": 2})
    report["pfs"][0]["capabilities"] = {"link_state": "DROP TABLE", "min_tx_rate": False}
    report["pfs"][1]["capabilities"] = ["link_state"]
    tasks.register_inventory.run(node="node1", inventory=report, owners={}, sender="node1")
    pfs = {pf.name: pf.capabilities for pf in Host.objects.get(name="node1").pfs.all()}
    assert pfs == {"ens0": {"min_tx_rate": False}, "ens1": {}}
    assert len(refusals()) == 2 and all("capabilities" in e.message for e in refusals())
