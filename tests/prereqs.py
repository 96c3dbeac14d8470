"""What the simulator-backed tests need from the machine; missing → skip (fail in CI)."""

from __future__ import annotations

import os
import shutil

import pytest

PROGRAMS = ("ip", "nft", "tc", "dnsmasq", "busybox")


def missing_prerequisites() -> list[str]:
    missing = [] if os.geteuid() == 0 else ["root"]
    missing += [p for p in PROGRAMS if shutil.which(p) is None]
    return missing


def require_sim() -> None:
    """Skip (or, under CIAO_REQUIRE_SIM=1, fail: see conftest) without root and tools."""
    if missing := missing_prerequisites():
        pytest.skip("simulator needs " + ", ".join(missing))
