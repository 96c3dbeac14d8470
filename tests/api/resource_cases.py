"""A declarative base (NetBox style): one class per resource says how to make an object
for a tenant and what to send; the base exercises list/get/create/update/delete and
cross-tenant denial for it."""

from typing import Any, ClassVar

from tests.api.helpers import url


class ResourceCase:
    path: ClassVar[str]
    admin_only: ClassVar[bool] = False  # members get 403 on the whole collection
    member_writes: ClassVar[bool] = True  # False: members may read but get 403 on writes
    actions: ClassVar[tuple[str, ...]] = ("list", "get", "create", "update", "delete")
    delete_status: ClassVar[int] = 204

    # -- per resource ------------------------------------------------------------------
    def make(self, world, tenant) -> Any:
        """An object belonging to `tenant` (admin-only resources ignore it)."""
        raise NotImplementedError

    def create_payload(self, world) -> dict:
        raise NotImplementedError

    def update_payload(self, world, obj) -> dict:
        raise NotImplementedError

    def check_deleted(self, world, obj) -> None:
        assert not type(obj).objects.filter(pk=obj.pk).exists()

    # -- exercised for every resource --------------------------------------------------
    def owner(self, world):
        """The client expected to succeed on tenant a's objects."""
        return world.admin if self.admin_only else world.alice

    def test_list_scoped(self, world):
        mine, theirs = self.make(world, world.tenant_a), self.make(world, world.tenant_b)
        answer = world.admin.get(url(self.path))
        assert answer.status_code == 200, answer.data
        assert set(answer.data) >= {"count", "next", "previous", "results"}
        ids = {row["id"] for row in answer.data["results"]}
        assert {str(mine.pk), str(theirs.pk)} <= ids
        answer = world.alice.get(url(self.path))
        if self.admin_only:
            assert answer.status_code == 403
            return
        ids = {row["id"] for row in answer.data["results"]}
        assert str(mine.pk) in ids and str(theirs.pk) not in ids

    def test_get(self, world):
        mine, theirs = self.make(world, world.tenant_a), self.make(world, world.tenant_b)
        answer = self.owner(world).get(url(self.path, mine))
        assert answer.status_code == 200, answer.data
        assert answer.data["id"] == str(mine.pk)
        expected = 403 if self.admin_only else 404
        assert world.alice.get(url(self.path, theirs)).status_code == expected

    def test_create(self, world):
        if "create" not in self.actions:
            answer = world.admin.post(url(self.path), {}, format="json")
            assert answer.status_code == 405
            return
        payload = self.create_payload(world)
        if self.admin_only or not self.member_writes:
            assert world.alice.post(url(self.path), payload, format="json").status_code == 403
        client = world.alice if self.member_writes and not self.admin_only else world.admin
        answer = client.post(url(self.path), payload, format="json")
        assert answer.status_code == 201, answer.data
        assert answer.data["id"]

    def test_update(self, world):
        mine, theirs = self.make(world, world.tenant_a), self.make(world, world.tenant_b)
        if "update" not in self.actions:
            assert world.admin.patch(url(self.path, mine), {}, format="json").status_code == 405
            return
        payload = self.update_payload(world, mine)
        if self.admin_only or not self.member_writes:
            answer = world.alice.patch(url(self.path, mine), payload, format="json")
            assert answer.status_code == 403
        client = world.alice if self.member_writes and not self.admin_only else world.admin
        answer = client.patch(url(self.path, mine), payload, format="json")
        assert answer.status_code == 200, answer.data
        for field, value in payload.items():
            assert answer.data[field] == value
        if not self.admin_only:
            # Another tenant's object is a 404 (DESIGN.md §3), even where members may not
            # write at all: its existence is not disclosed by a 403.
            answer = world.alice.patch(url(self.path, theirs), payload, format="json")
            assert answer.status_code == 404, (answer.status_code, getattr(answer, "data", None))

    def test_delete(self, world):
        mine, theirs = self.make(world, world.tenant_a), self.make(world, world.tenant_b)
        if "delete" not in self.actions:
            assert world.admin.delete(url(self.path, mine)).status_code == 405
            return
        if not self.admin_only:
            assert world.alice.delete(url(self.path, theirs)).status_code == 404
        if self.admin_only or not self.member_writes:
            assert world.alice.delete(url(self.path, mine)).status_code == 403
        client = world.alice if self.member_writes and not self.admin_only else world.admin
        answer = client.delete(url(self.path, mine))
        assert answer.status_code == self.delete_status, getattr(answer, "data", None)
        self.check_deleted(world, mine)
