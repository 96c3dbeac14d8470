"""Install our hook scripts (fixed content, shipped in this package) as executables.

dnsmasq and udhcpc exec their hook directly with a cleaned environment, so the copy
gets a shebang naming this very interpreter (a venv's python, not a PATH lookup).

Both hooks run as root (udhcpc is root; dnsmasq's script helper is forked before it
drops to its own user), so neither the hook nor its interpreter may sit where anyone
else could change them: every directory from / down to each of them must be root's (or
the agent's own user's) and writable by nobody else (a sticky directory such as /tmp
excepted: others cannot rename or remove what is ours in it).
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

HOOK_DIR = Path(__file__).resolve().parent
# How our stdlib-only helper scripts are run: -I, no environment or user paths; -S, no
# site (its .pth files cost 12 of the 18 ms a start takes, twice per container lease).
STDLIB_ONLY = "-IS"
# A hook's one import of ours, replaced by that module's text when the hook is installed.
INLINED = {"from .hook_json import to_json\n": "hook_json"}


class UntrustedPath(RuntimeError):
    """A hook or its interpreter lives where another user could replace it."""


def _owners() -> tuple[int, ...]:
    return (0, os.geteuid())


def _check_entry(path: Path, what: str) -> None:
    st = os.lstat(path)
    if st.st_uid not in _owners():
        raise UntrustedPath(f"{what}: {path} belongs to uid {st.st_uid}, not root")
    if stat.S_ISLNK(st.st_mode):
        return  # a link's own mode means nothing; its directory and target are checked
    sticky_dir = stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not sticky_dir:
        raise UntrustedPath(f"{what}: {path} is writable by others ({oct(st.st_mode & 0o7777)})")


def check_trusted(path: str | os.PathLike[str], what: str) -> Path:
    """`path` and every directory above it, as given and once symlinks are resolved."""
    given = Path(os.path.abspath(path))
    resolved = Path(os.path.realpath(given))
    for candidate in dict.fromkeys([given, *given.parents, resolved, *resolved.parents]):
        if candidate.exists() or candidate.is_symlink():
            _check_entry(candidate, what)
    return resolved


def trusted_interpreter() -> str:
    """The agent's own interpreter (sys.executable: the installed package's), refused if
    it could have been swapped by someone else."""
    interpreter = sys.executable
    if not interpreter or any(c.isspace() for c in interpreter):
        raise RuntimeError(f"cannot use interpreter path {interpreter!r} in a shebang")
    check_trusted(interpreter, "hook interpreter")
    return interpreter


def hook_source(name: str) -> str:
    """Hook module `name` as one file: what it imports of ours copied into it."""
    body = (HOOK_DIR / f"{name}.py").read_text()
    for line, module in INLINED.items():
        body = body.replace(line, (HOOK_DIR / f"{module}.py").read_text())
    return body


def install_hook(name: str, dest: Path) -> Path:
    """Copy hook module `name` to `dest` with an absolute-interpreter shebang; `dest`'s
    directory must be one nobody else can write to (checked)."""
    interpreter = trusted_interpreter()
    dest = Path(dest)
    check_trusted(dest.parent, "hook directory")
    body = hook_source(name)
    content = f"#!{interpreter} {STDLIB_ONLY}\n{body}"
    if dest.exists() and not dest.is_symlink():
        current = os.lstat(dest)
        if (
            dest.read_text() == content
            and current.st_uid in _owners()
            and stat.S_IMODE(current.st_mode) == 0o755
        ):
            return dest
    tmp = dest.with_name(f".{dest.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o700)
    with os.fdopen(fd, "w") as out:
        out.write(content)
    os.chmod(tmp, 0o755)
    os.replace(tmp, dest)
    return dest
