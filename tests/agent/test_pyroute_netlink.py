"""PyrouteNetlink against the real kernel, inside namespaces of our own.

No SR-IOV hardware here, so: VF writes on a veth must come back as the domain
NotSupported (proves the vf={...} encoding reaches the kernel and errno mapping), and
the netdev moves (into an instance namespace under a new name, and back) run for real.
The checks run in a child process inside a scratch "host" namespace.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.prereqs import require

pytestmark = pytest.mark.sim

CHILD = r"""
import subprocess
from ciaoweb.agent.drivers.base import InterfaceNotFound, NotSupported
from ciaoweb.agent.drivers.netlink import PyrouteNetlink

HOST, INST = "{host}", "{inst}"
nl = PyrouteNetlink()
subprocess.run(["ip", "link", "add", "ciaovf0", "type", "veth", "peer", "name", "ciaorep0"],
               check=True)
try:
    nl.set_vf("ciaovf0", 0, vlan=100)
    raise SystemExit("set_vf on a veth should be EOPNOTSUPP")
except NotSupported:
    pass
nl.move_to_netns("pf0", 0, "ciaovf0", INST, "eth1", "02:00:00:00:00:aa")
assert nl.is_plugged("pf0", 0, INST, "eth1")
out = subprocess.run(["ip", "-n", INST, "-o", "link", "show", "eth1"],
                     capture_output=True, text=True, check=True).stdout
assert "02:00:00:00:00:aa" in out and "UP" in out, out
nl.move_back("pf0", 0, "ciaovf0", INST, "eth1")
assert not nl.is_plugged("pf0", 0, INST, "eth1")
subprocess.run(["ip", "link", "show", "ciaovf0"], check=True, capture_output=True)
try:
    nl.move_back("pf0", 0, "ciaovf0", INST, "eth1")
    raise SystemExit("second move_back should be InterfaceNotFound")
except InterfaceNotFound:
    pass
print("OK")
"""


def test_moves_and_errno_mapping_on_a_real_kernel():
    require(("ip",), "the netlink test")
    host, inst = f"ciao-t{os.getpid()}-nlhost", f"ciao-t{os.getpid()}-nlinst"
    try:
        for ns in (host, inst):
            subprocess.run(["ip", "netns", "add", ns], check=True)
        done = subprocess.run(
            ["ip", "netns", "exec", host, sys.executable, "-c", CHILD.format(host=host, inst=inst)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
        )
        assert done.returncode == 0 and "OK" in done.stdout, done.stderr[-2000:]
    finally:
        for ns in (host, inst):
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)
