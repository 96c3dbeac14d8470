"""Nothing runs a shell string: no module under ciaoweb/ or simulator/ calls subprocess with
`shell=True`, `os.system`, `os.popen`, `subprocess.getoutput`/`getstatusoutput` or
`asyncio.create_subprocess_shell` (an AST scan, so comments and strings do not count). Every
command is an argument list, so a hostile value can never become shell syntax."""

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCANNED = ("ciaoweb", "simulator")
SHELL_FUNCTIONS = {
    ("os", "system"),
    ("os", "popen"),
    ("subprocess", "getoutput"),
    ("subprocess", "getstatusoutput"),
    ("asyncio", "create_subprocess_shell"),
}


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def shell_uses(source: str, filename: str = "<string>") -> list[str]:
    """Every place in `source` that would hand a string to a shell."""
    tree = ast.parse(source, filename)
    aliases: dict[str, str] = {}  # local name -> "module.function"
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                if (node.module, alias.name) in SHELL_FUNCTIONS:
                    found.append(f"{filename}:{node.lineno} imports {node.module}.{alias.name}")
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                aliases[alias.asname or alias.name] = alias.name
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        head, _, rest = name.partition(".")
        name = f"{aliases.get(head, head)}{'.' + rest if rest else ''}"
        module, _, function = name.rpartition(".")
        if (module, function) in SHELL_FUNCTIONS:
            found.append(f"{filename}:{node.lineno} calls {name}")
        for keyword in node.keywords:
            if keyword.arg == "shell" and not (
                isinstance(keyword.value, ast.Constant) and keyword.value.value is False
            ):
                found.append(f"{filename}:{node.lineno} passes shell= to {name or 'a call'}")
    return found


def python_files():
    for top in SCANNED:
        yield from sorted((REPO / top).rglob("*.py"))


def test_no_module_runs_a_shell_string():
    files = list(python_files())
    assert len(files) > 50  # the scan does see the code
    found = []
    for path in files:
        found += shell_uses(path.read_text(), str(path.relative_to(REPO)))
    assert found == []


def test_the_scanner_finds_every_form():
    """The control: each way of reaching a shell is reported."""
    source = """
import os
import subprocess
import subprocess as sp
from os import popen
from subprocess import run, getoutput
import asyncio

os.system("ls")
sp.run("ls", shell=True)
subprocess.Popen(["ls"], shell=1)
run("ls", shell=flag)
getoutput("ls")
asyncio.create_subprocess_shell("ls")
subprocess.run(["ls"], shell=False)  # fine
subprocess.run(["ls"])  # fine
"""
    found = shell_uses(source)
    assert len(found) == 8, found
    assert not any(":16 " in f or ":17 " in f for f in found), found
