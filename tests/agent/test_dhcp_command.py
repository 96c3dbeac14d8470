"""The managed dnsmasq's command line, without running it (no root needed)."""

from __future__ import annotations

from ciaoweb.agent.dhcp.server import IPAM_CONTROLLER, IPAM_DYNAMIC, DhcpServer, DhcpServerSpec


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
