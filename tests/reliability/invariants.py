"""The one recovery check every fault test ends with.

After a fault and its recovery the cluster must converge to a state where:

- every instance is `running`, or `error` with a non-empty reason (nothing stuck in
  `provisioning`, `migrating` or `deleting`);
- no two attachments share a MAC, no two attachments of a network share an IP;
- every VF an agent holds (its owner file `<state dir>/vf-state-<host>.json`) is owned
  by the attachment the controller assigned that VF to, or by the network's DHCP
  server; no VF is held by a deleted attachment, and no VF is left `releasing`;
- every running instance's SR-IOV attachments are plugged on the instance's host;
- the managed DHCP servers run, their reservations (`hosts.d`) are exactly the
  controller-IPAM attachments, and every lease in their lease files that belongs to a
  live attachment carries that attachment's IP;
- IPs recorded before the fault are unchanged.

Everything is read through the public REST API plus the files agents keep on disk.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tests.worlds import results

SETTLED = ("running", "error")


def snapshot_ips(cluster, instance_ids) -> dict[str, str | None]:
    """attachment id -> IP of these instances' attachments (what must survive a fault)."""
    wanted = {str(i) for i in instance_ids}
    return {
        a["id"]: a["ip"] for a in results(cluster.api, "attachments") if a["instance"] in wanted
    }


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}


def _pid_alive(pid_file: Path) -> bool:
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return False
    return True


def problems(cluster, ips_before: dict[str, str | None] | None = None) -> list[str]:
    """Every broken invariant, as a readable line (empty when all hold)."""
    found: list[str] = []
    instances = {i["id"]: i for i in results(cluster.api, "instances")}
    attachments = {a["id"]: a for a in results(cluster.api, "attachments")}
    networks = {n["id"]: n for n in results(cluster.api, "networks")}
    hosts = {h["id"]: h for h in results(cluster.api, "hosts")}
    pfs = {p["id"]: p for p in results(cluster.api, "physical-functions")}
    vfs = results(cluster.api, "virtual-functions")

    for instance in instances.values():
        if instance["state"] not in SETTLED:
            found.append(f"instance {instance['name']} is {instance['state']}")
        elif instance["state"] == "error" and not instance["error"].strip():
            found.append(f"instance {instance['name']} is error without a reason")

    for mac, n in Counter(a["mac"] for a in attachments.values()).items():
        if n > 1:
            found.append(f"MAC {mac} on {n} attachments")
    for (net, ip), n in Counter(
        (a["network"], a["ip"]) for a in attachments.values() if a["ip"]
    ).items():
        if n > 1:
            found.append(
                f"IP {ip} on {n} attachments of network {networks.get(net, {}).get('name')}"
            )

    # VF ownership: controller's assignment vs the agents' owner files.
    vf_by_key: dict[tuple[str, str, int], dict] = {}
    for vf in vfs:
        pf = pfs[vf["pf"]]
        vf_by_key[(hosts[pf["host"]]["name"], pf["name"], vf["index"])] = vf
        if vf["state"] == "releasing":
            found.append(
                f"VF {hosts[pf['host']]['name']} {pf['name']}/{vf['index']} still releasing"
            )
    attachment_of_vf = {a["vf"]: a for a in attachments.values() if a["vf"]}
    held: dict[str, tuple[str, str]] = {}  # attachment id -> (host, "pf/index")
    dhcp_vfs: list[tuple[str, str]] = []
    for host in (h["name"] for h in hosts.values()):
        state = _read_json(cluster.agent_state_dir(host) / f"vf-state-{host}.json")
        for key, record in state.get("vfs", {}).items():
            owner = record.get("owner")
            if not owner:
                continue
            pf_name, index = key.rsplit("/", 1)
            vf = vf_by_key.get((host, pf_name, int(index)))
            where = f"{host} {key}"
            if owner.startswith("dhcp-"):
                dhcp_vfs.append((host, key))
                network_id = owner.removeprefix("dhcp-")
                if network_id not in networks:
                    found.append(
                        f"VF {where} held by the DHCP server of deleted network {network_id}"
                    )
                continue
            if owner not in attachments:
                found.append(f"VF {where} held by dead attachment {owner}")
                continue
            assigned = attachment_of_vf.get(vf["id"]) if vf else None
            if assigned is None or assigned["id"] != owner:
                found.append(
                    f"VF {where} held by {owner}, controller assigns it to "
                    f"{assigned['id'] if assigned else 'nobody'}"
                )
            held[owner] = (host, key)
    dhcp_held = {(host, key) for host, key in dhcp_vfs}
    for (host, pf_name, index), vf in vf_by_key.items():
        if vf["state"] in ("free", "error") or vf["id"] in attachment_of_vf:
            continue
        if (host, f"{pf_name}/{index}") not in dhcp_held:
            found.append(
                f"VF {host} {pf_name}/{index} is {vf['state']} in the controller "
                "but belongs to no attachment and no DHCP server (leaked)"
            )
    for attachment in attachments.values():
        instance = instances.get(attachment["instance"])
        if attachment["vf"] and instance and instance["state"] == "running":
            if attachment["id"] not in held:
                found.append(
                    f"attachment {attachment['ifname']} of running {instance['name']} "
                    "holds no VF on any agent"
                )
            elif held[attachment["id"]][0] != instance["host_name"]:
                found.append(
                    f"{instance['name']} runs on {instance['host_name']} but its VF is "
                    f"held on {held[attachment['id']][0]}"
                )

    # Managed DHCP servers: running, reservations exact, leases agree with the IPs.
    netnode_dirs = [cluster.agent_state_dir(h["name"]) for h in hosts.values()]
    for network in networks.values():
        if network["kind"] != "sriov" or network["ipam"] not in ("controller", "dynamic"):
            continue
        server_dir = next(
            (
                d / f"dhcp-{network['id']}"
                for d in netnode_dirs
                if (d / f"dhcp-{network['id']}").is_dir()
            ),
            None,
        )
        if server_dir is None:
            found.append(f"network {network['name']}: no DHCP server directory")
            continue
        if not _pid_alive(server_dir / "dnsmasq.pid"):
            found.append(f"network {network['name']}: dnsmasq is not running")
        mine = [a for a in attachments.values() if a["network"] == network["id"]]
        if network["ipam"] == "controller":
            want = {a["mac"]: a["ip"] for a in mine if a["ip"]}
            have = {}
            hosts_dir = server_dir / "hosts.d"
            for path in hosts_dir.iterdir() if hosts_dir.is_dir() else []:
                mac, ip = path.read_text().strip().split(",")[:2]
                have[mac] = ip
            if want != have:
                found.append(f"network {network['name']}: reservations {have} != IPAM {want}")
        ip_of_mac = {a["mac"]: a["ip"] for a in mine}
        leases = server_dir / "leases"
        for line in leases.read_text().splitlines() if leases.exists() else []:
            fields = line.split()
            if (
                len(fields) >= 3
                and fields[1] in ip_of_mac
                and ip_of_mac[fields[1]] not in (None, fields[2])
            ):
                found.append(
                    f"network {network['name']}: lease {fields[1]} -> {fields[2]} but "
                    f"the attachment has {ip_of_mac[fields[1]]}"
                )

    for attachment_id, ip in (ips_before or {}).items():
        now = attachments.get(attachment_id)
        if now is None:
            found.append(f"attachment {attachment_id} (ip {ip}) disappeared")
        elif now["ip"] != ip:
            found.append(f"attachment {attachment_id} changed IP {ip} -> {now['ip']}")
    return found


def assert_recovered(cluster, ips_before=None, timeout: float = 45.0, what: str = "") -> None:
    """Wait until every invariant holds (recovery is asynchronous), else fail with the
    problems still left."""
    deadline = time.monotonic() + timeout
    while True:
        left = problems(cluster, ips_before)
        if not left:
            return
        if time.monotonic() > deadline:
            raise AssertionError(
                f"not recovered after {timeout}s{f' ({what})' if what else ''}:\n" + "\n".join(left)
            )
        time.sleep(0.5)
