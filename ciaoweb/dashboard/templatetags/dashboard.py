"""Small display helpers shared by the dashboard templates."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from ciaoweb.dashboard.submissions import FIELD, new_token
from ciaoweb.dashboard.views.common import BUSY_INSTANCE_STATES

register = template.Library()


@register.filter
def remaining(expires_at: datetime | None) -> str:
    """ "in 4m 05s", "expired" or "—": the first paint of a lease countdown (live.js
    keeps it ticking in the browser)."""
    if expires_at is None:
        return "—"
    seconds = int((expires_at - timezone.now()).total_seconds())
    if seconds <= 0:
        return "expired"
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"in {hours}h {minutes:02d}m"
    return f"in {minutes}m {seconds:02d}s"


@register.simple_tag
def form_token() -> SafeString:
    """The one-time token of a write form (ciaoweb.dashboard.submissions): posted twice,
    the form acts once."""
    return format_html('<input type="hidden" name="{}" value="{}">', FIELD, new_token())


@register.filter
def is_busy(state: str) -> bool:
    """The agent is still working on it: show a spinner."""
    return state in BUSY_INSTANCE_STATES


@register.filter
def short_id(value: object) -> str:
    return str(value)[:8]


@register.filter
def elapsed_since(moment: datetime | None, start: datetime | None) -> str:
    """ "+0.4s", "+12s", "+2m 05s": how long after `start` (an operation's) `moment` came."""
    if moment is None or start is None:
        return ""
    seconds = max((moment - start).total_seconds(), 0.0)
    if seconds < 10:
        return f"+{seconds:.1f}s"
    minutes, seconds = divmod(int(seconds), 60)
    if not minutes:
        return f"+{seconds}s"
    hours, minutes = divmod(minutes, 60)
    return f"+{hours}h {minutes:02d}m" if hours else f"+{minutes}m {seconds:02d}s"
