"""Where scripts/realnic-setup.sh put the guest kernel, initramfs and QEMU, and whether
they are all there (the tests fail under CIAO_REQUIRE_SIM=1 when they are not)."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
PACKAGE = Path(__file__).resolve().parent
STAGE2 = PACKAGE / "guest-stage2.sh"
QEMU = "qemu-system-x86_64"


def realnic_dir() -> Path:
    return Path(os.environ.get("CIAO_REALNIC_DIR", REPO / "var" / "realnic"))


@dataclass(frozen=True)
class Assets:
    qemu: str
    kernel: Path
    initramfs: Path

    @classmethod
    def find(cls) -> Assets:
        if missing := missing_assets():
            raise FileNotFoundError(
                "real-kernel guests need " + "; ".join(missing) + " (run scripts/realnic-setup.sh)"
            )
        root = realnic_dir()
        kernel = root / "vmlinux"
        if not kernel.is_file():
            kernel = sorted((root / "kernel" / "boot").glob("vmlinuz-*"))[-1]
        return cls(shutil.which(QEMU) or QEMU, kernel, root / "initramfs.cpio.gz")


def missing_assets() -> list[str]:
    """What is missing to boot a guest: QEMU with igb, qemu-ga, kernel, initramfs."""
    missing = []
    if shutil.which(QEMU) is None:
        missing.append(f"{QEMU} (QEMU >= 8 with -device igb)")
    if shutil.which("qemu-ga") is None:
        missing.append("qemu-ga (qemu-guest-agent)")
    root = realnic_dir()
    if not (root / "vmlinux").is_file() and not list((root / "kernel" / "boot").glob("vmlinuz-*")):
        missing.append(f"the guest kernel under {root}")
    if not (root / "initramfs.cpio.gz").is_file():
        missing.append(f"{root}/initramfs.cpio.gz")
    return missing


def accelerator() -> str:
    """kvm only with a normal kvm_intel/kvm_amd (the PVM /dev/kvm here hangs the guest)."""
    wanted = os.environ.get("CIAO_QEMU_ACCEL", "auto")
    if wanted != "auto":
        return wanted
    if os.access("/dev/kvm", os.W_OK) and any(
        Path(f"/sys/module/{m}").is_dir() for m in ("kvm_intel", "kvm_amd")
    ):
        return "kvm"
    return "tcg"
