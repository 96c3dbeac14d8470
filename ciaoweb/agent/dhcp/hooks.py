"""Install our hook scripts (fixed content, shipped in this package) as executables.

dnsmasq and udhcpc exec their hook directly with a cleaned environment, so the copy
gets a shebang naming this very interpreter (a venv's python, not a PATH lookup).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HOOK_DIR = Path(__file__).resolve().parent


def install_hook(name: str, dest: Path) -> Path:
    """Copy hook module `name` to `dest` with an absolute-interpreter shebang."""
    interpreter = sys.executable
    if not interpreter or any(c.isspace() for c in interpreter):
        raise RuntimeError(f"cannot use interpreter path {interpreter!r} in a shebang")
    body = (HOOK_DIR / f"{name}.py").read_text()
    content = f"#!{interpreter} -I\n{body}"
    if dest.exists() and dest.read_text() == content:
        return dest
    tmp = dest.with_name(f".{dest.name}.tmp")
    tmp.write_text(content)
    os.chmod(tmp, 0o755)
    os.replace(tmp, dest)
    return dest
