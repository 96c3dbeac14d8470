"""What a node agent does, independent of Celery: apply instance specs with a VF driver,
an instance runtime and a DHCP client, and reconcile actual state against desired.

Specs are the plain dicts of docs/architecture.md. Every operation is idempotent and
keyed by attachment id, so a redelivered task or a reconcile pass is harmless.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import threading
from dataclasses import dataclass, field
from typing import Any

from ciaoweb.taskrouting import AGENT_FEATURES
from ciaoweb.version import version

from . import ipv6
from .drivers.base import DriverError, OwnershipError, TransientError, VfConfig, VfDriver
from .generations import GenerationLog
from .locks import node_lock
from .metrics import step
from .names import runtime_name
from .overlay import Overlay
from .runtime import InstanceRuntime

log = logging.getLogger(__name__)

IPAM_CONTROLLER, IPAM_DYNAMIC, IPAM_UNDERLAY = "controller", "dynamic", "underlay"
KIND_VM = "vm"
KIND_OVERLAY = "overlay"
ANNOUNCE_REPEATS = 4  # a network kind: the tenant's primary network
SOURCE_FOR_IPAM = {IPAM_CONTROLLER: "controller", IPAM_DYNAMIC: "dhcp", IPAM_UNDERLAY: "underlay"}


@dataclass
class AttachmentResult:
    attachment_id: str
    state: str
    ip: str | None = None
    ip_source: str | None = None
    error: str = ""
    ipv6: str | None = None
    ipv6_source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


@dataclass
class InstanceResult:
    instance_id: str
    generation: int
    host: str
    ok: bool
    netns: str = ""
    error: str = ""
    attachments: list[AttachmentResult] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = self.__dict__.copy()
        data["attachments"] = [a.to_dict() for a in self.attachments]
        return data


def _reason(exc: Exception) -> str:
    if isinstance(exc, subprocess.CalledProcessError):
        stderr = (
            exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr
        )
        return f"{' '.join(map(str, exc.cmd[:6]))}: {(stderr or '').strip()}"
    return str(exc)


class NodeAgent:
    def __init__(
        self,
        node: str,
        driver: VfDriver,
        runtime: InstanceRuntime,
        dhcp_client,
        overlay: Overlay | None = None,
        generations: GenerationLog | None = None,
        state_dir: str | None = None,
    ) -> None:
        self.node = node
        self.driver = driver
        self.runtime = runtime
        self.dhcp_client = dhcp_client
        self.overlay = overlay
        self.generations = generations
        self.state_dir = state_dir

    def _serialized(
        self, instance_id: str, discard: bool = False
    ) -> contextlib.AbstractContextManager[None]:
        """One task per instance at a time on this node: the watchdog re-sends a slow
        step, and the re-sent ensure ran beside the first (seen in the qemu lane: both
        created the namespace, the second failed on "File exists")."""
        if self.state_dir is None:
            return contextlib.nullcontext()
        return node_lock(self.state_dir, f"instance-{instance_id}", discard)

    # --- inventory ---------------------------------------------------------------

    def inventory(self, network_node: bool) -> dict[str, Any]:
        pfs = []
        for pf in self.driver.discover():
            pfs.append(
                {
                    "name": pf.name,
                    "pci_address": pf.pci_address,
                    "physnet": pf.physnet,
                    "total_vfs": pf.total_vfs,
                    "num_vfs": pf.num_vfs,
                    # Optional knobs the PF's driver implements, as probed: link_state,
                    # min_tx_rate, vlan_8021ad -> bool (igb: all False); {} until the PF
                    # has a VF to probe on. The controller keeps known knobs only.
                    "capabilities": {str(k): bool(v) for k, v in pf.capabilities.items()},
                    "vfs": [
                        {
                            "index": vf.index,
                            "pci_address": vf.pci_address,
                            "netdev": vf.netdev or "",
                            "mac": vf.config.mac if vf.config else "",
                            "vlan": vf.config.vlan if vf.config else 0,
                        }
                        for vf in pf.vfs
                    ],
                }
            )
        return {
            "host": self.node,
            "is_network_node": network_node,
            "mgmt_address": self.overlay.local_ip if self.overlay else None,
            # Shown on the host (API and dashboard): which agents an upgrade has reached.
            "agent_version": version(),
            "features": list(AGENT_FEATURES),
            "pfs": pfs,
        }

    def owners(self) -> dict[str, str]:
        """`"pf/index" -> attachment id` for every VF this node has handed out."""
        return {f"{pf}/{index}": owner for (pf, index), owner in self.driver.owners().items()}

    # --- instances -----------------------------------------------------------------

    def admit(self, spec: dict[str, Any]) -> bool:
        """False for a spec older than one already applied here (a late redelivery)."""
        if self.generations is None:
            return True
        return self.generations.admit(spec["instance_id"], spec["generation"])

    def ensure_instance(self, spec: dict[str, Any]) -> InstanceResult:
        """Make the instance exist here with the spec's attachments plugged (others it has
        are left alone: a hot-plug's spec lists only its new interface).

        A TransientError (e.g. a VF refusing its MAC while it resets) is raised after the
        rollback, so the task is retried; every other failure is a reported reason."""
        with self._serialized(spec["instance_id"]):
            return self._ensure_instance(spec)

    def _ensure_instance(self, spec: dict[str, Any]) -> InstanceResult:
        name = runtime_name(spec["instance_id"], self.node)
        result = InstanceResult(spec["instance_id"], spec["generation"], self.node, ok=True)
        try:
            with step("netns_create"):
                result.netns = self.runtime.create(name, spec["kind"])
                if spec["kind"] != KIND_VM and any(a.get("ipv6_cidr") for a in spec["attachments"]):
                    ipv6.namespace_defaults(result.netns)  # before a VF is plugged
        except Exception as exc:  # noqa: BLE001 - reported to the controller as the reason
            return self._failed(result, f"cannot create instance namespace: {_reason(exc)}")
        plugged: list[dict[str, Any]] = []
        for att in spec["attachments"]:
            try:
                if att.get("vf"):
                    self._plug(att, result.netns)
                elif att.get("overlay"):
                    self._plug_overlay(att, result.netns, configure_ip=spec["kind"] != KIND_VM)
                else:
                    continue
                plugged.append(att)
            except (DriverError, subprocess.CalledProcessError, RuntimeError) as exc:
                for done in plugged:  # roll back this call's interfaces, guarded by owner
                    self._unplug(done)
                if isinstance(exc, TransientError):
                    raise
                return self._failed(result, f"{att['ifname']}: {_reason(exc)}")
        for att in spec["attachments"]:
            result.attachments.append(self._address(spec["kind"], att, result.netns))
        if spec.get("announce"):
            for att in plugged:
                self._announce(result.netns, att)
        return result

    def release_instance(self, spec: dict[str, Any]) -> InstanceResult:
        """Unplug and reset the listed attachments' VFs; delete the namespace."""
        with self._serialized(spec["instance_id"], discard=True):
            return self._release_instance(spec, delete_netns=True)

    def unplug_interfaces(self, spec: dict[str, Any]) -> InstanceResult:
        """Hot-unplug: unplug and reset the listed attachments' VFs (each guarded by its
        owner, idempotent); the instance and its other interfaces stay as they are. (A
        hot-plug needs no method of its own: `ensure_instance` with a spec listing only
        the new attachment plugs just that one.)"""
        with self._serialized(spec["instance_id"]):
            return self._release_instance(spec, delete_netns=False)

    def _release_instance(self, spec: dict[str, Any], delete_netns: bool) -> InstanceResult:
        result = InstanceResult(spec["instance_id"], spec["generation"], self.node, ok=True)
        errors = []
        for att in spec["attachments"]:
            try:
                self._unplug(att)
            except DriverError as exc:
                errors.append(f"{att['ifname']}: {exc}")
            result.attachments.append(AttachmentResult(att["attachment_id"], state="released"))
        if delete_netns:
            try:
                with step("netns_delete"):
                    self.runtime.delete(runtime_name(spec["instance_id"], self.node))
            except Exception as exc:  # noqa: BLE001
                errors.append(f"namespace: {exc}")
        if errors:
            result.ok, result.error = False, "; ".join(errors)
        return result

    def _plug(self, att: dict[str, Any], netns: str) -> None:
        vf = att["vf"]
        config = VfConfig(mac=att["mac"], vlan=att["vlan"] or 0, spoofchk=True, trust=False)
        with step("vf_plug"):
            self.driver.setup_vf(
                vf["pf"], vf["index"], att["attachment_id"], config, netns, att["ifname"]
            )
            args = ["ip", "-n", netns, "link", "set", att["ifname"]]
            if att.get("mtu"):
                args += ["mtu", str(att["mtu"])]
            subprocess.run(args + ["up"], check=True, capture_output=True)

    def _plug_overlay(self, att: dict[str, Any], netns: str, configure_ip: bool) -> None:
        """eth0 into the tenant's VXLAN segment. A container's address is set here (we are
        its runtime); a VM's guest asks the segment's DHCP server, like any guest."""
        if self.overlay is None:
            raise RuntimeError("this node has no overlay configured")
        address = f"{att['ip']}/{att['prefixlen']}" if configure_ip and att.get("ip") else None
        with step("overlay_plug"):
            self.overlay.plug(att, netns, address)

    def _unplug(self, att: dict[str, Any]) -> None:
        if att.get("kind") == KIND_OVERLAY:
            if self.overlay is not None:
                with step("overlay_unplug"):
                    self.overlay.unplug(att)
            return
        vf = att.get("vf")
        if not vf:
            return
        try:
            with step("vf_unplug"):
                self.driver.release_vf(vf["pf"], vf["index"], att["attachment_id"])
        except OwnershipError:
            # Someone else owns it now: a late release must never reset their VF.
            log.warning("VF %s/%s not released: owned by another attachment", vf["pf"], vf["index"])

    def _address(self, kind: str, att: dict[str, Any], netns: str) -> AttachmentResult:
        """Containers run DHCP on their VFs; a VM's guest does its own, so we say nothing."""
        res = AttachmentResult(att["attachment_id"], state="up")
        if not att.get("vf"):
            return res  # overlay: the controller's address, set statically or by DHCP
        if kind == KIND_VM:
            return res
        try:
            with step("dhcp_client"):
                lease = self.dhcp_client(netns, att["ifname"], hostname=att.get("hostname"))
        except Exception as exc:  # noqa: BLE001
            res.state, res.error = "error", f"DHCP on {att['ifname']} failed: {exc}"
            return res
        res.ip, res.ip_source = lease, SOURCE_FOR_IPAM[att["ipam"]]
        if att.get("ipv6_cidr"):
            try:
                with step("ipv6_address"):
                    res.ipv6, res.ipv6_source = self._address6(att, netns)
            except (subprocess.CalledProcessError, RuntimeError) as exc:
                res.state, res.error = "error", f"IPv6 on {att['ifname']}: {_reason(exc)}"
        return res

    def _address6(self, att: dict[str, Any], netns: str) -> tuple[str | None, str]:
        """A container's IPv6, set as a container runtime sets addresses: the one the
        controller knows (the SLAAC EUI-64 or the DHCPv6 reservation) with `nodad`, since
        the kernel's DAD would keep it unusable for about a second and the controller
        already made it unique; router advertisements ignored by the namespace's defaults
        (no second, kernel-made address). On an underlay the kernel's own SLAAC from the
        physical network's advertisements makes it, and we report what it made."""
        if att["ipam"] == IPAM_UNDERLAY:
            return ipv6.wait_for_slaac(netns, att["ifname"], att["ipv6_cidr"]), "underlay"
        ipv6.configure_static(netns, att["ifname"], att["ipv6"], att["ipv6_cidr"])
        return att["ipv6"], ("slaac" if att.get("ipv6_mode") == "slaac" else "controller")

    def _announce(self, netns: str, att: dict[str, Any]) -> None:
        """Gratuitous ARP after a move so switches and peers relearn at once, repeated for
        a few seconds (like QEMU's announce-self): the source copy stays up until the
        controller switches over, and its last frames teach the fabric the old port again."""
        if not att.get("ip"):
            return
        garp = ["ip", "netns", "exec", netns, "busybox", "arping", "-U", "-I", att["ifname"]]
        subprocess.run([*garp, "-c", "1", "-w", "1", att["ip"]], capture_output=True)
        repeat = [*garp, "-c", str(ANNOUNCE_REPEATS), att["ip"]]  # one a second
        threading.Thread(
            target=subprocess.run, args=(repeat,), kwargs={"capture_output": True}, daemon=True
        ).start()

    @staticmethod
    def _failed(result: InstanceResult, error: str) -> InstanceResult:
        result.ok, result.error = False, error
        return result

    # --- reconciliation ----------------------------------------------------------------

    def reconcile(self, plan: dict[str, Any]) -> list[dict[str, Any]]:
        """Release the VFs the controller found orphaned (each guarded by the owner this
        node reported) and restore drifted MAC/VLAN on the VFs that are rightly owned."""
        corrections = []
        for item in plan.get("release", []):
            pf, index = item["vf"].rsplit("/", 1)
            try:
                released = self.driver.release_vf(pf, int(index), item["owner"])
            except DriverError as exc:
                corrections.append(
                    {
                        "kind": "vf.release_failed",
                        "vf": item["vf"],
                        "owner": item["owner"],
                        "message": str(exc),
                    }
                )
                continue
            if released:
                corrections.append(
                    {
                        "kind": "vf.orphan_released",
                        "vf": item["vf"],
                        "owner": item["owner"],
                        "message": f"released VF {item['vf']} held by stale owner {item['owner']}",
                    }
                )
        for key, want in plan.get("configs", {}).items():
            pf, index = key.rsplit("/", 1)
            try:
                current = self.driver.vf_state(pf, int(index))
                config = current.config
                if config is None or (config.mac, config.vlan) == (want["mac"], want["vlan"]):
                    continue
                self.driver.apply_vf_config(
                    pf, int(index), want["owner"], config.with_(mac=want["mac"], vlan=want["vlan"])
                )
            except DriverError as exc:
                corrections.append({"kind": "vf.restore_failed", "vf": key, "message": str(exc)})
                continue
            corrections.append(
                {
                    "kind": "vf.drift_restored",
                    "vf": key,
                    "message": f"VF {key} had {config.mac}/vlan {config.vlan}, "
                    f"restored {want['mac']}/vlan {want['vlan']}",
                }
            )
        return corrections
