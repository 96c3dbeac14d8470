"""Real-kernel nodes: QEMU guests with emulated Intel 82576 (igb) SR-IOV NICs.

`Guest` boots one (see guest.py), `QgaClient` runs commands in it through qemu-ga, and
`python -m ciaoweb.localcluster.qemu exec <qga socket> -- argv...` is the argv prefix
form. Set-up (QEMU, guest kernel, initramfs): scripts/realnic-setup.sh.
"""

from .assets import Assets, accelerator, missing_assets
from .guest import Guest, GuestSpec, PfSpec, Wire, clean, pair_wires
from .qga import ExecResult, QgaClient, QgaError

__all__ = [
    "Assets",
    "ExecResult",
    "Guest",
    "GuestSpec",
    "PfSpec",
    "QgaClient",
    "QgaError",
    "Wire",
    "accelerator",
    "clean",
    "missing_assets",
    "pair_wires",
]
