"""The installed ciaoweb's version, as agents report it with their inventory.

No Django: the node agent imports it.
"""

from __future__ import annotations

import functools
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _distribution_version

DISTRIBUTION = "ciaoweb"
UNKNOWN = "unknown"


@functools.cache
def version() -> str:
    """The version of the installed `ciaoweb` distribution, or "unknown" when the code
    runs from a tree that was never installed."""
    try:
        return _distribution_version(DISTRIBUTION)
    except PackageNotFoundError:
        return UNKNOWN
