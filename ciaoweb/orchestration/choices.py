class DhcpServerState:
    PENDING = "pending"  # row and VF claimed, agent not yet done
    RUNNING = "running"
    ERROR = "error"
    REMOVING = "removing"  # network deleted; the agent stops it and resets the VF
    CHOICES = [(PENDING, "Pending"), (RUNNING, "Running"), (ERROR, "Error"), (REMOVING, "Removing")]


class Purpose:
    """Why a spec was sent; the agent echoes it back in `context` with the result."""

    PROVISION = "provision"
    DELETE = "delete"
    MIGRATE = "migrate"  # plug on the target host
    MIGRATE_SOURCE = "migrate-source"  # unplug from the source after the target is up
    MIGRATE_ROLLBACK = "migrate-rollback"  # unplug from a target that failed
    RECONCILE = "reconcile"
