"""What a host shows about its agent: the version the agent reported and the DHCP servers
the host runs, in the REST representation and on the dashboard's hosts page."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from ciaoweb.agent.node import NodeAgent
from ciaoweb.inventory.models import Host
from ciaoweb.inventory.services import register_inventory
from ciaoweb.networks.services import delete_network
from ciaoweb.orchestration.dhcp import ensure_server
from ciaoweb.orchestration.models import DhcpServer
from ciaoweb.taskrouting import FEATURE_DHCP_PARTIAL
from ciaoweb.version import version
from tests.agent.rigs import FakeRig
from tests.api.helpers import inventory, url


@pytest.fixture
def netnode(world):
    """A network node running tenant a's network's DHCP server (placed, not yet up)."""
    host = register_inventory(
        "netnode", {**inventory("netnode", {"physnet1": 2}), "is_network_node": True}
    )
    ensure_server(world.net_a.pk)
    return host


def test_the_agents_version_and_features_reach_the_host(world, tmp_path):
    rig = FakeRig(tmp_path)
    agent = NodeAgent("node1", rig.driver(), runtime=None, dhcp_client=None)
    report = json.loads(json.dumps(agent.inventory(network_node=False)))  # as sent
    assert report["agent_version"] == version() != ""
    register_inventory("node1", report)
    body = world.admin.get(url("hosts", world.hosts[0])).json()
    assert body["agent_version"] == version()
    assert Host.objects.get(name="node1").features == [FEATURE_DHCP_PARTIAL]


def test_features_are_only_the_known_ones_an_agent_lists(world):
    """The controller sends partial DHCP refreshes only to agents that say they read
    them; an older agent says nothing, and nonsense counts as nothing."""
    for reported, kept in (
        (["dhcp.partial", "teleport"], ["dhcp.partial"]),
        ("dhcp.partial", []),
        ({"dhcp.partial": True}, []),
        (None, []),
    ):
        register_inventory("node1", {**inventory("node1", {"physnet1": 4}), "features": reported})
        assert Host.objects.get(name="node1").features == kept


def test_an_agent_that_says_nothing_or_nonsense_has_no_version(world):
    register_inventory("node1", {**inventory("node1", {"physnet1": 4}), "agent_version": "1.2"})
    assert Host.objects.get(name="node1").agent_version == "1.2"
    register_inventory("node1", inventory("node1", {"physnet1": 4}))  # an older agent
    assert Host.objects.get(name="node1").agent_version == ""
    odd = {**inventory("node1", {"physnet1": 4}), "agent_version": "2.0\x1b[31m" + "9" * 100}
    register_inventory("node1", odd)
    kept = Host.objects.get(name="node1").agent_version
    assert kept.startswith("2.0[31m") and len(kept) == 64
    register_inventory("node1", {**inventory("node1", {"physnet1": 4}), "agent_version": [1]})
    assert Host.objects.get(name="node1").agent_version == ""


def test_the_host_lists_its_dhcp_servers(world, netnode):
    body = world.admin.get(url("hosts", netnode)).json()
    assert body["dhcp_servers"] == [
        {"network": str(world.net_a.pk), "network_name": "data", "state": "pending"}
    ]
    listed = {h["name"]: h for h in world.admin.get(url("hosts")).json()["results"]}
    assert listed["netnode"]["dhcp_servers"] == body["dhcp_servers"]
    assert listed["node1"]["dhcp_servers"] == []
    # An enrolment's answer is the host too: a new credential keeps the list.
    renewed = world.admin.post(url("hosts", netnode, "credential")).json()
    assert renewed["dhcp_servers"] == body["dhcp_servers"]


def test_a_deleted_networks_server_keeps_its_id_without_a_name(world, netnode):
    delete_network(world.net_a)  # the server stays until its host reports it stopped
    assert DhcpServer.objects.filter(network_key=world.net_a.pk).exists()
    (server,) = world.admin.get(url("hosts", netnode)).json()["dhcp_servers"]
    assert server["network"] == str(world.net_a.pk)
    assert server["network_name"] is None


def test_a_server_read_before_its_network_was_deleted_is_shown_without_a_name(world, netnode):
    """A host's `host.updated` is represented after commit, from rows read earlier: the
    network deleted meanwhile made it fail (seen in a cluster's controller log), and the
    dashboard missed that update."""
    from ciaoweb.inventory.api.serializers import HostDhcpServerSerializer

    (server,) = DhcpServer.objects.filter(host=netnode)  # network not yet loaded
    delete_network(world.net_a)
    shown = HostDhcpServerSerializer(server).data
    assert shown["network"] == str(world.net_a.pk) and shown["network_name"] is None


def test_the_hosts_page_shows_version_and_dhcp_servers(world, netnode):
    Host.objects.filter(name="netnode").update(agent_version="0.9.1")
    page = Client()
    page.force_login(world.admin_user)
    body = page.get("/hosts/").content.decode()
    assert '<span data-field="agent_version">0.9.1</span>' in body
    assert "version not reported" in body  # node1 and node2: their agents never said
    assert body.count('data-field="dhcp_servers"') == 1
    assert f'href="/networks/{world.net_a.pk}/">data</a>' in body
