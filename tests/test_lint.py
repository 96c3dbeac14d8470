"""The code stays ruff-clean (lint and format), checked where CI looks: the test suite."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TREES = ["ciaoweb", "simulator", "tests", "bench", "deploy"]


def _ruff() -> str:
    candidate = Path(sys.executable).with_name("ruff")
    found = str(candidate) if candidate.exists() else shutil.which("ruff")
    if not found:
        pytest.skip("ruff is not installed")
    return found


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["lint", "format"])
def test_ruff(command):
    trees = [t for t in TREES if (REPO / t).exists()]
    done = subprocess.run([_ruff(), *command, *trees], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
