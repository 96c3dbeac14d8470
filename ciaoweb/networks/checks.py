"""Start-up checks of the settings this app reads (Django system checks: `manage.py check`,
`migrate`, `runserver` and the test runner run them; daphne and the Celery worker run
`check` first through the local cluster and the demo).

A bad `CIAO_VLAN_RANGES` or `CIAO_VLAN_DEFAULT_RANGE` (e.g. `physnet1:100-199`) is an
error naming the variable and the bad item, so it never reaches a network creation.
"""

from django.core.checks import Error, register

from ciaoweb.networks.vlans import configuration_problems


@register("ciaoweb")
def check_vlan_ranges(app_configs=None, **kwargs) -> list[Error]:
    return [
        Error(
            f"{name} is invalid: {message}",
            hint=(
                "CIAO_VLAN_RANGES is physnet:low:high[,physnet:low:high...], e.g. "
                "physnet1:100:199,physnet2:200:299; CIAO_VLAN_DEFAULT_RANGE is low:high, "
                "e.g. 100:3999; VLANs are 1-4094."
            ),
            id="networks.E001",
        )
        for name, message in configuration_problems()
    ]
