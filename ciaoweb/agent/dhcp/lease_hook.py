"""dnsmasq --dhcp-script hook: append one JSON line per lease event next to this file.

Installed (copied) into each server's directory by `server.py`; it must stay
stdlib-only and tiny because dnsmasq runs it for every lease change.
Called as: <script> add|old|del <mac> <ip> [hostname]  (env DNSMASQ_LEASE_EXPIRES, ...)
"""

import json
import os
import sys
import time

ACTIONS = ("add", "old", "del")


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
    line = (json.dumps(event, sort_keys=True) + "\n").encode()
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "events.jsonl")
    # One O_APPEND write per event: lines never interleave, readers never see half of one.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
