"""Instance lifecycle through the API: attachments, IPs, VFs, hooks and events."""

from ciaoweb import taskrouting as names
from ciaoweb.events.models import Event
from ciaoweb.instances.models import Attachment, Instance
from ciaoweb.instances.services import finalize_instance_deletion
from ciaoweb.inventory.models import VirtualFunction
from ciaoweb.networks.ipam import dhcp_reservations
from ciaoweb.networks.models import IPAllocation, Lease, Network
from ciaoweb.networks.services import create_network
from ciaoweb.operations.models import Operation
from tests.api.helpers import url
from tests.worlds import provisioned


def create(world, client=None, **payload):
    body = {"name": "web", "kind": "container", **payload}
    return (client or world.alice).post(url("instances"), body, format="json")


def test_create_attaches_default_overlay_as_eth0(
    world, django_capture_on_commit_callbacks, dispatched
):
    with django_capture_on_commit_callbacks(execute=True):
        answer = create(world, networks=[{"network": str(world.net_a.pk)}])
    assert answer.status_code == 201, answer.data
    data = answer.data
    assert data["state"] == "pending" and data["netns"] == "ciao-tenant-a-web"
    eth0, eth1 = data["attachments"]
    default = Network.objects.get(tenant=world.tenant_a, is_primary=True)
    assert (eth0["ifname"], eth0["network"], eth0["ip"]) == ("eth0", default.pk, "10.0.0.2")
    assert (eth1["ifname"], eth1["ip"], eth1["ip_source"]) == ("eth1", "192.168.10.2", "controller")
    assert eth0["vf"] is None and eth1["vf"] is not None
    vf = VirtualFunction.objects.get(pk=eth1["vf"])
    assert (vf.state, vf.mac, vf.vlan) == ("reserved", eth1["mac"], 100)
    operation = Operation.objects.get(instance=Instance.objects.get(), kind="create")
    assert (names.ADVANCE_OPERATION, (operation.pk,)) in dispatched
    kinds = set(Event.objects.values_list("kind", flat=True))
    assert {"instance.created", "attachment.created"} <= kinds


def test_macs_are_locally_administered_unicast(world):
    data = create(world, networks=[{"network": str(world.net_a.pk)}]).data
    for attachment in data["attachments"]:
        first = int(attachment["mac"][:2], 16)
        assert first & 0x02 and not first & 0x01


def test_ip_sources_per_ipam(world):
    dynamic = create_network(
        tenant=world.tenant_a,
        name="dyn",
        kind="sriov",
        physnet="physnet1",
        cidr="10.1.0.0/24",
        ipam="dynamic",
    )
    underlay = create_network(
        tenant=world.tenant_a,
        name="under",
        kind="sriov",
        physnet="physnet2",
        cidr="10.2.0.0/24",
        ipam="underlay",
    )
    nets = [{"network": str(dynamic.pk)}, {"network": str(underlay.pk)}]
    container = create(world, networks=nets).data["attachments"]
    vm = create(world, name="vm", kind="vm", networks=nets).data["attachments"]
    assert [(a["ip"], a["ip_source"]) for a in container[1:]] == [
        (None, "dhcp"),
        (None, "underlay"),
    ]
    assert [(a["ip"], a["ip_source"]) for a in vm[1:]] == [(None, "dhcp"), (None, "unknown")]


def test_requested_ip_and_mac_are_honoured(world):
    entry = {"network": str(world.net_a.pk), "ip": "192.168.10.77", "mac": "02:11:22:33:44:55"}
    eth1 = create(world, networks=[entry]).data["attachments"][1]
    assert (eth1["ip"], eth1["mac"]) == ("192.168.10.77", "02:11:22:33:44:55")


def test_all_vfs_come_from_one_host_and_load_spreads(world):
    second = create_network(
        tenant=world.tenant_a, name="data2", kind="sriov", physnet="physnet2", cidr="10.3.0.0/24"
    )
    nets = [{"network": str(world.net_a.pk)}, {"network": str(second.pk)}]
    hosts = []
    for name in ("a1", "a2"):
        data = create(world, name=name, networks=nets).data
        vf_hosts = {
            VirtualFunction.objects.get(pk=a["vf"]).pf.host_id for a in data["attachments"][1:]
        }
        assert vf_hosts == {data["host"]}
        hosts.append(data["host"])
    assert len(set(hosts)) == 2  # the second went to the less loaded host


def test_capacity_exhaustion_is_409(world):
    second = create_network(
        tenant=world.tenant_a, name="data2", kind="sriov", physnet="physnet2", cidr="10.3.0.0/24"
    )
    nets = [{"network": str(second.pk)}]
    for i in range(4):  # 2 hosts x 2 physnet2 VFs
        assert create(world, name=f"w{i}", networks=nets).status_code == 201
    answer = create(world, name="w4", networks=nets)
    assert answer.status_code == 409
    assert (
        answer.data["detail"] == "no capacity: no online host has 1 free VF(s) on physnet physnet2"
    )


def test_ip_exhaustion_is_409(world):
    tiny = create_network(
        tenant=world.tenant_a, name="tiny", kind="sriov", physnet="physnet1", cidr="10.4.0.0/30"
    )
    # /30: .1 gateway, .2 DHCP server -> nothing left for instances
    answer = create(world, networks=[{"network": str(tiny.pk)}])
    assert answer.status_code == 409 and answer.data["detail"].startswith("no capacity: no free IP")


def test_delete_then_finalize_frees_everything(
    world, django_capture_on_commit_callbacks, dispatched
):
    data = create(world, networks=[{"network": str(world.net_a.pk)}]).data
    with django_capture_on_commit_callbacks(execute=True):
        assert world.alice.delete(url("instances", data["id"])).status_code == 204
    operation = Operation.objects.get(instance=Instance.objects.get(), kind="delete")
    assert (names.ADVANCE_OPERATION, (operation.pk,)) in dispatched
    assert world.alice.get(url("instances", data["id"])).data["state"] == "deleting"
    assert finalize_instance_deletion(data["id"]) is True
    assert finalize_instance_deletion(data["id"]) is False  # idempotent
    assert not Attachment.objects.exists()
    assert not IPAllocation.objects.filter(purpose="attachment").exists()
    assert VirtualFunction.objects.get(pk=data["attachments"][1]["vf"]).state == "free"
    # the same name, IP and MAC can be used again
    entry = {
        "network": str(world.net_a.pk),
        "ip": data["attachments"][1]["ip"],
        "mac": data["attachments"][1]["mac"],
    }
    assert create(world, networks=[entry]).status_code == 201


def test_deleting_instance_loses_its_dhcp_reservation_at_once(world):
    """The server refresh sent with the deletion must drop the reservation: nothing
    refreshes the server when the rows finally go."""
    data = create(world, networks=[{"network": str(world.net_a.pk)}]).data
    mac = data["attachments"][1]["mac"]
    assert mac in {r["mac"] for r in dhcp_reservations(world.net_a)}
    assert world.alice.delete(url("instances", data["id"])).status_code == 204
    assert mac not in {r["mac"] for r in dhcp_reservations(world.net_a)}


def test_finalize_releases_the_attachments_leases(world):
    """The VF was reset: no client with that MAC can renew, so its lease ends now."""
    data = create(world, networks=[{"network": str(world.net_a.pk)}]).data
    eth1 = data["attachments"][1]
    attachment = Attachment.objects.get(pk=eth1["id"])
    lease = Lease.objects.create(
        network=world.net_a, mac=eth1["mac"], ip=eth1["ip"], state="active", attachment=attachment
    )
    other = Lease.objects.create(
        network=world.net_a, mac="02:00:00:00:99:01", ip="192.168.10.99", state="active"
    )
    assert finalize_instance_deletion(data["id"]) is True
    lease.refresh_from_db()
    other.refresh_from_db()
    assert (lease.state, lease.attachment) == ("released", None)
    assert other.state == "active"
    assert Event.objects.filter(
        object_type="lease", object_id=lease.pk, kind="lease.updated"
    ).exists()


def test_migrate(world, django_capture_on_commit_callbacks, dispatched):
    data = create(world, networks=[{"network": str(world.net_a.pk)}]).data
    answer = world.alice.post(url("instances", data["id"], "migrate"), {}, format="json")
    assert answer.status_code == 409 and "pending" in answer.data["detail"]
    Instance.objects.filter(pk=data["id"]).update(state="running")
    answer = world.alice.post(url("instances", data["id"], "migrate"), {}, format="json")
    assert answer.status_code == 409 and "in progress: create" in answer.data["detail"]
    provisioned(Instance.objects.get(pk=data["id"]))
    assert (
        world.alice.post(
            url("instances", data["id"], "migrate"), {"host": "node2"}, format="json"
        ).status_code
        == 403
    )
    answer = world.admin.post(
        url("instances", data["id"], "migrate"), {"host": "nowhere"}, format="json"
    )
    assert answer.status_code == 400 and "does not exist" in str(answer.data["host"])
    answer = world.admin.post(
        url("instances", data["id"], "migrate"), {"host": data["host"]}, format="json"
    )
    assert answer.status_code == 400 and "already runs" in answer.data["host"][0]
    with django_capture_on_commit_callbacks(execute=True):
        answer = world.alice.post(url("instances", data["id"], "migrate"), {}, format="json")
    assert answer.status_code == 202 and answer.data["state"] == "migrating"
    migration = Operation.objects.get(instance_id=data["id"], kind="migrate")
    assert dispatched[-1] == (names.ADVANCE_OPERATION, (migration.pk,))
    assert migration.target_host_id is not None and str(migration.target_host_id) != str(
        data["host"]
    )


def test_filters(world):
    create(world, name="one", networks=[{"network": str(world.net_a.pk)}])
    create(world, name="two")
    instance = Instance.objects.get(name="one")
    rows = world.alice.get(url("attachments"), {"instance": str(instance.pk)}).data["results"]
    assert {r["ifname"] for r in rows} == {"eth0", "eth1"}
    rows = world.alice.get(url("attachments"), {"network": str(world.net_a.pk)}).data["results"]
    assert len(rows) == 1
    assert world.alice.get(url("instances"), {"state": "pending"}).data["count"] == 2
    assert world.alice.get(url("instances"), {"state": "running"}).data["count"] == 0
    assert world.alice.get(url("networks"), {"kind": "overlay"}).data["count"] == 1
    assert world.alice.get(url("networks"), {"ipam": "dynamic"}).data["count"] == 0
    assert world.alice.get(url("events"), {"kind": "instance.created"}).data["count"] == 2
    assert world.alice.get(url("instances"), {"state": "bogus"}).status_code == 400


def test_members_endpoint(world):
    members = url("tenants", world.tenant_a, "members")
    payload = {"username": "carol", "password": "pw-carol-1", "role": "member"}
    assert world.alice.post(members, payload, format="json").status_code == 403
    assert world.admin.post(members, payload, format="json").status_code == 201
    world.alice_user.memberships.update(role="admin")
    del world.alice_user._ciao_membership
    answer = world.alice.post(members, {**payload, "username": "dave"}, format="json")
    assert answer.status_code == 201 and answer.data["role"] == "member"
    # bob is tenant b's: a tenant admin hears only that the name is taken, not where
    # (tests/security/test_not_yours.py); a cluster admin is told.
    answer = world.alice.post(members, {**payload, "username": "bob"}, format="json")
    assert answer.status_code == 400 and "is taken" in answer.data["username"][0]
    answer = world.admin.post(
        url("tenants", world.tenant_a, "members"), {**payload, "username": "bob"}, format="json"
    )
    assert answer.status_code == 400 and "already belongs" in answer.data["username"][0]
    answer = world.alice.post(members, {**payload, "username": "root"}, format="json")
    assert answer.status_code == 400


def test_token_auth_and_schema(world, client):
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_user("erin", password="pw-erin-123")
    answer = client.post(
        "/api/v1/auth/token/",
        {"username": "erin", "password": "pw-erin-123"},
        content_type="application/json",  # the API parses JSON (and, here, forms), not multipart
    )
    assert answer.status_code == 200 and answer.json()["token"]
    headers = {"Authorization": f"Token {answer.json()['token']}"}
    assert client.get("/api/v1/networks/", headers=headers).status_code == 200
    assert client.get("/api/v1/networks/").status_code in (401, 403)
    schema = client.get("/api/v1/schema/", headers={**headers, "Accept": "application/json"})
    assert schema.status_code == 200
    assert client.get("/api/v1/docs/", headers=headers).status_code == 200


def test_websocket_notifications_use_rest_representation(world, published):
    create(world, networks=[{"network": str(world.net_a.pk)}])
    types = [m[0] for m in published]
    assert "instance.updated" in types and "attachment.updated" in types
    instance_message = next(m for m in published if m[0] == "instance.updated")
    assert instance_message[1] == world.tenant_a.pk
    assert instance_message[2]["name"] == "web" and len(instance_message[2]["attachments"]) == 2
