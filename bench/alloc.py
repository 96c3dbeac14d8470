"""Control-plane scale, in-process against a scratch PostgreSQL database (Django ORM):
VF placement (`scheduler.place`) with 100 vs 100,000 VFs, IP allocation
(`ipam.allocate_ip`) on an almost empty vs an almost full /16, and a launch's DHCP
refresh (the controller's spec, the network node applying it) on a network of 100 vs
10,000 instances.

Run as a child process (`python -m bench.alloc OUT.json`): it needs its own
DATABASE_URL before Django starts. Each timed call runs in a transaction that is rolled
back, so every sample sees the same inventory.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time

from .util import drop_database, fresh_database, summary

DB_NAME = "ciaoweb_benchalloc"
SAMPLES = 200
NET_CIDR = "10.100.0.0/16"


class _Rollback(Exception):
    pass


def setup_django(url: str, migrate: bool = True) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "ciaoweb.settings"
    os.environ["CIAO_DISPATCH"] = "record"
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)


def _timed(fn, samples: int = SAMPLES, budget: float = 6.0) -> list[float]:
    """Up to `samples` calls, stopping after `budget` seconds (at least 20 calls)."""
    from django.db import transaction

    times = []
    deadline = time.monotonic() + budget
    for n in range(samples):
        if n >= 20 and time.monotonic() > deadline:
            break
        t0 = time.perf_counter()
        try:
            with transaction.atomic():
                fn()
                times.append(time.perf_counter() - t0)
                raise _Rollback
        except _Rollback:
            pass
    return times


def bulk_inventory(prefix: str, first: int, hosts: int, vfs_per_host: int) -> None:
    from django.utils import timezone

    from ciaoweb.inventory.models import Host, PhysicalFunction, VirtualFunction

    registered = timezone.now()  # as a registration leaves it (liveness judges from it)
    host_rows = Host.objects.bulk_create(
        [
            Host(name=f"{prefix}{i}", state="online", last_seen=registered)
            for i in range(first, first + hosts)
        ],
        batch_size=2000,
    )
    pfs = PhysicalFunction.objects.bulk_create(
        [
            PhysicalFunction(
                host=h, name="pf0", physnet="pnet", total_vfs=vfs_per_host, num_vfs=vfs_per_host
            )
            for h in host_rows
        ],
        batch_size=2000,
    )
    batch = []
    for pf in pfs:
        batch += [VirtualFunction(pf=pf, index=i, state="free") for i in range(vfs_per_host)]
        if len(batch) >= 20000:
            VirtualFunction.objects.bulk_create(batch, batch_size=5000)
            batch = []
    VirtualFunction.objects.bulk_create(batch, batch_size=5000)


def bench_placement() -> dict:
    """place() asks for one VF on physnet `pnet`: first with 1 host x 100 VFs in the
    database, then after adding 999 more hosts x 100 VFs (100,000 VFs)."""
    from collections import Counter

    from ciaoweb.instances.scheduler import place

    bulk_inventory("h", 0, 1, 100)
    analyze()
    small = _timed(lambda: place(Counter({"pnet": 1})))
    t0 = time.perf_counter()
    bulk_inventory("h", 1, 999, 100)
    analyze()
    build = time.perf_counter() - t0
    big = _timed(lambda: place(Counter({"pnet": 1})))
    s, b = summary(small), summary(big)
    return {
        "vfs_100": s,
        "vfs_100000": b,
        "ratio_p50": b["p50"] / s["p50"],
        "inventory_build_s": build,
        "shape": "100 = 1 host x 100 VFs; 100,000 = 1,000 hosts x 100 VFs, one physnet",
    }


def analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def _attachment(network, n: int):
    """An attachment to allocate for (allocations of purpose `attachment` need one)."""
    from ciaoweb.instances.models import Attachment, Instance
    from ciaoweb.tenancy.models import Tenant

    tenant, _ = Tenant.objects.get_or_create(name="benchalloc")
    instance = Instance.objects.create(tenant=tenant, name=f"alloc{n}", kind="container")
    return Attachment.objects.create(
        instance=instance, network=network, ifname="eth1", mac=f"02:00:00:00:00:{n:02x}"
    )


def bench_ipam() -> dict:
    """A /16 (65,534 usable): almost empty (gateway + server) vs almost full (all but the
    last 100 addresses taken, the worst case for a lowest-gap search)."""
    import ipaddress

    from ciaoweb.networks.ipam import (
        allocate_ip,
        host_range,
        rebuild_free_ranges,
        reserve_infrastructure_ips,
    )
    from ciaoweb.networks.models import IPAllocation, Network

    def network(name: str, cidr: str, vlan: int) -> Network:
        net = Network.objects.create(
            name=name,
            kind="sriov",
            physnet="ipamnet",
            vlan=vlan,
            cidr=cidr,
            ipam="controller",
            shared=True,
            gateway=str(ipaddress.IPv4Network(cidr).network_address + 1),
        )
        reserve_infrastructure_ips(net)
        return net

    empty = network("empty", "10.100.0.0/16", 10)
    full = network("full", "10.101.0.0/16", 11)
    low, high = host_range(full)
    taken = set(full.allocations.values_list("ip_int", flat=True))
    t0 = time.perf_counter()
    rows = [
        IPAllocation(network=full, ip=str(ipaddress.IPv4Address(i)), ip_int=i, purpose="gateway")
        for i in range(low, high - 99)
        if i not in taken
    ]
    IPAllocation.objects.bulk_create(rows, batch_size=5000)
    # bulk_create went around ipam, so the network's free ranges still list the whole /16:
    # resync them from the allocations (else every sample would heal them first).
    rebuild_free_ranges(full)
    analyze()
    build = time.perf_counter() - t0
    used = full.allocations.count()
    att_empty, att_full = _attachment(empty, 1), _attachment(full, 2)
    e = _timed(lambda: allocate_ip(empty, att_empty))
    f = _timed(lambda: allocate_ip(full, att_full))
    se, sf = summary(e), summary(f)
    return {
        "almost_empty": se,
        "almost_full": sf,
        "ratio_p50": sf["p50"] / se["p50"],
        "full_used": used,
        "size": high - low + 1,
        "build_s": build,
    }


REFRESH_SIZES = (100, 10_000)


def _refresh_network(size: int):
    """A controller-IPAM /16 with `size` instances on it (one attachment each) and its
    running DHCP server; returns (server, network, a launch's scope)."""
    import ipaddress

    from ciaoweb.instances.models import Attachment, Instance
    from ciaoweb.inventory.models import Host
    from ciaoweb.networks.models import Network
    from ciaoweb.orchestration.models import DhcpServer
    from ciaoweb.orchestration.specs import ReservationScope
    from ciaoweb.taskrouting import AGENT_FEATURES
    from ciaoweb.tenancy.models import Tenant

    tenant, _ = Tenant.objects.get_or_create(name="benchrefresh")
    node, _ = Host.objects.get_or_create(  # as a current agent registers it
        name="benchnetnode",
        defaults={"state": "online", "is_network_node": True, "features": list(AGENT_FEATURES)},
    )
    cidr = f"10.{110 + size % 97}.0.0/16"
    net = ipaddress.IPv4Network(cidr)
    network = Network.objects.create(
        name=f"refresh{size}",
        kind="sriov",
        physnet="refreshnet",
        vlan=300 + size % 97,
        cidr=cidr,
        ipam="controller",
        tenant=tenant,
        gateway=str(net[1]),
    )
    instances = Instance.objects.bulk_create(
        [Instance(tenant=tenant, name=f"r{size}-{n}", kind="container") for n in range(size)],
        batch_size=5000,
    )
    Attachment.objects.bulk_create(
        [
            Attachment(
                instance=instance,
                network=network,
                ifname="eth1",
                state="active",
                mac=f"02:{size % 97:02x}:00:{n >> 16 & 255:02x}:{n >> 8 & 255:02x}:{n & 255:02x}",
                ip=str(net[10 + n]),
            )
            for n, instance in enumerate(instances)
        ],
        batch_size=5000,
    )
    server = DhcpServer.objects.create(
        network_key=network.pk,
        network=network,
        host=node,
        mac=f"02:fe:00:00:{size % 97:02x}:01",
        state="running",
    )
    launched = Attachment.objects.filter(instance=instances[-1])
    return server, network, ReservationScope.of(launched)


def _node_side(launch: dict, full: dict, whole_list: bool) -> list[float]:
    """The network node applying a launch's refresh to a server holding every other
    reservation of `full` (files on disk, as dnsmasq reads them; no dnsmasq runs, so
    nothing is signalled): `launch` itself, or (`whole_list`) the full list as every
    refresh was before. Between samples the launch's reservation is removed again."""
    import tempfile

    from ciaoweb.agent.cnci import DhcpServers
    from ciaoweb.agent.dhcp.server import DhcpServer, DhcpServerSpec

    state = tempfile.mkdtemp(prefix="benchrefresh-")
    server = DhcpServer(
        DhcpServerSpec(
            network_id=launch["network_id"],
            netns="ciao-benchrefresh",
            interface="eth0",
            cidr=launch["cidr"],
            gateway=launch["gateway"],
            dns_domain=launch["dns_domain"],
        ),
        state,
    )
    revision = full["revision"]
    DhcpServers._reserve(server, full)
    undo = launch | {"reservations": []}
    times = []
    for _ in range(50):
        DhcpServers._reserve(server, undo | {"revision": (revision := revision + 1)})
        spec = (full if whole_list else launch) | {"revision": (revision := revision + 1)}
        t0 = time.perf_counter()
        outcome = DhcpServers._reserve(server, spec)
        times.append(time.perf_counter() - t0)
        assert outcome["ok"] and server.reservations().keys() >= set(launch["partial"]), outcome
    shutil.rmtree(state)
    return times


def bench_dhcp_refresh() -> dict:
    """A launch's refresh of its network's DHCP server: the controller building and
    serialising its spec (`current_spec` with the launch's scope), and the network node
    applying it, with 100 vs 10,000 instances on the network. Before 2026-12-06 every
    refresh carried the whole list (`full_*`, measured the same way, for comparison)."""
    from ciaoweb.orchestration.dhcp import current_spec

    out: dict = {}
    for size in REFRESH_SIZES:
        server, network, scope = _refresh_network(size)
        analyze()
        spec = current_spec(server, network, scope)
        if "partial" not in spec:
            raise RuntimeError(f"a launch's refresh carried the whole list: {sorted(spec)}")
        full = current_spec(server, network)
        out[f"controller_{size}"] = summary(
            _timed(lambda s=server, n=network, c=scope: json.dumps(current_spec(s, n, c)))
        )
        out[f"full_controller_{size}"] = summary(
            _timed(lambda s=server, n=network: json.dumps(current_spec(s, n)), budget=10.0)
        )
        out[f"spec_bytes_{size}"] = len(json.dumps(spec))
        out[f"full_spec_bytes_{size}"] = len(json.dumps(full))
        out[f"node_{size}"] = summary(_node_side(spec, full, whole_list=False))
        out[f"full_node_{size}"] = summary(_node_side(spec, full, whole_list=True))
    small, big = REFRESH_SIZES
    for side in ("controller", "node"):
        out[f"{side}_ratio_p50"] = out[f"{side}_{big}"]["p50"] / out[f"{side}_{small}"]["p50"]
    return out


def main(argv: list[str]) -> int:
    url = fresh_database(DB_NAME)
    try:
        setup_django(url)
        out = {
            "placement": bench_placement(),
            "ipam": bench_ipam(),
            "dhcp_refresh": bench_dhcp_refresh(),
        }
        from django.db import connections

        connections.close_all()
    finally:
        drop_database(DB_NAME)
    with open(argv[1], "w") as fh:
        json.dump(out, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
