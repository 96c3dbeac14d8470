"""The dashboard and the tenant limits (issue 15): members are not offered a VLAN or an
underlay network, see the API's 403 and 409 messages on the form, and the overview shows
their own tenant's quota use."""

import pytest

from ciaoweb.networks.models import Network
from ciaoweb.tenancy.models import Tenant
from tests.dashboard.test_forms import NETWORK_FORM, api_errors, assert_shows, messages_of

pytestmark = pytest.mark.django_db


def test_the_network_form_offers_vlan_and_underlay_to_admins_only(pages):
    member = pages.alice_page.get("/networks/").content.decode()
    admin = pages.admin_page.get("/networks/").content.decode()
    assert 'name="vlan"' not in member and 'value="underlay"' not in member
    assert 'name="vlan"' in admin and 'value="underlay"' in admin


def test_a_vlan_sent_by_a_member_anyway_is_not_used(pages, settings):
    settings.CIAO_VLAN_RANGES = "physnet1:600:610"
    response = pages.alice_page.post("/networks/", {**NETWORK_FORM, "vlan": "42"})
    assert response.status_code == 302
    assert Network.objects.get(name="storage").vlan == 600  # from the tenant range


def test_a_member_asking_for_underlay_sees_the_apis_403_message(pages):
    response = pages.alice_page.post("/networks/", {**NETWORK_FORM, "ipam": "underlay"})
    assert response.status_code == 400
    assert_shows(response, ["only cluster administrators may create ipam=underlay networks"])
    assert not Network.objects.filter(name="storage").exists()


def test_an_admins_bad_vlan_shows_the_apis_field_message(pages):
    payload = {**NETWORK_FORM, "vlan": "5000", "tenant": str(pages.tenant_a.pk)}
    expected = api_errors(
        pages.admin_user,
        "/api/v1/networks/",
        {"kind": "sriov", **{k: v for k, v in payload.items() if v != ""}},
    )
    response = pages.admin_page.post("/networks/", payload)
    assert response.status_code == 400
    assert_shows(response, messages_of(expected))
    assert not Network.objects.filter(name="storage").exists()


def test_over_quota_shows_the_apis_409_message(pages):
    Tenant.objects.filter(pk=pages.tenant_a.pk).update(quota_networks=1)
    response = pages.alice_page.post("/networks/", NETWORK_FORM)
    assert response.status_code == 400
    assert_shows(response, ["quota exceeded: networks limit 1, in use 1"])


def test_the_overview_shows_the_members_own_quota_use(pages, settings):
    settings.CIAO_QUOTA_NETWORKS, settings.CIAO_QUOTA_VFS = 20, 400
    Tenant.objects.filter(pk=pages.tenant_a.pk).update(quota_instances=3)
    body = pages.alice_page.get("/").content.decode()
    assert "Quota of tenant-a" in body and "tenant-b" not in body
    assert 'aria-label="Instances: 1 of 3 allowed"' in body
    assert 'aria-label="Networks: 1 of 20 allowed"' in body
    assert 'aria-label="VFs: 1 of 400 allowed"' in body
    # bob sees tenant b's, the admin none until it selects a tenant
    assert "Quota of tenant-b" in pages.bob_page.get("/").content.decode()
    assert "Quota of" not in pages.admin_page.get("/").content.decode()
    pages.admin_page.post("/tenant/", {"tenant": str(pages.tenant_a.pk)})
    assert "Quota of tenant-a" in pages.admin_page.get("/").content.decode()
