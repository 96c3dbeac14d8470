"""Authentication hardening (docs/security.md, "Authentication hardening"): each test sends
the hostile request, asserts the refusal and that nothing changed.

- the token endpoint parses with the project's limited parsers: 100,000 `[` is a 400,
  an oversized body a 413, never a 500;
- sign-ins are throttled (the token endpoint and the dashboard's /login/): 429 with
  Retry-After, at rates read from settings when the request arrives;
- a new member's password passes Django's password validators;
- tokens expire, and die with a password change or a deactivation;
- an open websocket closes when its token is revoked or expires, its user is
  deactivated or changes password, or its membership goes;
- SQLite database files are 0600.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connections
from django.test import Client, override_settings
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from ciaoweb.core.sqlite import private_database_files
from ciaoweb.events.revocation import user_group
from ciaoweb.tenancy.api.auth import AuthTokenView
from ciaoweb.tenancy.models import Membership
from tests.api.helpers import url
from tests.security.conftest import PASSWORDS, seed_world, token_for

TOKEN_URL = "/api/v1/auth/token/"
FORM_PARSER = "ciaoweb.core.api.parsers.FormParser"
User = get_user_model()


def sign_in(username: str, password: str, client: APIClient | None = None, **extra):
    return (client or APIClient()).post(
        TOKEN_URL, {"username": username, "password": password}, format="json", **extra
    )


def with_token(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def age(token_key: str, seconds: float) -> None:
    """Make the token `seconds` older than it is (instead of waiting)."""
    token = Token.objects.get(key=token_key)
    Token.objects.filter(key=token_key).update(
        created=token.created - datetime.timedelta(seconds=seconds)
    )


# -- the token endpoint's parsers ---------------------------------------------------------


def test_the_token_endpoint_uses_the_projects_parsers():
    # The API's (size-limited) JSON parser, plus the project's form parser for sign-ins.
    names = [f"{p.__module__}.{p.__name__}" for p in AuthTokenView.parser_classes]
    assert names == [*settings.REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"], FORM_PARSER]


def test_a_deeply_nested_token_body_is_a_400_not_a_500(world):
    before = Token.objects.count()
    for raw, content_type in (
        ("[" * 100_000, "application/json"),
        ("{" * 100_000, "application/json"),
        ('{"username": ' + "[" * 100_000, "application/json"),
        ("[" * 100_000, "application/x-www-form-urlencoded"),
    ):
        answer = APIClient().post(TOKEN_URL, raw, content_type=content_type)
        assert answer.status_code == 400, (raw[:15], content_type, answer.status_code)
        assert isinstance(answer.json(), dict) and "token" not in answer.json()
    assert Token.objects.count() == before


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=64 * 1024)
def test_an_oversized_token_body_is_a_413(world):
    filler = "a" * (65 * 1024)
    before = Token.objects.count()
    for raw, content_type in (
        ('{"username": "alice", "password": "' + filler + '"}', "application/json"),
        (f"username=alice&password={filler}", "application/x-www-form-urlencoded"),
    ):
        answer = APIClient().post(TOKEN_URL, raw, content_type=content_type)
        assert answer.status_code == 413, (content_type, answer.status_code)
    assert Token.objects.count() == before


# -- throttling -----------------------------------------------------------------------------


@override_settings(CIAO_AUTH_THROTTLE="3/min", CIAO_AUTH_ADDRESS_THROTTLE="off")
def test_failed_sign_ins_are_throttled_per_address_and_username(world):
    for _ in range(3):
        assert sign_in("alice", "wrong").status_code == 400
    for password in ("wrong", PASSWORDS["alice"]):  # even the right password now
        answer = sign_in("alice", password)
        assert answer.status_code == 429, answer.content
        assert int(answer["Retry-After"]) >= 1
        assert "token" not in answer.json()
    # Another address in the X-Forwarded-For header changes nothing (no proxy of ours).
    answer = sign_in("alice", PASSWORDS["alice"], HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert answer.status_code == 429
    assert not Token.objects.filter(user=world.alice_user).exists()
    # Not a lock-out: other users, and alice from another address, still sign in.
    assert sign_in("bob", PASSWORDS["bob"]).status_code == 200
    assert sign_in("alice", PASSWORDS["alice"], REMOTE_ADDR="198.51.100.7").status_code == 200


@override_settings(CIAO_AUTH_THROTTLE="2/min", CIAO_AUTH_ADDRESS_THROTTLE="off")
def test_successful_sign_ins_do_not_count_as_failures(world):
    tokens = {sign_in("alice", PASSWORDS["alice"]).json()["token"] for _ in range(5)}
    assert len(tokens) == 1  # the same token, renewed


@override_settings(CIAO_AUTH_THROTTLE="off", CIAO_AUTH_ADDRESS_THROTTLE="4/min")
def test_every_sign_in_request_counts_per_address(world):
    assert sign_in("alice", PASSWORDS["alice"]).status_code == 200
    assert sign_in("bob", PASSWORDS["bob"]).status_code == 200
    malformed = APIClient().post(TOKEN_URL, "[" * 1000, content_type="application/json")
    assert malformed.status_code == 400
    assert sign_in("carol", "wrong").status_code == 400
    answer = sign_in("carol", PASSWORDS["carol"])
    assert answer.status_code == 429 and int(answer["Retry-After"]) >= 1
    assert not Token.objects.filter(user=world.carol_user).exists()
    # Revoking one's own token is not a sign-in.
    key = Token.objects.get(user=world.alice_user).key
    assert with_token(key).delete(TOKEN_URL).status_code == 204


@override_settings(CIAO_AUTH_THROTTLE="3/min", CIAO_AUTH_ADDRESS_THROTTLE="off")
def test_the_dashboard_login_is_throttled(world):
    client = Client()
    for _ in range(3):
        answer = client.post("/login/", {"username": "alice", "password": "wrong"})
        assert answer.status_code == 200  # the form again, with its error
    answer = client.post("/login/", {"username": "alice", "password": PASSWORDS["alice"]})
    assert answer.status_code == 429
    assert int(answer["Retry-After"]) >= 1
    assert b"Too many sign-in attempts" in answer.content
    assert "_auth_user_id" not in client.session
    # The API and the dashboard count the same failures.
    assert sign_in("alice", PASSWORDS["alice"]).status_code == 429
    other = Client()
    answer = other.post("/login/", {"username": "bob", "password": PASSWORDS["bob"]})
    assert answer.status_code == 302 and other.session["_auth_user_id"] == str(world.bob_user.pk)


@override_settings(CIAO_AUTH_THROTTLE="off", CIAO_AUTH_ADDRESS_THROTTLE="off")
def test_throttling_can_be_turned_off(world):
    for _ in range(30):
        assert sign_in("alice", "wrong").status_code == 400
    assert sign_in("alice", PASSWORDS["alice"]).status_code == 200


def test_test_clusters_turn_throttling_off_and_the_demo_keeps_it(monkeypatch):
    from ciaoweb.localcluster.cluster import ClusterConfig, LocalCluster

    monkeypatch.delenv("CIAO_AUTH_THROTTLE", raising=False)
    monkeypatch.delenv("CIAO_AUTH_ADDRESS_THROTTLE", raising=False)
    env = LocalCluster(ClusterConfig(name="thr1"), progress=lambda line: None).env()
    assert env["CIAO_AUTH_THROTTLE"] == env["CIAO_AUTH_ADDRESS_THROTTLE"] == "off"
    demo = ClusterConfig(name="thr2", sign_in_throttle=True)
    env = LocalCluster(demo, progress=lambda line: None).env()
    assert "CIAO_AUTH_THROTTLE" not in env and "CIAO_AUTH_ADDRESS_THROTTLE" not in env


# -- member passwords -----------------------------------------------------------------------


def test_a_weak_member_password_is_refused_with_the_validators_message(world):
    members = url("tenants", world.tenant_a, "members")
    users, memberships = User.objects.count(), Membership.objects.count()
    for password in ("x", "1234567"):
        body = {"username": "weakling", "password": password, "role": "member"}
        for client in (world.admin, world.carol):  # cluster admin, tenant admin
            answer = client.post(members, body, format="json")
            assert answer.status_code == 400, answer.content
            assert any("too short" in m for m in answer.json()["password"]), answer.json()
    assert User.objects.count() == users and Membership.objects.count() == memberships
    assert not User.objects.filter(username="weakling").exists()
    # The control: a password the validators accept creates the user.
    body = {"username": "strong", "password": "a-long-enough-pw", "role": "member"}
    assert world.admin.post(members, body, format="json").status_code == 201


# -- token lifetime and revocation ----------------------------------------------------------


def test_an_expired_token_is_a_401_and_a_sign_in_issues_a_new_one(world):
    key = sign_in("alice", PASSWORDS["alice"]).json()["token"]
    assert with_token(key).get(url("networks")).status_code == 200
    age(key, settings.CIAO_TOKEN_TTL + 1)
    answer = with_token(key).get(url("networks"))
    assert answer.status_code == 401
    assert "expired" in answer.json()["detail"]
    assert not Token.objects.filter(key=key).exists()
    fresh = sign_in("alice", PASSWORDS["alice"]).json()["token"]
    assert fresh != key and with_token(fresh).get(url("networks")).status_code == 200


def test_a_sign_in_renews_the_token_it_returns(world):
    key = sign_in("alice", PASSWORDS["alice"]).json()["token"]
    age(key, settings.CIAO_TOKEN_TTL - 1)  # about to expire
    assert sign_in("alice", PASSWORDS["alice"]).json()["token"] == key
    assert Token.objects.get(key=key).created > timezone.now() - datetime.timedelta(minutes=5)
    assert with_token(key).get(url("networks")).status_code == 200


@override_settings(CIAO_TOKEN_TTL=60)
def test_the_lifetime_comes_from_settings(world):
    key = sign_in("alice", PASSWORDS["alice"]).json()["token"]
    age(key, 61)
    assert with_token(key).get(url("networks")).status_code == 401


@pytest.mark.parametrize("update_fields", [None, ["password"]])
def test_a_password_change_revokes_the_users_tokens(world, update_fields):
    alice = with_token(sign_in("alice", PASSWORDS["alice"]).json()["token"])
    bob = with_token(sign_in("bob", PASSWORDS["bob"]).json()["token"])
    user = User.objects.get(pk=world.alice_user.pk)
    user.set_password("a-new-password-1")
    user.save(update_fields=update_fields)
    answer = alice.get(url("networks"))
    assert answer.status_code == 401
    assert not Token.objects.filter(user=user).exists()
    assert bob.get(url("networks")).status_code == 200  # nobody else's
    assert sign_in("alice", PASSWORDS["alice"]).status_code == 400
    assert sign_in("alice", "a-new-password-1").status_code == 200


def test_saving_a_user_without_a_password_change_keeps_its_tokens(world, settings):
    key = sign_in("alice", PASSWORDS["alice"]).json()["token"]
    user = User.objects.get(pk=world.alice_user.pk)
    user.first_name = "Alice"
    user.save()
    # Django re-hashing the same password at sign-in (here: a new preferred hasher).
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.MD5PasswordHasher",
    ]
    old_hash = User.objects.get(pk=user.pk).password
    assert sign_in("alice", PASSWORDS["alice"]).json()["token"] == key
    assert User.objects.get(pk=user.pk).password != old_hash  # it was re-hashed
    assert with_token(key).get(url("networks")).status_code == 200


def test_a_deactivated_users_tokens_are_revoked(world):
    key = sign_in("alice", PASSWORDS["alice"]).json()["token"]
    user = User.objects.get(pk=world.alice_user.pk)
    user.is_active = False
    user.save()
    assert with_token(key).get(url("networks")).status_code == 401
    assert not Token.objects.filter(user=user).exists()
    assert sign_in("alice", PASSWORDS["alice"]).status_code == 400
    # Even a token made behind the signals' back answers 401 for an inactive user.
    stray = Token.objects.create(user=user)
    assert with_token(stray.key).get(url("networks")).status_code == 401


# -- websockets -----------------------------------------------------------------------------

ORIGIN = (b"origin", b"http://testserver")
BARRIER = {"type": "test.barrier", "data": {"id": "barrier"}}


def socket(query: str = "", headers=(ORIGIN,)) -> WebsocketCommunicator:
    from ciaoweb.asgi import application

    path = "/ws/events/" + (f"?{query}" if query else "")
    return WebsocketCommunicator(application, path, headers=list(headers))


def session_cookie(user) -> tuple[bytes, bytes]:
    client = Client()
    client.force_login(user)
    return (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())


async def closed_with(comm: WebsocketCommunicator) -> int | None:
    """The close code the server ended the socket with (waits for it; fails otherwise)."""
    while True:
        output = await comm.receive_output(timeout=10)
        if output["type"] == "websocket.close":
            return output.get("code")


async def still_open(comm: WebsocketCommunicator, user) -> bool:
    """Sent after the close messages to the same user group: received in order, so a
    socket that gets it was not closed by them."""
    await get_channel_layer().group_send(
        user_group(user.pk), {"type": "ciao.event", "message": BARRIER}
    )
    return await comm.receive_json_from(timeout=10) == BARRIER


async def connected(comm: WebsocketCommunicator) -> bool:
    ok, _ = await comm.connect()
    return ok


def run(scenario) -> None:
    async def wrapped():
        try:
            await scenario()
        finally:
            await database_sync_to_async(connections.close_all)()

    asyncio.run(wrapped())


pytestmark_ws = pytest.mark.django_db(transaction=True)


@pytestmark_ws
def test_a_socket_closes_when_its_token_is_revoked():
    world = seed_world()
    key, bob_key = token_for(world.alice_user), token_for(world.bob_user)
    cookie = session_cookie(world.alice_user)

    def revoke():
        assert with_token(key).delete(TOKEN_URL).status_code == 204

    async def scenario():
        by_token, by_session = socket(f"token={key}"), socket(headers=(ORIGIN, cookie))
        bob = socket(f"token={bob_key}")
        for comm in (by_token, by_session, bob):
            assert await connected(comm)
        await database_sync_to_async(revoke)()
        assert await closed_with(by_token) == 4401
        # The session's socket and other users' stay.
        assert await still_open(by_session, world.alice_user)
        assert await still_open(bob, world.bob_user)
        assert not await connected(socket(f"token={key}"))
        for comm in (by_session, bob):
            await comm.disconnect()

    run(scenario)


@pytestmark_ws
def test_a_socket_closes_when_its_membership_is_removed():
    world = seed_world()
    key, bob_key = token_for(world.alice_user), token_for(world.bob_user)
    cookie = session_cookie(world.alice_user)

    def remove():
        Membership.objects.get(user=world.alice_user).delete()

    async def scenario():
        by_token, by_session = socket(f"token={key}"), socket(headers=(ORIGIN, cookie))
        bob = socket(f"token={bob_key}")
        for comm in (by_token, by_session, bob):
            assert await connected(comm)
        await database_sync_to_async(remove)()
        assert await closed_with(by_token) == 4403
        assert await closed_with(by_session) == 4403
        assert await still_open(bob, world.bob_user)
        await bob.disconnect()

    run(scenario)


@pytestmark_ws
def test_sockets_close_when_their_tenant_is_deleted():
    from ciaoweb.tenancy.services import add_member, create_tenant
    from tests.api.helpers import client_for

    world = seed_world()
    tenant = create_tenant("tenant-c")
    dave = add_member(tenant, "dave", "dave-password-1", "member").user
    key, bob_key = token_for(dave), token_for(world.bob_user)

    def delete_tenant():
        answer = client_for(world.admin_user).delete(url("tenants", tenant))
        assert answer.status_code == 204, answer.content

    async def scenario():
        comm, bob = socket(f"token={key}"), socket(f"token={bob_key}")
        for each in (comm, bob):
            assert await connected(each)
        await database_sync_to_async(delete_tenant)()
        assert await closed_with(comm) == 4403
        assert await still_open(bob, world.bob_user)
        await bob.disconnect()

    run(scenario)


@pytestmark_ws
@pytest.mark.parametrize("change", ["deactivate", "password"])
def test_every_socket_of_a_user_closes_when_it_is_deactivated_or_changes_password(change):
    world = seed_world()
    key = token_for(world.alice_user)
    cookie = session_cookie(world.alice_user)
    carol_key = token_for(world.carol_user)

    def act():
        user = User.objects.get(pk=world.alice_user.pk)
        if change == "deactivate":
            user.is_active = False
        else:
            user.set_password("a-new-password-1")
        user.save()

    async def scenario():
        by_token, by_session = socket(f"token={key}"), socket(headers=(ORIGIN, cookie))
        carol = socket(f"token={carol_key}")  # same tenant, another user
        for comm in (by_token, by_session, carol):
            assert await connected(comm)
        await database_sync_to_async(act)()
        assert await closed_with(by_token) == 4401
        assert await closed_with(by_session) == 4401
        assert await still_open(carol, world.carol_user)
        assert not await connected(socket(f"token={key}"))
        assert not await connected(socket(headers=(ORIGIN, cookie)))
        await carol.disconnect()

    run(scenario)


@pytestmark_ws
def test_an_expired_token_cannot_connect_and_a_socket_closes_when_its_token_expires():
    world = seed_world()
    expired, expiring = token_for(world.alice_user), token_for(world.bob_user)
    age(expired, settings.CIAO_TOKEN_TTL + 1)
    age(expiring, settings.CIAO_TOKEN_TTL - 1)  # a second left

    async def scenario():
        assert not await connected(socket(f"token={expired}"))
        assert not await database_sync_to_async(Token.objects.filter(key=expired).exists)()
        comm = socket(f"token={expiring}")
        # Refused if the second passed before it connected; else closed when it passes.
        if await connected(comm):
            assert await closed_with(comm) == 4401

    run(scenario)


# -- SQLite files ---------------------------------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_private_database_files_creates_and_tightens(tmp_path):
    fresh = tmp_path / "fresh.sqlite3"
    old = os.umask(0o022)
    try:
        private_database_files({"ENGINE": "django.db.backends.sqlite3", "NAME": str(fresh)})
        assert fresh.exists() and mode(fresh) == 0o600
        loose = tmp_path / "loose.sqlite3"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{loose}{suffix}").write_bytes(b"")
            Path(f"{loose}{suffix}").chmod(0o644)
        private_database_files({"ENGINE": "django.db.backends.sqlite3", "NAME": str(loose)})
        assert [mode(Path(f"{loose}{s}")) for s in ("", "-wal", "-shm")] == [0o600] * 3
        # Other engines and in-memory databases are left alone.
        private_database_files({"ENGINE": "django.db.backends.postgresql", "NAME": str(loose)})
        private_database_files({"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"})
    finally:
        os.umask(old)


@pytest.mark.parametrize("configured", ["default", "url"])
def test_the_sqlite_database_the_settings_name_is_0600(tmp_path, configured):
    """A real process, as the demo's are: the settings' default SQLite file under
    CIAO_VAR_DIR (or a DATABASE_URL naming one, as var/demo.sqlite3), written in WAL mode
    with the usual umask: the database and its -wal and -shm files are 0600."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(CIAO_VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="ciaoweb.settings")
    path = tmp_path / "ciaoweb.sqlite3"
    if configured == "url":
        path = tmp_path / "demo.sqlite3"
        env["DATABASE_URL"] = f"sqlite:///{path}"
    code = (
        "import os; os.umask(0o022)\n"
        "import django; django.setup()\n"
        "from django.db import connection\n"
        "with connection.cursor() as c:\n"
        "    c.execute('CREATE TABLE t (x integer)'); c.execute('INSERT INTO t VALUES (1)')\n"
        "    print(c.execute('PRAGMA journal_mode').fetchone()[0])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=Path(__file__).parents[2],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "wal"
    files = [Path(f"{path}{s}") for s in ("", "-wal", "-shm") if Path(f"{path}{s}").exists()]
    assert path in files
    assert {str(f): mode(f) for f in files} == {str(f): 0o600 for f in files}
