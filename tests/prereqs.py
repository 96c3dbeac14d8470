"""What the simulator-backed tests need from the machine; missing → skip (fail in CI).

One place for every layer's check: root plus the programs a test runs. Under
`CIAO_REQUIRE_SIM=1` (CI) a missing prerequisite fails the test at once, and the suite's
hook (tests/conftest.py) turns any other skip into a failure too.
"""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest

PROGRAMS = ("ip", "nft", "tc", "dnsmasq", "busybox")
REQUIRE_SIM = os.environ.get("CIAO_REQUIRE_SIM") == "1"


def missing_prerequisites(programs: tuple[str, ...] = PROGRAMS) -> list[str]:
    missing = [] if os.geteuid() == 0 else ["root"]
    missing += [p for p in programs if shutil.which(p) is None]
    return missing


def unavailable(reason: str) -> NoReturn:
    """Skip for `reason`, or under CIAO_REQUIRE_SIM=1 fail."""
    if REQUIRE_SIM:
        pytest.fail(f"{reason} (CIAO_REQUIRE_SIM=1: a missing prerequisite fails)", pytrace=False)
    pytest.skip(reason)


def require(programs: tuple[str, ...] = PROGRAMS, what: str = "simulator") -> None:
    """Root and `programs`, or skip (fail under CIAO_REQUIRE_SIM=1)."""
    if missing := missing_prerequisites(programs):
        unavailable(f"{what} needs " + ", ".join(missing))


def require_sim() -> None:
    """Root and every program the simulator and its DHCP servers run."""
    require()
