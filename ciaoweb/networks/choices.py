class NetworkKind:
    OVERLAY = "overlay"  # the tenant's primary network (eth0), created with the tenant
    SRIOV = "sriov"  # a VLAN on a physnet; instances get a VF

    CHOICES = [(OVERLAY, "Overlay"), (SRIOV, "SR-IOV")]


class Ipam:
    CONTROLLER = "controller"  # controller allocates, DHCP reservation MAC -> IP
    DYNAMIC = "dynamic"  # our DHCP server hands out a range; IP learned from leases
    UNDERLAY = "underlay"  # the physical network's DHCP; we only observe

    CHOICES = [(CONTROLLER, "Controller"), (DYNAMIC, "Dynamic"), (UNDERLAY, "Underlay")]
    MANAGED = (CONTROLLER, DYNAMIC)  # we run the network's DHCP/DNS server


class Ipv6Mode:
    """How a dual-stack network's instances get their IPv6 address (docs/api.md, IPv6)."""

    SLAAC = "slaac"  # the network's dnsmasq announces the /64; the address is the MAC's EUI-64
    DHCPV6 = "dhcpv6"  # the controller reserves the address; dnsmasq serves it by DHCPv6

    CHOICES = [(SLAAC, "SLAAC"), (DHCPV6, "DHCPv6")]


class IpPurpose:
    GATEWAY = "gateway"
    DHCP_SERVER = "dhcp_server"
    ATTACHMENT = "attachment"

    CHOICES = [(GATEWAY, "Gateway"), (DHCP_SERVER, "DHCP server"), (ATTACHMENT, "Attachment")]


class LeaseState:
    ACTIVE = "active"
    EXPIRED = "expired"
    RELEASED = "released"

    CHOICES = [(ACTIVE, "Active"), (EXPIRED, "Expired"), (RELEASED, "Released")]
