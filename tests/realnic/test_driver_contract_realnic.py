"""The driver contract suite (tests/agent/test_driver_contract.py) on the real kernel: one
QEMU guest with two igb PFs, pytest run inside it over the 9p root with
CIAO_CONTRACT_RIGS=realnic (tests/realnic/rigs.py), each contract case reported here.
"""

from __future__ import annotations

import inspect
import os
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.agent import test_driver_contract as contract

REPO = Path(__file__).resolve().parents[2]
CASES = sorted(
    name for name, _ in inspect.getmembers(contract, inspect.isfunction) if name[:5] == "test_"
)
# The guest's boot and the inner suite run in the module fixture's setup.
pytestmark = [pytest.mark.realnic, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def inner_run(realnic_ready, tmp_path_factory):
    from ciaoweb.localcluster.qemu import Guest, GuestSpec, PfSpec

    run_dir = REPO / "var" / "realnic" / "run" / f"ciao-rnct{os.getpid() % 100000}"
    share = tmp_path_factory.mktemp("realnic-share")
    spec = GuestSpec(
        f"ciao-rnct{os.getpid() % 100000}",
        pfs=[PfSpec("pf0", "physnet1"), PfSpec("pf1", "physnet2")],
        share=share,
    )
    guest = Guest(spec, run_dir)
    try:
        guest.start()
        junit = share / "contract.xml"
        t0 = time.monotonic()
        result = guest.exec(
            [
                "env",
                "-C",
                str(REPO),
                sys.executable,
                "-m",
                "pytest",
                "tests/agent/test_driver_contract.py",
                "-q",
                "-p",
                "no:cacheprovider",
                # No Django (the contract needs none; its import costs ~30 s under TCG).
                "-p",
                "no:django",
                "--noconftest",
                f"--junitxml={junit}",
                "-o",
                "timeout=120",
            ],
            env={
                "CIAO_CONTRACT_RIGS": "realnic",
                "CIAO_REQUIRE_SIM": "1",
                "PYTHONDONTWRITEBYTECODE": "1",
                "DATABASE_URL": os.environ.get("DATABASE_URL", ""),
            },
            timeout=600,
        )
        seconds = time.monotonic() - t0
        print(f"\nrealnic contract: boot {guest.boot_seconds:.1f} s, suite {seconds:.1f} s")
        yield result, _cases(junit), guest
    finally:
        guest.stop()


def _cases(junit: Path) -> dict[str, str | None]:
    """name -> None (passed) or the failure text."""
    if not junit.exists():
        return {}
    found: dict[str, str | None] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = case.get("name", "").removesuffix("[realnic]")
        bad = next(
            (el for tag in ("failure", "error", "skipped") if (el := case.find(tag)) is not None),
            None,
        )
        found[name] = None if bad is None else (bad.get("message", "") + "\n" + (bad.text or ""))
    return found


@pytest.mark.parametrize("case", CASES)
def test_contract_case_on_the_real_kernel(inner_run, case):
    result, cases, guest = inner_run
    if case not in cases:
        pytest.fail(
            f"{case} did not run in the guest (pytest rc={result.returncode})\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}\n{guest.diagnostics()}"
        )
    if cases[case] is not None:
        pytest.fail(f"{case} on the real kernel:\n{cases[case][-4000:]}")
