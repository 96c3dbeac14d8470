"""Start-up check of the quota defaults (`CIAO_QUOTA_NETWORKS`, `CIAO_QUOTA_INSTANCES`,
`CIAO_QUOTA_VFS`, see ciaoweb.tenancy.quotas): each must be a non-negative integer, or
`manage.py check` and `migrate` stop with an error naming it."""

from django.conf import settings
from django.core.checks import Error, register

from ciaoweb.tenancy.quotas import SETTINGS


@register("ciaoweb")
def check_quota_defaults(app_configs=None, **kwargs) -> list[Error]:
    errors = []
    for name in SETTINGS.values():
        value = getattr(settings, name, None)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            errors.append(
                Error(
                    f"{name} is invalid: {value!r} is not a non-negative integer",
                    hint=f"{name} is the default per-tenant limit, e.g. 20",
                    id="tenancy.E001",
                )
            )
    return errors
