"""`python -m ciaoweb.localcluster.qemu exec <qga socket> [--timeout S] -- argv...`

Runs argv inside the guest behind that qemu-ga socket: its stdout and stderr are
written here and its exit code is ours (124 on timeout, like timeout(1)). `-e K=V` adds
to its environment; `--poll S` polls its status at most every S seconds (long runs).
`log-to FILE -- argv...` (run inside a guest) appends argv's output to FILE and execs it:
how a long-running command (an agent) logs where the host can read it.
`boot NAME [--pf NAME[:WIRE]]... ` boots a guest for a look around (Ctrl-C stops it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ciaoweb.localcluster.qemu")
    sub = parser.add_subparsers(dest="cmd", required=True)
    ex = sub.add_parser("exec", help="run a command inside a guest")
    ex.add_argument("socket")
    ex.add_argument("--timeout", type=float, default=600.0)
    ex.add_argument("--poll", type=float, default=0.05)
    ex.add_argument("-e", dest="env", action="append", default=[], metavar="KEY=VALUE")
    ex.add_argument("argv", nargs=argparse.REMAINDER)
    log_to = sub.add_parser("log-to", help="(inside a guest) exec argv with output to FILE")
    log_to.add_argument("file", type=Path)
    log_to.add_argument("argv", nargs=argparse.REMAINDER)
    boot = sub.add_parser("boot", help="boot a guest until Ctrl-C")
    boot.add_argument("name")
    boot.add_argument("--pf", action="append", default=[], help="NAME[:WIRE]")
    boot.add_argument("--run-dir", type=Path)
    args = parser.parse_args(argv)
    if args.cmd == "exec":
        return _exec(args)
    if args.cmd == "log-to":
        return _log_to(args)
    return _boot(args)


def _command(argv: list[str]) -> list[str]:
    return argv[1:] if argv[:1] == ["--"] else argv


def _log_to(args: argparse.Namespace) -> int:
    import os

    command = _command(args.argv)
    if not command:
        print("log-to: no command given", file=sys.stderr)
        return 2
    args.file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(args.file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    os.execvp(command[0], command)


def _exec(args: argparse.Namespace) -> int:
    from .qga import QgaClient

    command = _command(args.argv)
    if not command:
        print("exec: no command given", file=sys.stderr)
        return 2
    env = dict(item.split("=", 1) for item in args.env if "=" in item)
    stdin = None if sys.stdin is None or sys.stdin.isatty() else sys.stdin.buffer.read()
    try:
        result = QgaClient(args.socket).exec(
            command, env=env, input=stdin or None, timeout=args.timeout, poll_max=args.poll
        )
    except TimeoutError as exc:
        print(f"exec: {exc}", file=sys.stderr)
        return 124
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    return result.returncode


def _boot(args: argparse.Namespace) -> int:
    import signal
    import time

    def _stop(signum, frame):  # also when started in the background (SIGINT ignored)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)

    from .assets import REPO
    from .guest import Guest, GuestSpec, PfSpec

    pfs = [PfSpec(*p.split(":", 1)) if ":" in p else PfSpec(p, "wire0") for p in args.pf]
    run_dir = args.run_dir or REPO / "var" / "realnic" / "run" / args.name
    guest = Guest(GuestSpec(args.name, pfs=pfs), run_dir)
    guest.start()
    print(f"{args.name} ready in {guest.boot_seconds:.1f} s; exec prefix:")
    print(" ".join(guest.exec_prefix))
    try:
        while guest.process.alive():
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        guest.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
