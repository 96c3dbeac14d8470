class HostState:
    ONLINE = "online"
    OFFLINE = "offline"  # no heartbeat within CIAO_HEARTBEAT_TIMEOUT
    MAINTENANCE = "maintenance"  # evacuated by an admin; the scheduler skips it

    CHOICES = [(ONLINE, "Online"), (OFFLINE, "Offline"), (MAINTENANCE, "Maintenance")]


class VfState:
    FREE = "free"  # nobody owns it
    RESERVED = "reserved"  # claimed for an attachment, agent not yet done
    IN_USE = "in_use"  # agent reported it plugged into the instance
    RELEASING = "releasing"  # its attachment moved away; the old host's agent must reset it
    ERROR = "error"  # agent could not configure or reset it; never scheduled

    CHOICES = [
        (FREE, "Free"),
        (RESERVED, "Reserved"),
        (IN_USE, "In use"),
        (RELEASING, "Releasing"),
        (ERROR, "Error"),
    ]
