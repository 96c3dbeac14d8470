"""Domain errors: what the kernel would answer, as exceptions with an errno."""

from __future__ import annotations

import errno as _errno


class SimError(Exception):
    """Base class of every simulator error."""

    errno: int = _errno.EIO

    def __init__(self, message: str, errno: int | None = None) -> None:
        super().__init__(message)
        if errno is not None:
            self.errno = errno


class DeviceBusy(SimError):
    """EBUSY: e.g. sriov_numvfs N -> M without going through 0."""

    errno = _errno.EBUSY


class InvalidArgument(SimError):
    """EINVAL / ERANGE: bad value (numvfs above totalvfs, bad MAC, VLAN out of range)."""

    errno = _errno.EINVAL


class NotFound(SimError):
    """ENODEV / ENOENT: no such host, PF, VF, instance or simulator."""

    errno = _errno.ENODEV


class MacSetFailed(SimError):
    """The driver refused the MAC (like i40e while the VF is in use)."""

    errno = _errno.EAGAIN


class NotSupported(SimError):
    """EOPNOTSUPP: the PF's driver does not implement this knob."""

    errno = _errno.EOPNOTSUPP


class CommandFailed(SimError):
    """An `ip`/`nft`/`tc` command failed; carries its argument list and stderr."""

    def __init__(self, args: list[str], returncode: int, stderr: str) -> None:
        super().__init__(f"{' '.join(args)!r} failed ({returncode}): {stderr.strip()}")
        self.args_list = args
        self.returncode = returncode
        self.stderr = stderr
