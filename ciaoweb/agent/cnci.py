"""Managed DHCP/DNS servers on a network node (the role ciao called a CNCI).

Each managed network gets one dnsmasq in its own namespace, listening on the address
the controller reserved for it (the network's last usable one). An SR-IOV network's
server is reached through a VF of the network node on the network's VLAN; a tenant
overlay's through a port on its VXLAN segment. Reservations follow the controller's
desired state without restarts; lease events are read back from each server's events
file and forwarded.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .dhcp import guard, validate
from .dhcp.events import LeaseEventReader, LeaseWakeup
from .dhcp.server import DhcpServer, DhcpServerSpec, Reservation
from .drivers.base import DriverError, OwnershipError, VfConfig, VfDriver
from .locks import node_lock
from .overlay import Overlay
from .runtime import InstanceRuntime

log = logging.getLogger(__name__)

SERVER_IFNAME = "eth0"
# What setting a server up may raise; reported to the controller as the reason.
SETUP_ERRORS = (DriverError, subprocess.CalledProcessError, OSError, RuntimeError)


def server_owner(network_id: str) -> str:
    """The VF owner id of a network's DHCP server (attachments use their own ids)."""
    return f"dhcp-{network_id}"


# What changes on every refresh without changing the server: its reservations (all, or
# a launch's `partial` few), their revision and the operation step that asked.
PER_REFRESH_KEYS = ("reservations", "partial", "revision", "context")


def _runtime_name(network_id: str) -> str:
    return f"dhcp-{str(network_id).replace('-', '')[:12]}"


class DhcpServers:
    def __init__(
        self, state_dir: str, driver: VfDriver, runtime: InstanceRuntime, overlay: Overlay
    ) -> None:
        self.state_dir = Path(state_dir)
        self.driver = driver
        self.runtime = runtime
        self.overlay = overlay
        # network id -> (spec without reservations, netns) this process last applied in full
        self._applied: dict[str, tuple[str, str]] = {}
        self.commands = _Commands(self.state_dir)

    def _server(self, spec: dict[str, Any], netns: str) -> DhcpServer:
        return DhcpServer(
            DhcpServerSpec(
                network_id=spec["network_id"],
                netns=netns,
                interface=SERVER_IFNAME,
                cidr=spec["cidr"],
                gateway=spec["gateway"],
                ipam=spec["ipam"],
                dns_domain=spec["dns_domain"],
                lease_time=spec.get("lease_time", 3600),
                ipv6_cidr=spec.get("ipv6_cidr") or "",
                ipv6_mode=spec.get("ipv6_mode") or "",
            ),
            self.state_dir,
        )

    def _locked(self, network_id: str, discard: bool = False):
        """One set-up of a network's server at a time across this node's worker
        processes: two concurrent first set-ups killed each other's fresh dnsmasq as a
        "leftover", and a launch could then run DHCP against no server."""
        return node_lock(self.state_dir, server_owner(network_id), discard)

    def ensure(self, spec: dict[str, Any], full: bool = False) -> dict[str, Any]:
        """Namespace, VF on the VLAN, address, dnsmasq running, reservations exact.

        Every launch refreshes its network's reservations through here: when this process
        has already set the server up from the same spec and dnsmasq still runs, only the
        reservations are written (about 10 ms instead of 40). `full` (reconcile) redoes all.
        When it returns ok, dnsmasq runs and has the reservations on disk."""
        with self._locked(spec["network_id"]):
            self.commands.note(spec["network_id"])
            return self._ensure(spec, full)

    def _ensure(self, spec: dict[str, Any], full: bool) -> dict[str, Any]:
        network_id = spec["network_id"]
        shape = json.dumps(
            {k: v for k, v in spec.items() if k not in PER_REFRESH_KEYS}, sort_keys=True
        )
        applied_shape, applied_netns = self._applied.pop(network_id, ("", ""))
        if not full and applied_shape == shape:
            server = self._server(spec, applied_netns)
            if server.is_running():
                outcome = self._reserve(server, spec)
                if outcome["ok"]:
                    self._applied[network_id] = (shape, applied_netns)
                return outcome
        try:
            netns = self.runtime.create(_runtime_name(network_id), "container")
            if spec.get("overlay"):  # a tenant's overlay: a port on its VXLAN segment
                self.overlay.plug(
                    {
                        "attachment_id": server_owner(network_id),
                        "ifname": SERVER_IFNAME,
                        "mac": spec["mac"],
                        "mtu": spec.get("mtu"),
                        "overlay": spec["overlay"],
                    },
                    netns,
                )
            else:
                vf = spec["vf"]
                config = VfConfig(mac=spec["mac"], vlan=spec["vlan"] or 0)
                self.driver.setup_vf(
                    vf["pf"], vf["index"], server_owner(network_id), config, netns, SERVER_IFNAME
                )
            prefix = ipaddress.IPv4Network(spec["cidr"]).prefixlen
            address = f"{spec['server_ip']}/{prefix}"
            address6 = _server_ipv6(spec)
            for args in (
                ["addr", "replace", address, "dev", SERVER_IFNAME],
                ["link", "set", SERVER_IFNAME, "up"],
            ):
                subprocess.run(["ip", "-n", netns, *args], check=True, capture_output=True)
            if address6:
                _configure_ipv6(netns, address6)
            _drop_other_addresses(netns, address)  # the network's CIDR changed
            _drop_other_addresses(netns, address6, family="-6")
            guard.install(netns, SERVER_IFNAME)  # chaddr must be the sender's own MAC
            server = self._server(spec, netns)
            # A changed spec (domain, range, IPAM) reaches dnsmasq only through its
            # command line: restart it then (leases kept); a dead one is started.
            reconfigured = server.restart_if_changed()
            restarted = server.ensure_running() and not reconfigured
        except SETUP_ERRORS as exc:
            return _failed(exc)
        outcome = self._reserve(server, spec, restarted)
        outcome["reconfigured"] = reconfigured
        if outcome["ok"]:
            self._applied[network_id] = (shape, netns)
        return outcome

    @staticmethod
    def _reserve(server: DhcpServer, spec: dict[str, Any], restarted: bool = False) -> dict:
        """The spec's reservations applied: all of them, or with `partial` (the MACs a
        launch or deletion changed) only those MACs', each as listed or, not listed,
        removed. Never older ones over newer (`_Revision`)."""
        outcome = {"ok": True, "error": "", "netns": server.spec.netns, "restarted": restarted}
        revision = _Revision(server.dir, spec)
        if revision.superseded():
            return outcome | {"superseded": True}
        partial = spec.get("partial")
        if partial is not None and not revision.has_full_list():
            return outcome | {
                "ok": False,
                "error": "this node has no full reservation list of the server yet",
                "needs_full": True,
            }
        try:
            given = {
                validate.mac(r["mac"]): Reservation(
                    r["mac"], r.get("ip"), r.get("hostname"), r.get("ipv6")
                )
                for r in spec["reservations"]
            }
            if partial is None:
                server.set_reservations(given.values(), keep=revision.newer_macs())
                revision.record_full()
            else:
                macs = [validate.mac(mac) for mac in partial]
                newer = revision.newer_macs(macs)
                macs = [mac for mac in macs if mac not in newer]
                server.update_reservations({mac: given.get(mac) for mac in macs})
                revision.record_partial(macs)
        except SETUP_ERRORS as exc:
            return _failed(exc)
        return outcome

    def remove(self, spec: dict[str, Any]) -> None:
        with self._locked(spec["network_id"], discard=True):
            self.commands.note(spec["network_id"])
            self._remove(spec)

    def _remove(self, spec: dict[str, Any]) -> None:
        network_id = spec["network_id"]
        self._applied.pop(network_id, None)
        server_dir = self.state_dir / f"dhcp-{network_id}"
        if server_dir.exists():
            DhcpServer.on_disk(self.state_dir, network_id).remove()
        if spec.get("vf"):
            try:
                self.driver.release_vf(
                    spec["vf"]["pf"], spec["vf"]["index"], server_owner(network_id)
                )
            except OwnershipError:
                log.warning("DHCP VF of %s now owned by someone else: left alone", network_id)
        self.runtime.delete(_runtime_name(network_id))

    def reconcile(
        self, desired: list[dict[str, Any]], registered_at: float | None = None
    ) -> list[dict[str, Any]]:
        """Every desired server running with its reservations; unknown servers stopped.

        `desired` is what the controller wanted when it answered the registration this host
        sent at `registered_at` (its clock). A server the controller set up or removed
        since then is newer than the plan and left as it is: a network created meanwhile
        (its first launch faster than the plan) is no orphan, and one deleted meanwhile
        must not come back. Both happened: the first launch on a new network got no lease,
        its server stopped; a deleted network's server, set up again, held the VF a new
        network's server was given. A plan older than one already applied is skipped."""
        if registered_at is not None and not self.commands.plan_is_current(registered_at):
            log.info("a reconcile plan older than the one applied: skipped")
            return []
        corrections = []
        wanted = {spec["network_id"] for spec in desired}
        for spec in desired:
            with self._locked(spec["network_id"]):
                if self.commands.newer_than(spec["network_id"], registered_at):
                    continue
                outcome = self._ensure(spec, full=True)
            corrections += _corrections(spec["network_id"], outcome)
        for server_dir in self.state_dir.glob("dhcp-*"):
            network_id = server_dir.name.removeprefix("dhcp-")
            if network_id in wanted or not (server_dir / "dnsmasq.pid").exists():
                continue  # wanted, or nothing runs there (an orphan stopped before)
            if self._stop_orphan(network_id, registered_at):
                corrections.append(
                    {
                        "kind": "dhcp.orphan_stopped",
                        "network_id": network_id,
                        "message": "stopped a DHCP server of a network that is gone",
                    }
                )
        if registered_at is not None:
            self.commands.forget_older_than(registered_at)
        return corrections

    def _stop_orphan(self, network_id: str, registered_at: float | None) -> bool:
        """Stop a server the plan does not list, unless it was set up since the plan was
        made (under its lock: a set-up in progress is finished, and seen)."""
        with self._locked(network_id):
            server = DhcpServer.on_disk(self.state_dir, network_id)
            if self.commands.newer_than(network_id, registered_at) or not server.is_running():
                return False
            server.stop()
            return True

    def lease_events(self, stop: threading.Event) -> Iterator[dict[str, Any]]:
        """Yield lease events of every server on this node as dnsmasq reports them.

        A server's directory can go at any moment (its network deleted, maybe while its
        last `del` event is being reported): its reader is dropped, the others go on.
        Between reads it sleeps until a hook's wakeup (`LeaseWakeup`)."""
        readers: dict[str, LeaseEventReader] = {}
        wakeup = LeaseWakeup(self.state_dir)
        try:
            while not stop.is_set():
                for events_file in self.state_dir.glob("dhcp-*/events.jsonl"):
                    network_id = events_file.parent.name.removeprefix("dhcp-")
                    reader = readers.get(network_id)
                    if reader is None:
                        reader = readers[network_id] = LeaseEventReader(
                            events_file, _offset(events_file)
                        )
                    for event in reader.read_new():
                        yield {
                            "network_id": network_id,
                            "action": event.action,
                            "mac": event.mac,
                            "ip": event.ip,
                            "hostname": event.hostname,
                            "expires": event.expires,
                            "time": event.time,
                        }
                        if not _save_offset(events_file, reader.offset):
                            readers.pop(network_id, None)
                            break
                wakeup.wait(stop)
        finally:
            wakeup.close()


class _Revision:
    """Which revision of a server's reservations is applied, kept beside it.

    A full list (reconcile, a network changed) is recorded as the server's revision; a
    partial refresh (a launch, a deletion: only its MACs) as a mark per MAC, newer than
    that. A spec older than the full list applied is superseded; a partial one skips the
    MACs a newer partial one changed, and a full one leaves those MACs as they are. So
    refreshes that overtake each other (two worker processes, a resend) never bring an
    older reservation back. Marks go when a newer full list covers them.

    Specs carry the controller's `server_id` and `revision`; one without them (an older
    controller) is always applied and recorded as nothing."""

    def __init__(self, server_dir: Path, spec: dict[str, Any]) -> None:
        self.path = server_dir / "applied-revision"
        self.marks = server_dir / "revisions.d"
        self.server_id, self.revision = spec.get("server_id"), spec.get("revision")

    def _applied(self) -> tuple[str, int] | None:
        try:
            server_id, revision = self.path.read_text().split()
            return server_id, int(revision)
        except (FileNotFoundError, ValueError):
            return None

    def has_full_list(self) -> bool:
        """A full list of this server (this id) was applied here: a partial refresh
        can build on it. Without one (a re-placed server, a lost state directory) the
        controller must send the whole list first."""
        if self.revision is None:
            return True
        applied = self._applied()
        return applied is not None and applied[0] == self.server_id

    def superseded(self) -> bool:
        applied = self._applied()
        if self.revision is None or applied is None or applied[0] != self.server_id:
            return False  # a re-placed server (new id) starts its count again
        return self.revision < applied[1]

    def _mark(self, mac: str) -> int | None:
        try:
            return int((self.marks / mac.replace(":", "-")).read_text())
        except (FileNotFoundError, ValueError):
            return None

    def newer_macs(self, macs: list[str] | None = None) -> set[str]:
        """Of `macs` (default: every marked one), those a newer partial refresh changed."""
        if self.revision is None:
            return set()
        if macs is None:
            if not self.marks.is_dir():
                return set()
            macs = [path.name.replace("-", ":") for path in self.marks.iterdir()]
        return {
            mac for mac in macs if (mark := self._mark(mac)) is not None and mark > self.revision
        }

    def record_full(self) -> None:
        if self.revision is None:
            return
        self.path.write_text(f"{self.server_id} {int(self.revision)}\n")
        if self.marks.is_dir():
            for path in self.marks.iterdir():
                if (self._mark(path.name) or 0) <= self.revision:
                    path.unlink()

    def record_partial(self, macs: list[str]) -> None:
        if self.revision is None:
            return
        self.marks.mkdir(exist_ok=True)
        for mac in macs:
            (self.marks / mac.replace(":", "-")).write_text(f"{int(self.revision)}\n")


class _Commands:
    """When the controller last told this node to set up or remove each network's server
    (ensure, remove), kept on disk across worker processes and restarts, so a reconcile
    plan made before that leaves the server alone; and the newest plan applied.
    Times are this host's wall clock, as in the registration the plan answers."""

    def __init__(self, state_dir: Path) -> None:
        # Not named `dhcp-*`: that is a server's directory.
        self.dir = state_dir / "dhcp.commands"
        self.plan_file = state_dir / "dhcp.plan-applied"

    def note(self, network_id: str) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / validate.ident(network_id)).write_text(f"{time.time()!r}\n")

    def newer_than(self, network_id: str, registered_at: float | None) -> bool:
        if registered_at is None:  # an older controller's plan: it alone decides
            return False
        noted = _read_time(self.dir / validate.ident(network_id))
        return noted is not None and noted >= registered_at

    def plan_is_current(self, registered_at: float) -> bool:
        """Record this plan as applied unless a newer one was."""
        applied = _read_time(self.plan_file)
        if applied is not None and registered_at < applied:
            return False
        self.plan_file.write_text(f"{registered_at!r}\n")
        return True

    def forget_older_than(self, registered_at: float) -> None:
        """Notes older than the plan applied can matter to no later one."""
        for path in self.dir.glob("*") if self.dir.is_dir() else []:
            noted = _read_time(path)
            if noted is None or noted < registered_at:
                path.unlink(missing_ok=True)


def _read_time(path: Path) -> float | None:
    try:
        return float(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


def _corrections(network_id: str, outcome: dict[str, Any]) -> list[dict[str, Any]]:
    """What a reconcile's set-up of a server corrected, for the controller's audit."""
    if outcome["restarted"]:
        kind, message = "dhcp.restarted", "dnsmasq was not running: restarted with its leases"
    elif not outcome["ok"]:
        kind, message = "dhcp.failed", outcome["error"]
    elif outcome.get("reconfigured"):
        kind = "dhcp.reconfigured"
        message = "dnsmasq ran an old command line: restarted with its leases"
    else:
        return []
    return [{"kind": kind, "network_id": network_id, "message": message}]


def _failed(exc: Exception) -> dict[str, Any]:
    return {"ok": False, "error": str(exc), "netns": "", "restarted": False}


def _server_ipv6(spec: dict[str, Any]) -> str | None:
    """`<server_ipv6>/<prefixlen>` on a dual-stack network, else None."""
    if not (spec.get("ipv6_cidr") and spec.get("server_ipv6")):
        return None
    net6 = ipaddress.IPv6Network(spec["ipv6_cidr"])
    return f"{ipaddress.IPv6Address(spec['server_ipv6'])}/{net6.prefixlen}"


def _configure_ipv6(netns: str, address6: str) -> None:
    """The server's IPv6 address, usable at once (`nodad`: the controller keeps it for the
    server, and DAD would hold dnsmasq's DHCPv6 and DNS sockets back about a second);
    accept_ra off: it announces the prefix, it does not follow announcements."""
    subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            netns,
            "sysctl",
            "-q",
            "-w",
            f"net.ipv6.conf.{SERVER_IFNAME}.accept_ra=0",
            f"net.ipv6.conf.{SERVER_IFNAME}.autoconf=0",
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        ["ip", "-n", netns, "addr", "replace", address6, "dev", SERVER_IFNAME, "nodad"],
        check=True,
        capture_output=True,
    )


def _drop_other_addresses(netns: str, keep: str | None, family: str = "-4") -> None:
    """Only the server's current address (of `family`) stays on its interface; link-local
    IPv6 addresses are the kernel's and stay."""
    shown = subprocess.run(
        ["ip", "-n", netns, family, "-o", "addr", "show", "dev", SERVER_IFNAME, "scope", "global"],
        check=True,
        capture_output=True,
        text=True,
    )
    inet = "inet" if family == "-4" else "inet6"
    for line in shown.stdout.splitlines():
        fields = line.split()
        if inet in fields and (address := fields[fields.index(inet) + 1]) != keep:
            subprocess.run(
                ["ip", "-n", netns, "addr", "del", address, "dev", SERVER_IFNAME],
                check=True,
                capture_output=True,
            )


def _offset(events_file: Path) -> int:
    try:
        return int((events_file.parent / "events.offset").read_text())
    except (FileNotFoundError, ValueError):
        return 0


def _save_offset(events_file: Path, offset: int) -> bool:
    """False when the server's directory is gone (its network was deleted)."""
    try:
        (events_file.parent / "events.offset").write_text(str(offset))
    except FileNotFoundError:
        return False
    return True
