"""Placing managed DHCP/DNS servers: one per `controller`/`dynamic` SR-IOV network, on a
network node with a free VF on the network's physnet."""

from __future__ import annotations

import logging
from collections import Counter

from django.db import transaction
from django.db.models import F, Q

from ciaoweb import taskrouting as names
from ciaoweb.core.exceptions import InvalidInput, NoCapacity
from ciaoweb.core.locks import hold_until_commit
from ciaoweb.instances.macs import new_mac
from ciaoweb.instances.scheduler import place
from ciaoweb.inventory.choices import HostState, VfState
from ciaoweb.inventory.models import Host, PhysicalFunction, VirtualFunction
from ciaoweb.networks.choices import Ipam, NetworkKind
from ciaoweb.networks.models import Network

from . import sender
from .choices import DhcpServerState
from .models import DhcpServer
from .specs import (
    ReservationScope,
    dhcp_server_spec,
    managed,
    removal_spec,
    takes_partial_refreshes,
)

log = logging.getLogger(__name__)


def _existing(network: Network) -> DhcpServer | None:
    return (
        DhcpServer.objects.select_related("host", "vf__pf").filter(network_key=network.pk).first()
    )


@transaction.atomic
def _place(network: Network) -> DhcpServer | None:
    # The network's row lock serialises concurrent first launches (a lock on the server
    # row cannot: it does not exist yet, and all but one would hit its unique key).
    if not Network.objects.select_for_update().filter(pk=network.pk).exists():
        return None
    existing = _existing(network)
    if existing is not None:
        return existing
    nodes = Host.objects.filter(is_network_node=True, state=HostState.ONLINE).order_by("name")
    if network.kind == NetworkKind.OVERLAY:  # reached through a veth in the VXLAN segment
        node = nodes.first()
        if node is not None:
            return DhcpServer.objects.create(
                network_key=network.pk, network=network, host=node, vf=None, mac=new_mac()
            )
    for node in nodes if network.kind == NetworkKind.SRIOV else []:
        try:
            placement = place(Counter({network.physnet: 1}), host=node)
        except (NoCapacity, InvalidInput):  # this node is full: try the next one
            continue
        vf = placement.take(network.physnet)
        mac = new_mac()
        vf.state, vf.mac, vf.vlan = VfState.IN_USE, mac, network.vlan
        vf.save(update_fields=["state", "mac", "vlan", "updated"])
        return DhcpServer.objects.create(
            network_key=network.pk, network=network, host=node, vf=vf, mac=mac
        )
    log.warning("no online network node with a free VF on %s for %s", network.physnet, network)
    return None


def check_capacity(network: Network) -> None:
    """A new managed SR-IOV network (or one becoming managed, or moving physnet) needs a
    network node VF on its physnet for its DHCP server: NoCapacity (409) when every one
    is taken or promised to a network still waiting for its server, so one tenant cannot
    leave the next one's network without DHCP. Before any network node has registered
    nothing is known and nothing is refused (servers are placed when one does).

    Concurrent creations on the same physnet count one after the other (a named lock
    held to commit). A VF whose server is being removed counts as
    free: once its removal is reported, waiting networks are placed
    (`results.dhcp_server_applied`)."""
    if network.kind != NetworkKind.SRIOV or not managed(network):
        return
    hold_until_commit(f"dhcp-capacity:{network.physnet}")
    pfs = PhysicalFunction.objects.filter(host__is_network_node=True, physnet=network.physnet)
    if not pfs.exists():
        return
    # A deleted network's server being removed gives its VF back in a moment.
    free = (
        VirtualFunction.objects.filter(pf__in=pfs)
        .filter(Q(state=VfState.FREE) | Q(dhcp_server__state=DhcpServerState.REMOVING))
        .count()
    )
    waiting = (
        Network.objects.filter(
            kind=NetworkKind.SRIOV, physnet=network.physnet, ipam__in=Ipam.MANAGED
        )
        .exclude(pk__in=DhcpServer.objects.values("network_key"))
        .exclude(pk=network.pk)
        .count()
    )
    if free <= waiting:
        raise NoCapacity(
            f"the network nodes have no VF left on {network.physnet} for this network's "
            "DHCP server; an admin can add network node capacity or delete unused networks"
        )


def server_signature(
    network: Network, context: dict | None = None, scope: ReservationScope | None = None
):
    """The task that makes the network's server exist with current reservations (placing
    the server first if it has none), or None when it cannot be placed yet. `context`
    (an operation's step) comes back with the agent's report; `scope` limits the
    reservations sent to the MACs it names (`dhcp_server_spec`).

    On every launch the server already exists: it is read without a lock, and the
    network's row is locked only to place a missing one."""
    if not managed(network):
        return None
    server = _existing(network)
    if server is None and _place(network) is not None:
        server = _existing(network)  # re-read with its host and VF
    if server is None or server.state == DhcpServerState.REMOVING:
        return None
    spec = current_spec(server, network, scope)
    if context:
        spec["context"] = context
    return sender.signature(names.ENSURE_DHCP_SERVER, server.host.name, spec=spec)


@transaction.atomic
def current_spec(
    server: DhcpServer, network: Network, scope: ReservationScope | None = None
) -> dict:
    """The server's spec with a new revision, its reservations read after the bump.

    The bump locks the server's row until commit, so revisions are taken in the order
    the reservations are read, and each spec holds everything (of its scope) committed
    before its own revision: the agent never applies an older one over a newer one."""
    DhcpServer.objects.filter(pk=server.pk).update(revision=F("revision") + 1)
    server.revision = DhcpServer.objects.values_list("revision", flat=True).get(pk=server.pk)
    return dhcp_server_spec(server, network, scope)


def lock_servers_of(network_ids) -> None:
    """Lock these networks' DHCP server rows (in id order): a deletion takes them before
    its networks' rows. PostgreSQL checks a row's deferred foreign keys at COMMIT when the
    transaction wrote it twice (a report's state, then a spec's revision bump), so such
    a writer holds the server row and takes KEY SHARE on its network last; a deletion
    that held the network and waited for the server row (its SET NULL) closed a cycle
    with it."""
    servers = DhcpServer.objects.select_for_update().filter(network_key__in=network_ids)
    list(servers.order_by("pk").values_list("pk", flat=True))


def refreshed_at_once(networks: list[Network]) -> bool:
    """Would each of these networks' servers apply a launch's refresh within milliseconds?
    Each runs, on an online network node that takes partial refreshes and has no task
    waiting in its queue (what it has taken already is at most a refresh or two)."""
    servers = DhcpServer.objects.select_related("host").filter(
        network_key__in=[network.pk for network in networks]
    )
    nodes = set()
    for server in servers:
        if server.host.state != HostState.ONLINE or not takes_partial_refreshes(server):
            return False
        nodes.add(server.host.name)
    return len(servers) == len(networks) and all(sender.queue_is_idle(n) for n in nodes)


def server_running(network: Network) -> bool:
    return DhcpServer.objects.filter(network_key=network.pk, state=DhcpServerState.RUNNING).exists()


def ensure_server(network_id) -> None:
    """The network's server as the network now is (created, changed, a node registered).

    A changed spec goes to the agent, which restarts dnsmasq when its command line
    changes. A server the network no longer wants (now `underlay`), or whose VF is on
    another physnet than the network's now, is removed through the normal removal; once
    its host reports it gone, `dhcp_server_applied` calls this again to place a new one."""
    network = Network.objects.filter(pk=network_id).first()
    if network is None:
        return
    server = _existing(network)
    if server is not None and server.state != DhcpServerState.REMOVING:
        if _misplaced(server, network):
            remove_server(network.pk)
            return
        if server.vf is not None and server.vf.vlan != network.vlan:
            server.vf.vlan = network.vlan  # the VLAN of an unused network changed
            server.vf.save(update_fields=["vlan", "updated"])
    if (signature := server_signature(network)) is not None:
        sender.send(signature)


def send_full_list(network_id, context: dict | None) -> None:
    """Every reservation of the network to its server, tagged with the step that sent a
    partial refresh its node could not apply: its report answers that step."""
    network = Network.objects.filter(pk=network_id).first()
    if network is not None and (signature := server_signature(network, context)) is not None:
        sender.send(signature)


def _misplaced(server: DhcpServer, network: Network) -> bool:
    if not managed(network):
        return True
    if network.kind == NetworkKind.SRIOV:
        return server.vf is None or server.vf.pf.physnet != network.physnet
    return server.vf is not None


def servers_for_node(host: Host) -> list[dict]:
    """Specs of every server a network node must run (for its reconcile)."""
    specs = []
    for server in DhcpServer.objects.filter(host=host).select_related("host", "network", "vf__pf"):
        if server.network is not None and server.state != DhcpServerState.REMOVING:
            specs.append(current_spec(server, server.network))
    return specs


def place_missing_servers() -> None:
    """Networks created before any network node registered get their server now."""
    placed = DhcpServer.objects.values_list("network_key", flat=True)
    for network in Network.objects.exclude(pk__in=placed):
        if managed(network):
            ensure_server(network.pk)


def remove_server(network_id) -> None:
    """A deleted network's server stops and its VF is reset (found by `network_key`)."""
    server = (
        DhcpServer.objects.select_related("host", "vf__pf").filter(network_key=network_id).first()
    )
    if server is None:
        return
    DhcpServer.objects.filter(pk=server.pk).update(state=DhcpServerState.REMOVING)
    sender.send(
        sender.signature(names.REMOVE_DHCP_SERVER, server.host.name, spec=removal_spec(server))
    )
