"""The one place where the controller calls the orchestration layer.

`ciaoweb.orchestration.dispatch` is owned by the orchestration layer; it is imported
lazily so the data model works (and tests run) before or without it. Every call is
deferred to `transaction.on_commit` so agents never see uncommitted state.
"""

import importlib
import logging
from typing import Any

from django.db import transaction

log = logging.getLogger(__name__)

DISPATCH_MODULE = "ciaoweb.orchestration.dispatch"


def _call_dispatch(function: str, *args: Any) -> None:
    try:
        dispatch = importlib.import_module(DISPATCH_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name != DISPATCH_MODULE:
            raise
        log.debug("no %s yet: %s%s not dispatched", DISPATCH_MODULE, function, args)
        return
    getattr(dispatch, function)(*args)


def dispatch_on_commit(function: str, *args: Any) -> None:
    """Call `dispatch.<function>(*args)` once the current transaction commits."""
    transaction.on_commit(lambda: _call_dispatch(function, *args))
