class InstanceKind:
    CONTAINER = "container"
    VM = "vm"

    CHOICES = [(CONTAINER, "Container"), (VM, "Virtual machine")]


class InstanceState:
    PENDING = "pending"  # accepted, not yet sent to/picked up by the agent
    PROVISIONING = "provisioning"  # the agent is plumbing it
    RUNNING = "running"
    MIGRATING = "migrating"
    STOPPED = "stopped"
    ERROR = "error"
    DELETING = "deleting"  # waiting for the agent to release its VFs

    CHOICES = [
        (PENDING, "Pending"),
        (PROVISIONING, "Provisioning"),
        (RUNNING, "Running"),
        (MIGRATING, "Migrating"),
        (STOPPED, "Stopped"),
        (ERROR, "Error"),
        (DELETING, "Deleting"),
    ]
    MIGRATABLE = (RUNNING, STOPPED, ERROR)
    # An operation is under way: never the state an instance is left in.
    TRANSITIONAL = (PENDING, PROVISIONING, MIGRATING, DELETING)


class IpSource:
    CONTROLLER = "controller"  # allocated by us, reserved in our DHCP server
    DHCP = "dhcp"  # learned from our DHCP server's leases (ipam=dynamic)
    UNDERLAY = "underlay"  # reported by the agent's DHCP client on an underlay network
    UNKNOWN = "unknown"  # a VM on an underlay network: nobody reports it (yet)

    CHOICES = [
        (CONTROLLER, "Controller"),
        (DHCP, "DHCP"),
        (UNDERLAY, "Underlay"),
        (UNKNOWN, "Unknown"),
    ]


class Ipv6Source:
    """Where an attachment's IPv6 address comes from (dual-stack networks only)."""

    CONTROLLER = "controller"  # ipv6_mode=dhcpv6: reserved by us, served by our DHCPv6
    SLAAC = "slaac"  # ipv6_mode=slaac: the MAC's EUI-64 in the /64, known before boot
    DHCP = "dhcp"  # learned from a DHCPv6 lease (not produced by our servers today)
    UNDERLAY = "underlay"  # reported by the agent from an underlay's router advertisements
    UNKNOWN = "unknown"  # a VM on an underlay network: nobody reports it

    CHOICES = [
        (CONTROLLER, "Controller"),
        (SLAAC, "SLAAC"),
        (DHCP, "DHCP"),
        (UNDERLAY, "Underlay"),
        (UNKNOWN, "Unknown"),
    ]


class AttachmentState:
    PENDING = "pending"  # desired, not yet plumbed
    ACTIVE = "active"  # the agent plugged it in
    ERROR = "error"
    RELEASING = "releasing"  # instance deleting: the agent unplugs it

    CHOICES = [(PENDING, "Pending"), (ACTIVE, "Active"), (ERROR, "Error"), (RELEASING, "Releasing")]
