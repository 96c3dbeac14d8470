from django.apps import AppConfig


class TenancyConfig(AppConfig):
    name = "ciaoweb.tenancy"
    label = "tenancy"

    def ready(self) -> None:
        from ciaoweb.tenancy import (
            checks,  # noqa: F401 - registers the quota settings' check
            revocation,  # noqa: F401 - connects its signal receivers
        )
