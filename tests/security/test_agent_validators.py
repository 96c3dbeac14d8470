"""The agent's own gate (ciaoweb/agent/dhcp/validate.py): every value bound for a dnsmasq or
udhcpc command line, a dnsmasq hosts file or a namespace name is checked again on the node,
whatever the controller sent. It refuses the same hostile values the API refuses."""

import ipaddress

import pytest

from ciaoweb.agent.dhcp import validate
from ciaoweb.agent.drivers.base import InvalidArgument
from tests.security.hostile import (
    CONTROL,
    HOSTILE_DOMAINS,
    HOSTILE_IPS,
    HOSTILE_MACS,
    HOSTILE_NAMES,
    LOOK_ALIKES,
    SHELL_AND_DNSMASQ,
)

# The agent lower-cases ASCII hostnames (DNS is case-insensitive): "WEB" is "web" there.
AGENT_HOSTNAMES = [v for v in HOSTILE_NAMES if v != "WEB"]
# Interface and namespace names may hold `_`, `.` and capitals (kernel rules), and end in `-`.
PATHLIKE = [v for v in SHELL_AND_DNSMASQ + CONTROL + LOOK_ALIKES if v not in ("web-",)] + [""]
NET = ipaddress.IPv4Network("192.168.10.0/24")


def accepted(check, values) -> list:
    """The values `check` let through."""
    through = []
    for value in values:
        try:
            check(value)
        except InvalidArgument:
            continue
        through.append(value)
    return through


def test_hostnames():
    assert accepted(validate.hostname, AGENT_HOSTNAMES) == []
    assert validate.hostname("web-1") == "web-1"
    assert validate.hostname("WEB") == "web"


def test_domains():
    assert accepted(validate.domain, HOSTILE_DOMAINS + [""]) == []
    assert validate.domain("acme.example.") == "acme.example"


def test_macs():
    assert accepted(validate.mac, HOSTILE_MACS + ["02:00:00:00:00:01\n", ""]) == []
    assert validate.mac("02:AA:bb:cc:dd:ee") == "02:aa:bb:cc:dd:ee"


def test_host_ips():
    assert accepted(lambda v: validate.host_ip(v, NET), HOSTILE_IPS + ["", "192.168.10.5\n"]) == []
    assert str(validate.host_ip("192.168.10.5", NET)) == "192.168.10.5"


def test_networks():
    bad = [
        "10.0.0.0/33",
        "10.0.0.1/24",
        "10.0.0.0/24;reboot",
        "10.0.0.0/4",
        "10.0.0.0/31",
        "10.0.0.0/24\n",
        "x" * 10 * 1024,
        "",
        "::/64",
    ]
    assert accepted(validate.network, bad) == []
    assert validate.network("10.0.0.0/24").prefixlen == 24


def test_interface_names():
    assert accepted(validate.ifname, PATHLIKE + ["x" * 16, ".", "eth0\n"]) == []
    assert validate.ifname("eth1") == "eth1"


def test_namespace_names():
    assert accepted(validate.netns, PATHLIKE + ["x" * 65, ".", "ciao-a\n"]) == []
    assert validate.netns("ciao-i-web") == "ciao-i-web"


def test_ids_used_in_file_names():
    assert accepted(validate.ident, PATHLIKE + ["x" * 65, "a.b", "abc\n"]) == []
    assert validate.ident("0b6f2c1e-3a4d-4e5f-8a9b-0c1d2e3f4a5b")


def test_non_strings_are_checked_as_their_text():
    """Whatever type arrives in a task, the check sees its text."""
    with pytest.raises(InvalidArgument):
        validate.hostname(["web"])
    with pytest.raises(InvalidArgument):
        validate.mac({"mac": "02:00:00:00:00:01"})
    with pytest.raises(InvalidArgument):
        validate.netns(b"ciao-x")
