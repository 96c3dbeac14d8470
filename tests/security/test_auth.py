"""Authentication: revocable tokens, CSRF on cookie-authenticated writes (API and the
dashboard's login form), and no password (or hash) in any answer."""

import json
import re

from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.api.helpers import url

TOKEN_URL = "/api/v1/auth/token/"


def obtain(username: str, password: str) -> str:
    answer = APIClient().post(
        TOKEN_URL, {"username": username, "password": password}, format="json"
    )
    assert answer.status_code == 200, answer.content
    return answer.json()["token"]


def with_token(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


# -- tokens ---------------------------------------------------------------------------------


def test_a_revoked_token_is_refused_and_a_new_one_can_be_obtained(world):
    token = obtain("alice", "secret-alice-pw")
    client = with_token(token)
    assert client.get(url("networks")).status_code == 200
    assert client.delete(TOKEN_URL).status_code == 204
    assert client.get(url("networks")).status_code == 401
    assert client.delete(TOKEN_URL).status_code == 401  # revoking twice: no token any more
    assert not Token.objects.filter(key=token).exists()
    fresh = obtain("alice", "secret-alice-pw")
    assert fresh != token
    assert with_token(fresh).get(url("networks")).status_code == 200


def test_revoking_touches_only_the_callers_token(world):
    alice, bob = obtain("alice", "secret-alice-pw"), obtain("bob", "secret-bob-pw")
    assert with_token(alice).delete(TOKEN_URL).status_code == 204
    assert with_token(bob).get(url("networks")).status_code == 200


def test_revoking_needs_authentication(world):
    obtain("alice", "secret-alice-pw")
    assert APIClient().delete(TOKEN_URL).status_code == 401
    assert with_token("0" * 40).delete(TOKEN_URL).status_code == 401
    assert Token.objects.filter(user=world.alice_user).exists()


def test_wrong_passwords_get_no_token(world):
    for body in (
        {"username": "alice", "password": "wrong"},
        {"username": "alice"},
        {"username": "nobody", "password": "secret-alice-pw"},
        {"username": "alice", "password": ""},
    ):
        answer = APIClient().post(TOKEN_URL, body, format="json")
        assert answer.status_code == 400 and "token" not in answer.json(), body


# -- CSRF -----------------------------------------------------------------------------------


def csrf_client(user=None) -> tuple[Client, str]:
    """A browser-like client (CSRF enforced) with a session, and its CSRF token."""
    client = Client(enforce_csrf_checks=True)
    assert client.get("/login/").status_code == 200  # sets the csrftoken cookie
    if user is not None:
        client.force_login(user)
    return client, client.cookies["csrftoken"].value


def test_session_authenticated_api_writes_need_the_csrf_token(world):
    client, csrf = csrf_client(world.alice_user)
    body = json.dumps(
        {"name": "csrf", "kind": "sriov", "physnet": "physnet2", "cidr": "10.60.0.0/24"}
    )
    assert client.get(url("networks")).status_code == 200  # reads need no token
    answer = client.post(url("networks"), body, content_type="application/json")
    assert answer.status_code == 403 and "CSRF" in answer.json()["detail"]
    answer = client.post(
        url("networks"), body, content_type="application/json", HTTP_X_CSRFTOKEN="x" * 32
    )
    assert answer.status_code == 403
    for method in ("patch", "put", "delete"):
        answer = getattr(client, method)(
            url("networks", world.net_a), json.dumps({"mtu": 1400}), content_type="application/json"
        )
        assert answer.status_code == 403, method
    answer = client.post(
        url("instances", world.inst_a, "migrate"), "{}", content_type="application/json"
    )
    assert answer.status_code == 403
    answer = client.delete(TOKEN_URL)
    assert answer.status_code == 403
    # with the token: accepted
    answer = client.post(
        url("networks"), body, content_type="application/json", HTTP_X_CSRFTOKEN=csrf
    )
    assert answer.status_code == 201, answer.content


def test_token_authenticated_writes_need_no_csrf_token(world):
    client = Client(enforce_csrf_checks=True)
    token = obtain("alice", "secret-alice-pw")
    body = json.dumps(
        {"name": "tok", "kind": "sriov", "physnet": "physnet2", "cidr": "10.61.0.0/24"}
    )
    answer = client.post(
        url("networks"), body, content_type="application/json", HTTP_AUTHORIZATION=f"Token {token}"
    )
    assert answer.status_code == 201, answer.content


def test_the_dashboard_login_form_needs_the_csrf_token(world):
    client = Client(enforce_csrf_checks=True)
    credentials = {"username": "alice", "password": "secret-alice-pw"}
    assert client.post("/login/", credentials).status_code == 403
    assert "_auth_user_id" not in client.session
    page = client.get("/login/")
    assert page.status_code == 200
    csrf = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.content).group(1)
    answer = client.post("/login/", {**credentials, "csrfmiddlewaretoken": csrf.decode()})
    assert answer.status_code == 302, answer.status_code
    assert client.session["_auth_user_id"] == str(world.alice_user.pk)


def test_dashboard_writes_need_the_csrf_token(world):
    client, csrf = csrf_client(world.alice_user)
    answer = client.post(f"/instances/{world.inst_a.pk}/delete/")
    assert answer.status_code == 403
    world.inst_a.refresh_from_db()
    assert world.inst_a.state == "pending"


# -- passwords --------------------------------------------------------------------------------

PASSWORDS = [
    "secret-root-pw",
    "secret-alice-pw",
    "secret-bob-pw",
    "secret-carol-pw",
    "new-member-pw-1",
]
HASH_RE = re.compile(r"(md5|pbkdf2_sha256|argon2|bcrypt|scrypt)\$")


def leaks(content: bytes) -> list[str]:
    text = content.decode(errors="replace")
    found = [p for p in PASSWORDS if p in text]
    if HASH_RE.search(text) or '"password"' in text:
        found.append(text[:200])
    return found


def test_no_endpoint_returns_a_password_or_its_hash(world):
    member = {"username": "newbie", "password": "new-member-pw-1", "role": "member"}
    answer = world.admin.post(url("tenants", world.tenant_a, "members"), member, format="json")
    assert answer.status_code == 201 and leaks(answer.content) == []
    answer = APIClient().post(
        TOKEN_URL, {"username": "newbie", "password": "new-member-pw-1"}, format="json"
    )
    assert answer.status_code == 200 and leaks(answer.content) == []
    answer = APIClient().post(TOKEN_URL, {"username": "newbie", "password": "wrong"}, format="json")
    assert leaks(answer.content) == []
    schema = Client().get("/api/v1/schema/", {"format": "json"}).json()
    paths = [path for path in schema["paths"] if "{" not in path]
    ids = {
        "tenants": world.tenant_a.pk,
        "networks": world.net_a.pk,
        "instances": world.inst_a.pk,
        "hosts": world.hosts[0].pk,
    }
    for collection, pk in ids.items():
        paths.append(f"/api/v1/{collection}/{pk}/")
    paths.append(f"/api/v1/tenants/{world.tenant_a.pk}/members/")
    checked = 0
    for path in paths:
        for client in (world.admin, world.alice):
            answer = client.get(path)
            if answer.status_code == 405:
                continue
            assert leaks(answer.content) == [], path
            checked += 1
    assert checked > 20
    # The schema itself: `password` appears only in request bodies.
    with_password = {
        name: component
        for name, component in schema["components"]["schemas"].items()
        if "password" in component.get("properties", {})
    }
    assert with_password, "the token and member request bodies take a password"
    for name, component in with_password.items():
        assert name.endswith("Request"), name
        assert component["properties"]["password"].get("writeOnly") is True, name
