class DhcpServerState:
    PENDING = "pending"  # row and VF claimed, agent not yet done
    RUNNING = "running"
    ERROR = "error"
    REMOVING = "removing"  # network deleted; the agent stops it and resets the VF
    CHOICES = [(PENDING, "Pending"), (RUNNING, "Running"), (ERROR, "Error"), (REMOVING, "Removing")]


class Purpose:
    """Why a spec was sent (for logs; the operation and step in `context` decide what
    the echoed report means)."""

    PROVISION = "provision"
    DELETE = "delete"
    MIGRATE = "migrate"  # plug on the target host
    MIGRATE_SOURCE = "migrate-source"  # unplug from the source after the target is up
    MIGRATE_ROLLBACK = "migrate-rollback"  # unplug from a target that failed
    ATTACH = "attach"  # hot-plug one interface into a running instance
    DETACH = "detach"  # unplug one interface (or an attach that failed), namespace kept
