"""dnsmasq --dhcp-script hook: append one JSON line per lease event next to this file.

Installed (copied) into each server's directory by `server.py`; it must stay
stdlib-only and tiny because dnsmasq runs it for every lease change.
Called as: <script> add|old|del <mac> <ip> [hostname]  (env DNSMASQ_LEASE_EXPIRES, ...)

Only built-in modules: `json` and `socket` took 14 of a run's 25 ms of CPU.
"""

import _socket
import os
import sys
import time

from .hook_json import to_json

ACTIONS = ("add", "old", "del")
# The agent's wakeup socket, beside the servers' directories (events.LeaseWakeup binds it;
# named here, as this script imports nothing of ours).
WAKEUP_SOCKET = "lease-events.sock"


def wake_the_agent(server_dir: str) -> None:
    """One datagram: the agent reads the events file now instead of at its next poll.
    Never blocks (a full queue already holds wakeups); no agent listening is no error."""
    try:
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_DGRAM)
    except OSError:
        return
    try:
        sock.setblocking(False)
        sock.sendto(b"!", os.path.join(os.path.dirname(server_dir), WAKEUP_SOCKET))
    except OSError:
        pass
    finally:
        sock.close()


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[1] not in ACTIONS:
        return 0  # init, tftp, arp-add...: not lease events
    if ":" in argv[3]:
        return 0  # DHCPv6 (argv[2] is the DUID): its addresses are the controller's reservations
    expires = os.environ.get("DNSMASQ_LEASE_EXPIRES")
    event = {
        "action": argv[1],
        "mac": argv[2].lower(),
        "ip": argv[3],
        "hostname": argv[4] if len(argv) > 4 else os.environ.get("DNSMASQ_SUPPLIED_HOSTNAME"),
        "expires": int(expires) if expires and expires.isdigit() else None,
        "interface": os.environ.get("DNSMASQ_INTERFACE"),
        "time": time.time(),
    }
    line = (to_json(event) + "\n").encode()
    server_dir = os.path.dirname(os.path.abspath(__file__))
    # One O_APPEND write per event: lines never interleave, readers never see half of one.
    fd = os.open(
        os.path.join(server_dir, "events.jsonl"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644
    )
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
    wake_the_agent(server_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
