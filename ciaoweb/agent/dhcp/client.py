"""Run busybox udhcpc inside an instance namespace and return the lease (ipam=underlay).

`udhcpc -f -q -n`: stay in the foreground, quit once bound, fail instead of
retrying forever; our hook configures the address and prints the lease as JSON.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..drivers.base import DriverError, TransientError
from . import validate
from .hooks import install_hook

LEASE_MARK = "CIAO_LEASE "


@dataclass(frozen=True)
class Lease:
    ip: str
    prefixlen: int | None
    router: str | None
    dns: list[str]
    domain: str | None
    lease_seconds: int | None
    server: str | None


def udhcpc_command(
    netns: str,
    ifname: str,
    hook: Path,
    *,
    tries: int = 3,
    hostname: str | None = None,
    request_ip: str | None = None,
) -> list[str]:
    busybox = shutil.which("busybox") or "/bin/busybox"
    args = [
        "ip",
        "netns",
        "exec",
        validate.netns(netns),
        busybox,
        "udhcpc",
        "-f",
        "-q",
        "-n",
        "-i",
        validate.ifname(ifname),
        "-s",
        str(hook),
        "-t",
        str(int(tries)),
        "-T",
        "1",
    ]
    if hostname:
        args += ["-x", f"hostname:{validate.hostname(hostname)}"]
    if request_ip:
        args += ["-r", request_ip]
    return args


def obtain_lease(
    netns: str,
    ifname: str,
    *,
    hook_dir: str | os.PathLike[str],
    tries: int = 3,
    hostname: str | None = None,
    request_ip: str | None = None,
    default_route: bool = False,
    timeout: float = 30.0,
) -> Lease:
    """DHCP on ifname in netns; the address is configured when this returns.

    Raises TransientError when no server answered (worth retrying later).
    """
    hook = install_hook("udhcpc_hook", Path(hook_dir) / "ciao-udhcpc-hook")
    if request_ip is not None:
        request_ip = str(ipaddress.IPv4Address(request_ip))
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "CIAO_DHCP_ROUTES": "none"}
    if default_route:
        env["CIAO_DHCP_ROUTES"] = "default"
    done = subprocess.run(
        udhcpc_command(netns, ifname, hook, tries=tries, hostname=hostname, request_ip=request_ip),
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )
    bound = [
        json.loads(line[len(LEASE_MARK) :])
        for line in done.stdout.splitlines()
        if line.startswith(LEASE_MARK)
    ]
    bound = [b for b in bound if b["event"] in ("bound", "renew") and b.get("ip")]
    if done.returncode != 0 or not bound:
        detail = (done.stderr.strip().splitlines() or [""])[-1]
        msg = f"udhcpc on {ifname} in {netns}: no lease (rc {done.returncode}): {detail}"
        # rc 1 is udhcpc's "no lease obtained" under -n: the server may come back.
        raise TransientError(msg) if done.returncode in (0, 1) else DriverError(msg)
    last = bound[-1]
    return Lease(
        ip=last["ip"],
        prefixlen=last.get("prefixlen"),
        router=last.get("router"),
        dns=last.get("dns") or [],
        domain=last.get("domain"),
        lease_seconds=last.get("lease"),
        server=last.get("server"),
    )
