"""The real-kernel layer: QEMU guests with emulated igb SR-IOV NICs (scripts/realnic-setup.sh
installs QEMU, the guest kernel and the initramfs). Without them a test skips, and fails
under CIAO_REQUIRE_SIM=1, like tests/prereqs.py for the simulator."""

from __future__ import annotations

import pytest

from ciaoweb.localcluster.qemu import missing_assets
from tests.prereqs import missing_prerequisites, unavailable


def pytest_configure(config):
    # Also in pyproject's markers (kept here so the layer works with --strict-markers).
    config.addinivalue_line("markers", "realnic: boots QEMU guests with emulated igb NICs")


def require_realnic() -> None:
    """Root, QEMU with igb, qemu-ga, the guest kernel and initramfs, or skip (fail in CI)."""
    missing = missing_prerequisites(("ip",)) + missing_assets()
    if missing:
        unavailable(
            "the real-kernel layer needs " + "; ".join(missing) + " (scripts/realnic-setup.sh)"
        )


@pytest.fixture(scope="session")
def realnic_ready():
    require_realnic()
