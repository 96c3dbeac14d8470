"""`/ws/events/` through the real ASGI application (origin check, session/token auth,
consumer) on an in-memory channel layer: a member of tenant A receives A's events and
never B's, an admin receives both plus host events, and anonymous, bad-token, revoked-token
and cross-site clients are refused. Events are produced by the real services, published
after commit as in production."""

import asyncio

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.db import connections
from django.test import Client

from ciaoweb.asgi import application
from ciaoweb.events.broadcast import ADMIN_GROUP, tenant_group
from ciaoweb.instances.services import delete_instance
from ciaoweb.inventory.services import evacuate_host
from tests.security.conftest import seed_world, token_for

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://testserver")


def session_cookie(user) -> tuple[bytes, bytes]:
    client = Client()
    client.force_login(user)
    return (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())


def communicator(query: str = "", headers=(ORIGIN,)) -> WebsocketCommunicator:
    path = "/ws/events/" + (f"?{query}" if query else "")
    return WebsocketCommunicator(application, path, headers=list(headers))


# Sent to every group after the changes: a group's messages reach each client in order,
# so a client that has its barrier has everything the changes published to it.
BARRIER = {"type": "test.barrier", "data": {"id": "barrier"}}


async def send_barrier(*tenant_ids) -> None:
    layer = get_channel_layer()
    for group in (ADMIN_GROUP, *(tenant_group(t) for t in tenant_ids)):
        await layer.group_send(group, {"type": "ciao.event", "message": BARRIER})


async def drain(comm: WebsocketCommunicator) -> list[dict]:
    """Every message the client received before its barrier."""
    messages = []
    while (message := await comm.receive_json_from(timeout=10)) != BARRIER:
        messages.append(message)
    return messages


async def close_thread_connections() -> None:
    """The consumers' database thread keeps a connection; the test database must be
    droppable at the end of the session."""
    await database_sync_to_async(connections.close_all)()


def ids_by_type(messages) -> dict[str, set]:
    seen: dict[str, set] = {}
    for message in messages:
        seen.setdefault(message["type"], set()).add(message["data"]["id"])
    return seen


def test_members_receive_their_tenants_events_only_and_admins_everything():
    world = seed_world()
    alice_token, bob_token = token_for(world.alice_user), token_for(world.bob_user)
    admin_cookie = session_cookie(world.admin_user)
    carol_cookie = session_cookie(world.carol_user)

    def changes():
        delete_instance(world.inst_a)  # instance.updated for tenant a
        delete_instance(world.inst_b)  # instance.updated for tenant b
        evacuate_host(world.hosts[0])  # host.updated, cluster-wide

    async def scenario():
        clients = {
            "alice": communicator(f"token={alice_token}"),
            "bob": communicator(f"token={bob_token}"),
            "carol": communicator(headers=(ORIGIN, carol_cookie)),  # session cookie
            "admin": communicator(headers=(ORIGIN, admin_cookie)),
        }
        for name, comm in clients.items():
            connected, code = await comm.connect()
            assert connected, (name, code)
        # A client cannot talk its way into another group: only ping is understood.
        await clients["alice"].send_json_to({"type": "subscribe", "group": "ciao.admins"})
        await clients["alice"].send_json_to(
            {"type": "ciao.event", "message": {"type": "host.updated", "data": {"id": "x"}}}
        )
        await clients["alice"].send_json_to({"type": "ping"})
        assert await clients["alice"].receive_json_from() == {"type": "pong"}
        await database_sync_to_async(changes)()
        await send_barrier(world.tenant_a.pk, world.tenant_b.pk)
        received = {name: await drain(comm) for name, comm in clients.items()}
        for comm in clients.values():
            await comm.disconnect()
        await close_thread_connections()
        return received

    received = asyncio.run(scenario())
    a, b = str(world.inst_a.pk), str(world.inst_b.pk)
    host = str(world.hosts[0].pk)
    for member, mine, theirs, tenant in (
        ("alice", a, b, world.tenant_a),
        ("carol", a, b, world.tenant_a),
        ("bob", b, a, world.tenant_b),
    ):
        seen = ids_by_type(received[member])
        assert mine in seen.get("instance.updated", set()), (member, received[member])
        everything = {i for ids in seen.values() for i in ids}
        assert theirs not in everything and host not in everything, member
        assert "host.updated" not in seen, member
        for message in received[member]:
            data = message["data"]
            owner = data.get("tenant") or (
                data.get("instance") and (a if data["instance"] == a else b)
            )
            assert owner in (str(tenant.pk), mine), (member, message)
    seen = ids_by_type(received["admin"])
    assert {a, b} <= seen.get("instance.updated", set())
    assert host in seen.get("host.updated", set())


def test_anonymous_bad_revoked_and_cross_site_clients_are_refused():
    world = seed_world()
    alice_token = token_for(world.alice_user)
    alice_cookie = session_cookie(world.alice_user)

    def revoke():
        from rest_framework.test import APIClient

        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {alice_token}")
        assert client.delete("/api/v1/auth/token/").status_code == 204

    async def refused(comm) -> bool:
        connected, _ = await comm.connect()
        if connected:
            await comm.disconnect()
        return not connected

    async def scenario():
        assert not await refused(communicator(f"token={alice_token}")), "the control connects"
        assert not await refused(communicator(headers=(ORIGIN, alice_cookie)))
        # Scripts send no Origin; only browsers do, so only a foreign Origin is hostile.
        assert not await refused(communicator(f"token={alice_token}", headers=()))
        attempts = {
            "anonymous": communicator(),
            "empty token": communicator("token="),
            "unknown token": communicator("token=" + "0" * 40),
            "garbage token": communicator("token=%27%20OR%201%3D1"),
            "NUL token": communicator("token=%00"),
            "bad session": communicator(headers=(ORIGIN, (b"cookie", b"sessionid=nope"))),
            "foreign origin with token": communicator(
                f"token={alice_token}", headers=((b"origin", b"http://evil.example"),)
            ),
            "foreign origin": communicator(
                headers=((b"origin", b"http://evil.example"), alice_cookie)
            ),
        }
        through = [name for name, comm in attempts.items() if not await refused(comm)]
        await database_sync_to_async(revoke)()
        if not await refused(communicator(f"token={alice_token}")):
            through.append("revoked token")
        await close_thread_connections()
        return through

    assert asyncio.run(scenario()) == []
