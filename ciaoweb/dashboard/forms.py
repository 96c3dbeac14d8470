"""Forms for rendering and collecting input only: validation is the REST API's.

Each form turns its cleaned data into the API payload (`payload()`); the view sends that
through `api_bridge.call_api` and puts the API's per-field messages back on the form
with `show_api_errors`. The fields are deliberately lenient (nothing required, choices
not enforced) so that every rule is the serializer's, stated once.
"""

from __future__ import annotations

from typing import Any

from django import forms

from ciaoweb.dashboard.api_bridge import ApiResult
from ciaoweb.events.choices import EventKind
from ciaoweb.instances.choices import InstanceKind
from ciaoweb.networks.choices import Ipam, Ipv6Mode


class LenientChoiceField(forms.ChoiceField):
    """A select whose value the API checks (its message is the one the user sees)."""

    def valid_value(self, value: Any) -> bool:
        return True


class LenientMultipleChoiceField(forms.MultipleChoiceField):
    def valid_value(self, value: Any) -> bool:
        return True


def _text(label: str, **kwargs: Any) -> forms.CharField:
    return forms.CharField(label=label, required=False, strip=True, **kwargs)


class ApiForm(forms.Form):
    """Base: blank optional values are left out of the payload, so API defaults apply."""

    always_sent: tuple[str, ...] = ()

    def payload(self) -> dict[str, Any]:
        data = {}
        for name, value in self.cleaned_data.items():
            if value in ("", None, []) and name not in self.always_sent:
                continue
            data[name] = value
        return data


class NetworkForm(ApiForm):
    always_sent = ("name", "cidr")

    name = _text("Name", help_text="A DNS label, e.g. storage")
    physnet = _text("Physical network", widget=forms.TextInput(attrs={"list": "physnets"}))
    vlan = _text(
        "VLAN",
        help_text="Leave empty to allocate one from the physnet's range; underlay networks "
        "need the physical network's VLAN",
    )
    cidr = _text("CIDR", help_text="IPv4, e.g. 10.20.0.0/24")
    gateway = _text("Gateway", help_text="Leave empty for the first usable address")
    ipam = LenientChoiceField(label="IP address management", choices=Ipam.CHOICES, required=False)
    mtu = _text("MTU")
    dns_domain = _text("DNS domain")
    ipv6_cidr = _text("IPv6 prefix", help_text="Optional, for dual stack, e.g. fd00:20::/64")
    ipv6_mode = LenientChoiceField(
        label="IPv6 addresses",
        choices=[("", "default (dhcpv6)"), *Ipv6Mode.CHOICES],
        required=False,
        help_text="slaac: the MAC's EUI-64 in a /64; dhcpv6: reserved by the controller",
    )

    def __init__(self, *args: Any, tenants: list | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if tenants is None:
            # Members: the VLAN comes from the physnet's tenant range, and underlay
            # networks (which need the physical network's VLAN) are made by admins.
            del self.fields["vlan"]
            self.fields["ipam"].choices = [c for c in Ipam.CHOICES if c[0] != Ipam.UNDERLAY]
        else:  # cluster admins only
            self.fields["tenant"] = LenientChoiceField(
                label="Tenant",
                required=False,
                choices=[("", "— none (a shared network) —")]
                + [(str(t.pk), t.name) for t in tenants],
            )
            self.fields["shared"] = forms.BooleanField(
                label="Shared with every tenant", required=False
            )

    def payload(self) -> dict[str, Any]:
        data = super().payload()
        data["kind"] = "sriov"  # overlay networks are only the tenants' primary ones
        if "tenant" in self.fields:
            data["tenant"] = self.cleaned_data.get("tenant") or None
        return data


class InstanceForm(ApiForm):
    always_sent = ("name",)

    name = _text("Name", help_text="A DNS label; it becomes the hostname")
    kind = LenientChoiceField(label="Kind", choices=InstanceKind.CHOICES, required=False)
    networks = LenientMultipleChoiceField(
        label="Secondary networks",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Each SR-IOV network gives the instance a VF; eth0 is always the tenant's "
        "default network",
    )

    def __init__(
        self,
        *args: Any,
        networks: list | None = None,
        tenants: list | None = None,
        hosts: list | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.network_names = {str(n.pk): str(n) for n in networks or []}
        self.fields["networks"].choices = [
            (str(n.pk), f"{n} — VLAN {n.vlan} on {n.physnet}, {n.cidr}" if n.vlan else str(n))
            for n in networks or []
        ]
        if tenants is not None:
            self.fields["tenant"] = LenientChoiceField(
                label="Tenant", required=False, choices=[(str(t.pk), t.name) for t in tenants]
            )
        if hosts is not None:
            self.fields["host"] = LenientChoiceField(
                label="Host", required=False, choices=host_choices(hosts)
            )

    def payload(self) -> dict[str, Any]:
        data = super().payload()
        data["networks"] = [{"network": pk} for pk in self.cleaned_data.get("networks") or []]
        return data

    def network_label(self, position: int) -> str:
        chosen = self.cleaned_data.get("networks") or []
        pk = chosen[position] if position < len(chosen) else None
        return self.network_names.get(pk, f"network #{position + 1}")


def host_choices(hosts: list) -> list[tuple[str, str]]:
    return [("", "— let the scheduler choose —")] + [
        (h.name, f"{h.name} ({h.state})") for h in hosts
    ]


class MigrateForm(ApiForm):
    def __init__(self, *args: Any, hosts: list | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if hosts is not None:  # cluster admins choose; members let the scheduler choose
            self.fields["host"] = LenientChoiceField(
                label="Target host", required=False, choices=host_choices(hosts)
            )


class AttachForm(ApiForm):
    """Hot-plug an interface into a running instance (`POST instances/{id}/attachments/`)."""

    always_sent = ("network",)

    network = LenientChoiceField(label="Network", required=False)
    mac = _text("MAC", help_text="Leave empty for a generated one")
    ip = _text("IP", help_text="controller networks only; leave empty for the first free")

    def __init__(self, *args: Any, networks: list | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["network"].choices = [
            (str(n.pk), f"{n} — VLAN {n.vlan} on {n.physnet}, {n.cidr}") for n in networks or []
        ]


class EventFilterForm(forms.Form):
    """GET filters of the event log."""

    kind = forms.ChoiceField(label="Kind", required=False)
    object_type = forms.ChoiceField(label="Object type", required=False)

    def __init__(self, *args: Any, tenants: list | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        kinds = sorted(v for k, v in vars(EventKind).items() if k.isupper())
        self.fields["kind"].choices = [("", "any")] + [(k, k) for k in kinds]
        types = sorted({k.split(".")[0] for k in kinds})
        self.fields["object_type"].choices = [("", "any")] + [(t, t) for t in types]
        if tenants is not None:
            self.fields["tenant"] = forms.ChoiceField(
                label="Tenant",
                required=False,
                choices=[("", "any")] + [(str(t.pk), t.name) for t in tenants],
            )


def _messages(value: Any) -> list[str]:
    if isinstance(value, list | tuple):
        return [str(v) for v in value if not isinstance(v, dict)]
    return [str(value)]


def show_api_errors(form: forms.Form, result: ApiResult) -> None:
    """Put the API's answer on the form: per-field messages where the form has the
    field, everything else (403 detail, 409 conflict, unknown fields) on the form."""
    data = result.data
    if not isinstance(data, dict):
        form.add_error(None, f"the API refused the request ({result.status})")
        return
    for field, value in data.items():
        if field == "networks" and isinstance(value, list) and isinstance(form, InstanceForm):
            _show_network_errors(form, value)
        elif field in form.fields:
            for message in _messages(value):
                form.add_error(field, message)
        elif field in ("detail", "non_field_errors"):
            for message in _messages(value):
                form.add_error(None, message)
        else:
            for message in _messages(value):
                form.add_error(None, f"{field}: {message}")


def _show_network_errors(form: InstanceForm, items: list) -> None:
    """`{"networks": [{}, {"ip": ["..."]}]}` or `{"networks": ["..."]}` (DRF shapes)."""
    for position, item in enumerate(items):
        if isinstance(item, dict):
            for key, value in item.items():
                for message in _messages(value):
                    form.add_error("networks", f"{form.network_label(position)}: {key}: {message}")
        else:
            form.add_error("networks", str(item))
