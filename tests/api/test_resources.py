"""list/get/create/update/delete and tenant isolation for every resource."""

from datetime import timedelta

from django.utils import timezone

from ciaoweb.events.models import Event
from ciaoweb.instances.choices import AttachmentState, InstanceState
from ciaoweb.instances.models import Instance
from ciaoweb.instances.services import NetworkRequest, create_instance
from ciaoweb.inventory.models import Host, PhysicalFunction, VirtualFunction
from ciaoweb.inventory.services import register_inventory
from ciaoweb.networks.models import Lease, Network
from ciaoweb.networks.services import create_network
from ciaoweb.tenancy.models import Tenant
from ciaoweb.tenancy.services import create_tenant
from tests.api.helpers import inventory
from tests.api.resource_cases import ResourceCase
from tests.worlds import provisioned

_counter = iter(range(10_000))


def unique(prefix: str) -> str:
    return f"{prefix}{next(_counter)}"


def make_instance(world, tenant) -> Instance:
    network = world.net_a if tenant == world.tenant_a else world.net_b
    return create_instance(
        tenant=tenant,
        name=unique("vm"),
        kind="container",
        networks=[NetworkRequest(network=network)],
    )


class TestTenants(ResourceCase):
    path = "tenants"
    member_writes = False

    def make(self, world, tenant):
        return tenant

    def create_payload(self, world):
        return {"name": "tenant-c"}

    def update_payload(self, world, obj):
        return {"name": "renamed"}

    def test_create_also_creates_default_network(self, world):
        answer = world.admin.post("/api/v1/tenants/", {"name": "tenant-c"}, format="json")
        tenant = Tenant.objects.get(pk=answer.data["id"])
        default = Network.objects.get(tenant=tenant, is_primary=True)
        assert (default.name, default.kind, default.ipam) == ("default", "overlay", "controller")

    def test_delete(self, world):
        tenant = create_tenant("tenant-c")
        assert world.alice.delete(f"/api/v1/tenants/{world.tenant_b.pk}/").status_code == 404
        assert world.alice.delete(f"/api/v1/tenants/{world.tenant_a.pk}/").status_code == 403
        assert world.admin.delete(f"/api/v1/tenants/{tenant.pk}/").status_code == 204
        assert not Network.objects.filter(tenant_id=tenant.pk).exists()

    def test_delete_with_instances_is_409(self, world):
        make_instance(world, world.tenant_a)
        answer = world.admin.delete(f"/api/v1/tenants/{world.tenant_a.pk}/")
        assert answer.status_code == 409
        assert "in use" in answer.data["detail"]


class TestHosts(ResourceCase):
    path = "hosts"
    admin_only = True

    def make(self, world, tenant):
        return register_inventory(unique("host"), inventory("h", {"physnet1": 1}))

    def create_payload(self, world):
        return {"name": "node9", "is_network_node": True}

    def update_payload(self, world, obj):
        return {"is_network_node": True}


class TestPhysicalFunctions(ResourceCase):
    path = "physical-functions"
    admin_only = True
    actions = ("list", "get")

    def make(self, world, tenant):
        return PhysicalFunction.objects.filter(host=world.hosts[0]).order_by("name").first()

    def test_free_vfs(self, world):
        pf = PhysicalFunction.objects.get(host=world.hosts[0], physnet="physnet1")
        assert world.admin.get(f"/api/v1/physical-functions/{pf.pk}/").data["free_vfs"] == 4

    def test_capabilities(self, world):
        pf = PhysicalFunction.objects.get(host=world.hosts[0], physnet="physnet1")
        assert world.admin.get(f"/api/v1/physical-functions/{pf.pk}/").data["capabilities"] == {}
        report = inventory(world.hosts[0].name, {"physnet1": 4, "physnet2": 2})
        report["pfs"][0]["capabilities"] = {"link_state": False, "min_tx_rate": True}
        register_inventory(world.hosts[0].name, report)
        answer = world.admin.get("/api/v1/physical-functions/", {"host": world.hosts[0].pk})
        by_name = {item["name"]: item["capabilities"] for item in answer.data["results"]}
        assert by_name[pf.name] == {"link_state": False, "min_tx_rate": True}


class TestVirtualFunctions(ResourceCase):
    path = "virtual-functions"
    admin_only = True
    actions = ("list", "get")

    def make(self, world, tenant):
        index = 0 if tenant == world.tenant_a else 1
        return VirtualFunction.objects.filter(pf__host=world.hosts[0]).order_by("index")[index]


class TestNetworks(ResourceCase):
    path = "networks"

    def make(self, world, tenant):
        return create_network(
            tenant=tenant,
            name=unique("net"),
            kind="sriov",
            physnet="physnet2",
            cidr=f"10.{next(_counter) % 250}.0.0/16",
            ipam="dynamic",
        )

    def create_payload(self, world):
        return {"name": "storage", "kind": "sriov", "physnet": "physnet2", "cidr": "10.9.0.0/24"}

    def update_payload(self, world, obj):
        return {"mtu": 9000, "dns_domain": "a.example"}

    def test_member_sees_shared_but_cannot_change_it(self, world):
        names = {n["name"] for n in world.alice.get("/api/v1/networks/").data["results"]}
        assert {"public", "data", "default"} <= names
        shared = f"/api/v1/networks/{world.shared.pk}/"
        assert world.alice.patch(shared, {"mtu": 1400}, format="json").status_code == 403
        assert world.alice.delete(shared).status_code == 403


class TestInstances(ResourceCase):
    path = "instances"
    actions = ("list", "get", "create", "delete")

    def make(self, world, tenant):
        return make_instance(world, tenant)

    def create_payload(self, world):
        return {"name": "web", "kind": "container", "networks": [{"network": str(world.net_a.pk)}]}

    def check_deleted(self, world, obj):
        obj.refresh_from_db()  # deletion is asynchronous: the agent must release first
        assert obj.state == InstanceState.DELETING


class TestAttachments(ResourceCase):
    path = "attachments"
    actions = ("list", "get", "delete")  # created by hot-plug, on its instance
    delete_status = 202

    def make(self, world, tenant):
        return provisioned(make_instance(world, tenant)).attachments.get(ifname="eth1")

    def check_deleted(self, world, obj):
        obj.refresh_from_db()  # hot-unplug is asynchronous: the agent must unplug first
        assert obj.state == AttachmentState.RELEASING


class TestLeases(ResourceCase):
    path = "leases"
    actions = ("list", "get")

    def make(self, world, tenant):
        network = world.net_a if tenant == world.tenant_a else world.net_b
        return Lease.objects.create(
            network=network,
            mac=f"02:00:00:00:00:{next(_counter) % 250:02x}",
            ip="192.168.10.50",
            hostname="guest",
            expires_at=timezone.now() + timedelta(hours=1),
        )


class TestEvents(ResourceCase):
    path = "events"
    actions = ("list", "get")

    def make(self, world, tenant):
        return Event.objects.filter(tenant=tenant).order_by("created").first()

    def test_cluster_events_are_admin_only(self, world):
        host_event = Event.objects.filter(tenant=None, object_type="host").first()
        assert world.alice.get(f"/api/v1/events/{host_event.pk}/").status_code == 404
        assert world.admin.get(f"/api/v1/events/{host_event.pk}/").status_code == 200


def test_host_admin_only_actions(world):
    host = world.hosts[0]
    assert world.alice.post(f"/api/v1/hosts/{host.pk}/evacuate/").status_code == 403
    answer = world.admin.post(f"/api/v1/hosts/{host.pk}/evacuate/")
    assert answer.status_code == 200 and answer.data["state"] == "maintenance"
    answer = world.admin.post(f"/api/v1/hosts/{host.pk}/restore/")
    assert answer.data["state"] == "online"
    assert Host.objects.get(pk=host.pk).state == "online"
