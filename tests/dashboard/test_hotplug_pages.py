"""The instance page's hot-plug forms, server side: they post through the API's own
actions (its refusals shown as messages), list only networks the instance may use, and
another tenant's instance or interface is a 404."""

import pytest
from django.urls import reverse

from ciaoweb.operations.models import Operation
from tests.worlds import provisioned

pytestmark = pytest.mark.django_db


def test_attach_and_detach_through_the_page(pages):
    instance = provisioned(pages.inst_a)
    detail = reverse("dashboard:instance-detail", args=[instance.pk])
    page = pages.alice_page.get(detail).content.decode()
    # the shared network may be attached; tenant b's and the one it has may not
    assert str(pages.shared.pk) in page and str(pages.net_b.pk) not in page
    attach = reverse("dashboard:instance-attach", args=[instance.pk])
    answer = pages.alice_page.post(attach, {"network": str(pages.shared.pk)}, follow=True)
    assert "Interface eth2 is being plugged into web-a." in answer.content.decode()
    eth2 = instance.attachments.get(ifname="eth2")
    assert Operation.objects.filter(kind="attach", attachment=eth2).exists()
    # one operation at a time: the API's 409 is the page's message
    detach = reverse("dashboard:attachment-detach", args=[instance.pk, eth2.pk])
    answer = pages.alice_page.post(detach, follow=True)
    assert "Could not detach eth2" in answer.content.decode()
    assert "in progress" in answer.content.decode()


def test_eth0_has_no_detach_button_and_its_refusal_is_shown(pages):
    instance = provisioned(pages.inst_a)
    eth0, eth1 = instance.attachments.get(ifname="eth0"), instance.attachments.get(ifname="eth1")
    page = pages.alice_page.get(reverse("dashboard:instance-detail", args=[instance.pk]))
    html = page.content.decode()
    assert reverse("dashboard:attachment-detach", args=[instance.pk, eth1.pk]) in html
    assert reverse("dashboard:attachment-detach", args=[instance.pk, eth0.pk]) not in html
    answer = pages.alice_page.post(
        reverse("dashboard:attachment-detach", args=[instance.pk, eth0.pk]), follow=True
    )
    assert "primary overlay interface" in answer.content.decode()


def test_another_tenants_instance_and_interface_are_404(pages):
    theirs = provisioned(pages.inst_b)
    attach = reverse("dashboard:instance-attach", args=[theirs.pk])
    assert pages.alice_page.post(attach, {"network": str(pages.shared.pk)}).status_code == 404
    eth1 = theirs.attachments.get(ifname="eth1")
    detach = reverse("dashboard:attachment-detach", args=[theirs.pk, eth1.pk])
    assert pages.alice_page.post(detach).status_code == 404
    assert not Operation.objects.filter(kind__in=("attach", "detach")).exists()
