class OperationKind:
    CREATE = "create"
    MIGRATE = "migrate"
    DELETE = "delete"
    EVACUATE = "evacuate"
    RESTORE = "restore"
    ATTACH = "attach"
    DETACH = "detach"

    CHOICES = [
        (CREATE, "Create"),
        (MIGRATE, "Migrate"),
        (DELETE, "Delete"),
        (EVACUATE, "Evacuate"),
        (RESTORE, "Restore"),
        (ATTACH, "Attach"),
        (DETACH, "Detach"),
    ]
    # Kinds that own their instance while active: at most one of them per instance. A
    # hot-plug (attach, detach) owns it too: its spec carries the instance's whole
    # desired state at a new generation, which a concurrent one would make stale.
    INSTANCE_KINDS = (CREATE, MIGRATE, DELETE, ATTACH, DETACH)


class OperationState:
    PENDING = "pending"  # written with the change it carries out; not yet advanced
    RUNNING = "running"  # a step is waiting for what it sent (see Operation.step)
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    CHOICES = [
        (PENDING, "Pending"),
        (RUNNING, "Running"),
        (SUCCEEDED, "Succeeded"),
        (FAILED, "Failed"),
    ]
    ACTIVE = (PENDING, RUNNING)
    FINISHED = (SUCCEEDED, FAILED)


class Step:
    """What a running operation waits for; an agent report names the step it answers."""

    DHCP = "dhcp"  # create/attach: each managed DHCP server up with the reservations
    PLUG = "plug"  # create: the host plugs the instance; attach: it plugs the new VF
    PLUG_TARGET = "plug-target"  # migrate: the target plugs VFs with the same MACs
    UNPLUG_SOURCE = "unplug-source"  # migrate: the source releases its old VFs
    ROLLBACK = "rollback"  # migrate: a failed target releases the VFs it took; attach: the
    # host unplugs a VF it could not bring up
    RELEASE = "release"  # delete: the host (and an interrupted migration's source)
    # releases; detach: the host unplugs and resets the attachment's VF
    CHILDREN = "children"  # evacuate: child migrations run

    CHOICES = [
        (DHCP, "DHCP servers"),
        (PLUG, "Plug"),
        (PLUG_TARGET, "Plug on target"),
        (UNPLUG_SOURCE, "Unplug source"),
        (ROLLBACK, "Roll back"),
        (RELEASE, "Release"),
        (CHILDREN, "Child operations"),
    ]
