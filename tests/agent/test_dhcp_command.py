"""The managed dnsmasq's command line, without running it (no root needed)."""

from __future__ import annotations

import ipaddress

import pytest

from ciaoweb.agent.dhcp.server import (
    IPAM_CONTROLLER,
    IPAM_DYNAMIC,
    DhcpServer,
    DhcpServerSpec,
    Reservation,
)
from ciaoweb.agent.drivers.base import InvalidArgument


def _command(tmp_path, ipam: str, **fields) -> list[str]:
    values = {
        "network_id": "net1",
        "netns": "ciao-dhcp-net1",
        "interface": "eth0",
        "cidr": "10.77.0.0/24",
        "gateway": "10.77.0.1",
        "ipam": ipam,
        "dns_domain": "net1.ciao.test",
    }
    spec = DhcpServerSpec(**{**values, **fields})
    return DhcpServer(spec, tmp_path).command()


def test_a_controller_ipam_server_answers_known_macs_only(tmp_path):
    command = _command(tmp_path, IPAM_CONTROLLER)
    assert "--dhcp-ignore=tag:!known" in command
    assert "--dhcp-range=10.77.0.0,static,255.255.255.0,3600" in command


def test_a_dynamic_server_serves_its_range_to_any_mac(tmp_path):
    command = _command(tmp_path, IPAM_DYNAMIC)
    assert not any(arg.startswith("--dhcp-ignore") for arg in command)


def test_the_command_line_follows_the_spec(tmp_path):
    """What `restart_if_changed` compares: another domain or IPAM is another command."""
    base = _command(tmp_path, IPAM_CONTROLLER)
    assert _command(tmp_path, IPAM_CONTROLLER) == base
    renamed = _command(tmp_path, IPAM_CONTROLLER, dns_domain="renamed.test")
    assert "--domain=renamed.test" in renamed and "--local=/renamed.test/" in renamed
    assert renamed != base != _command(tmp_path, IPAM_DYNAMIC)


def test_a_dual_stack_server_announces_the_prefix_and_serves_dhcpv6(tmp_path):
    v4 = _command(tmp_path, IPAM_CONTROLLER)
    dhcpv6 = _command(tmp_path, IPAM_CONTROLLER, ipv6_cidr="fd00:77::/64", ipv6_mode="dhcpv6")
    slaac = _command(tmp_path, IPAM_CONTROLLER, ipv6_cidr="fd00:77::/64", ipv6_mode="slaac")
    assert not any("enable-ra" in arg or "::" in arg for arg in v4)
    assert "--dhcp-range=fd00:77::,static,64,3600" in dhcpv6
    assert "--dhcp-range=fd00:77::,ra-only,64,3600" in slaac
    for command in (dhcpv6, slaac):
        assert "--enable-ra" in command and "--ra-param=eth0,0,0" in command
        assert f"--hostsdir={tmp_path}/dhcp-net1/names.d" in command


def test_reservation_lines_carry_the_dhcpv6_address_and_aaaa_records(tmp_path):
    net = ipaddress.IPv4Network("10.77.0.0/24")
    net6 = ipaddress.IPv6Network("fd00:77::/64")
    both = Reservation("02:aa:00:00:00:01", "10.77.0.10", "web", "fd00:77::10")
    assert both.line(net, net6) == "02:aa:00:00:00:01,10.77.0.10,[fd00:77::10],web\n"
    assert both.line(net) == "02:aa:00:00:00:01,10.77.0.10,web\n"  # slaac: not by DHCPv6
    assert both.aaaa(net6) == "fd00:77::10 web\n"
    dynamic = Reservation("02:aa:00:00:00:02", None, "db", "fd00:77::11")
    assert dynamic.line(net, net6) == "02:aa:00:00:00:02,[fd00:77::11],db\n"
    with pytest.raises(InvalidArgument):
        Reservation("02:aa:00:00:00:03", "10.77.0.12", "x", "fd00:78::1").line(net, net6)
    with pytest.raises(InvalidArgument):
        DhcpServerSpec(
            network_id="n",
            netns="ns",
            interface="eth0",
            cidr="10.77.0.0/24",
            ipv6_cidr="fd00:77::/80",
            ipv6_mode="slaac",
        ).validated()
