"""Managed DHCP/DNS servers (dnsmasq, the CNCI role) and the container DHCP client (udhcpc)."""
