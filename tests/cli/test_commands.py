"""`ciao`'s commands against a scripted API (tests/cli/helpers.py) and a local websocket
server: --wait, name resolution in writes, output options, completion, `watch`
reconnecting, and that the CLI never imports Django."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from itertools import chain, repeat

import click
import pytest
from websockets.sync.server import serve

from ciaoweb.cli.errors import CliError, ExitCode
from ciaoweb.cli.reads import complete_names
from ciaoweb.cli.resources import NETWORK
from ciaoweb.cli.state import State
from ciaoweb.cli.watch import line, socket_url, stream, wanted
from tests.cli.helpers import CIAO, URL, FakeApi, page, run

NET = {"id": "11111111-1111-1111-1111-111111111111", "name": "data", "tenant": "t-a"}
INST_ID = "22222222-2222-2222-2222-222222222222"
OP = "33333333-3333-3333-3333-333333333333"
HOST_ID = "44444444-4444-4444-4444-444444444444"


def instance(state: str, **extra) -> dict:
    body = {"id": INST_ID, "name": "web", "state": state, "kind": "container", "attachments": []}
    return {**body, "operation": {"id": OP, "kind": "create", "state": "pending"}, **extra}


def operation(*states: str, error: str = ""):
    """GET operations/OP/: each state once, the last one for ever."""
    answers = chain(states, repeat(states[-1]))
    return lambda request: {
        "id": OP,
        "kind": "create",
        "state": next(answers),
        "step": "plug",
        "instance_name": "web",
        "error": error,
    }


def create_api(*op_states: str, error: str = "") -> FakeApi:
    return FakeApi(
        {
            ("GET", "/api/v1/networks/"): page([NET]),
            ("POST", "/api/v1/instances/"): (201, instance("pending")),
            ("GET", f"/api/v1/operations/{OP}/"): operation(*op_states, error=error),
            ("GET", f"/api/v1/instances/{INST_ID}/"): instance(
                "error" if error else "running", error=error
            ),
        }
    )


def test_create_wait_follows_the_operation_and_prints_the_running_instance(capsys):
    api = create_api("pending", "running", "succeeded")
    argv = ["instance", "create", "web", "--network", "data,ip=10.0.0.5,mac=02:00:00:00:00:01"]
    assert run(api, *argv, "--wait") == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[1].split()[:2] == ["web", "running"]
    assert "create web: succeeded" in err
    body = json.loads(api.sent("POST", "/api/v1/instances/")[0].content)
    assert body["networks"] == [
        {"network": NET["id"], "ip": "10.0.0.5", "mac": "02:00:00:00:00:01"}
    ]
    assert "tenant" not in body


def test_wait_timeout_is_exit_7_and_says_the_operation_goes_on(capsys):
    api = create_api("running")
    assert run(api, "instance", "create", "web", "--wait", "--timeout", "0.3") == 7
    assert f"ciao operation show {OP}" in capsys.readouterr().err


def test_a_failed_operation_is_exit_8_with_its_error(capsys):
    api = create_api("running", "failed", error="no VF answered")
    assert run(api, "instance", "create", "web", "--wait") == 8
    assert "create of web failed: no VF answered" in capsys.readouterr().err


def test_an_admin_without_tenant_gets_the_tenant_of_the_networks():
    api = create_api("succeeded")
    sent = []

    def create(request):
        sent.append(json.loads(request.content))
        if "tenant" not in sent[-1]:
            return 400, {"tenant": ["required: say which tenant the instance belongs to"]}
        return 201, instance("pending")

    api.routes[("POST", "/api/v1/instances/")] = create
    assert run(api, "instance", "create", "web", "--network", "data", "-o", "json") == 0
    assert [b.get("tenant") for b in sent] == [None, "t-a"]


def test_bad_network_spec_is_a_usage_error(capsys):
    assert run(FakeApi(), "instance", "create", "web", "--network", "data,vlan=5") == 2
    assert "expected mac=MAC, ip=IP or ipv6=IPV6" in capsys.readouterr().err


def test_delete_wait_ends_when_the_instance_is_gone(capsys):
    gets = chain([(200, instance("deleting"))] * 2, repeat((404, {"detail": "Not found."})))
    api = FakeApi(
        {
            ("GET", "/api/v1/instances/"): page([instance("running")]),
            ("DELETE", f"/api/v1/instances/{INST_ID}/"): (204, None),
            ("GET", f"/api/v1/instances/{INST_ID}/"): lambda request: next(gets),
            ("GET", f"/api/v1/operations/{OP}/"): operation("running"),
        }
    )
    assert run(api, "instance", "delete", "web", "--wait") == 0
    assert capsys.readouterr().out == "instance web deleted\n"


def test_evacuate_wait_follows_the_hosts_newest_evacuation(capsys):
    host = {"id": HOST_ID, "name": "node1", "state": "maintenance"}
    api = FakeApi(
        {
            ("GET", "/api/v1/hosts/"): page([host]),
            ("POST", f"/api/v1/hosts/{HOST_ID}/evacuate/"): host,
            ("GET", "/api/v1/operations/"): page([{"id": OP}]),
            ("GET", f"/api/v1/operations/{OP}/"): operation("running", "succeeded"),
            ("GET", f"/api/v1/hosts/{HOST_ID}/"): host,
        }
    )
    assert run(api, "host", "evacuate", "node1", "--wait", "-o", "json") == 0
    assert json.loads(capsys.readouterr().out)["state"] == "maintenance"
    query = api.sent("GET", "/api/v1/operations/")[0].url.params
    assert (query["host"], query["kind"]) == (HOST_ID, "evacuate")


def test_tenant_create_and_delete_by_name(capsys):
    acme = {"id": HOST_ID, "name": "acme", "created": None}
    api = FakeApi(
        {
            ("POST", "/api/v1/tenants/"): (201, acme),
            ("GET", "/api/v1/tenants/"): page([acme]),
            ("DELETE", f"/api/v1/tenants/{HOST_ID}/"): (204, None),
        }
    )
    assert run(api, "tenant", "create", "acme", "--no-headers") == 0
    assert capsys.readouterr().out.split() == ["acme", "-", HOST_ID]
    assert json.loads(api.sent("POST", "/api/v1/tenants/")[0].content) == {"name": "acme"}
    assert run(api, "tenant", "delete", "acme") == 0
    assert capsys.readouterr().out == "tenant acme deleted\n"
    assert run(api, "tenant", "delete", "acme", "-o", "json") == 0
    assert capsys.readouterr().out == ""


def test_refusals_print_each_field_on_stderr(capsys):
    body = {"cidr": ["not a valid IPv4 CIDR"], "name": ["taken"]}
    api = FakeApi({("POST", "/api/v1/networks/"): (400, body)})
    assert run(api, "network", "create", "x", "--cidr", "nope") == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        "Error: 400 Bad Request:",
        "  cidr: not a valid IPv4 CIDR",
        "  name: taken",
    ]


def test_output_options_go_before_or_after_the_command(capsys):
    api = FakeApi({("GET", "/api/v1/networks/"): page([NET])})
    assert run(api, "-o", "json", "network", "list") == 0
    assert json.loads(capsys.readouterr().out) == [NET]
    assert run(api, "network", "list", "--no-headers", "-o", "table") == 0
    assert capsys.readouterr().out.split()[0] == "data"
    assert run(api, "network", "list", "--shared", "--kind", "sriov") == 0
    assert api.requests[-2].url.params["shared"] == "true"  # the last one named tenants


def test_filters_take_names_and_send_ids():
    api = FakeApi(
        {
            ("GET", "/api/v1/hosts/"): page([{"id": HOST_ID, "name": "node1"}]),
            ("GET", "/api/v1/instances/"): page([]),
        }
    )
    assert run(api, "instance", "list", "--host", "node1", "--state", "running") == 0
    query = api.sent("GET", "/api/v1/instances/")[0].url.params
    assert (query["host"], query["state"]) == (HOST_ID, "running")


def test_login_refused_is_exit_3_and_saves_nothing(tmp_path, capsys):
    refused = {"non_field_errors": ["Unable to log in with provided credentials."]}
    api = FakeApi({("POST", "/api/v1/auth/token/"): (400, refused)})
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    assert run(api, "login", "-u", "alice", "-p", "wrong", env=env) == 3
    assert "login refused: 400 Bad Request: Unable to log in" in capsys.readouterr().err
    assert not (tmp_path / "ciao").exists()


def test_no_credentials_is_exit_3(capsys):
    assert run(FakeApi(), "network", "list", env={"CIAO_TOKEN": ""}) == 3
    assert "not logged in" in capsys.readouterr().err


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts(shell, capsys):
    assert run(FakeApi(), "completion", shell) == 0
    assert "_CIAO_COMPLETE" in capsys.readouterr().out


def test_names_complete_from_the_api_and_nothing_without_it():
    api = FakeApi({("GET", "/api/v1/networks/"): page([NET, {**NET, "name": "dmz"}])})
    state = State(env={"CIAO_URL": URL, "CIAO_TOKEN": "t"}, transport=api.transport())
    complete = complete_names(NETWORK)
    assert complete(click.Context(click.Command("x"), obj=state), None, "d") == ["data", "dmz"]
    offline = State(env={"XDG_CONFIG_HOME": "/nonexistent/ciao"})
    assert complete(click.Context(click.Command("x"), obj=offline), None, "") == []


def test_completion_answers_from_the_real_entry_point():
    env = {
        **os.environ,
        "_CIAO_COMPLETE": "bash_complete",
        "COMP_WORDS": "ciao net",
        "COMP_CWORD": "1",
    }
    done = subprocess.run([CIAO], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "plain,network" in done.stdout.splitlines()


def test_the_cli_imports_no_web_stack():
    probe = (
        "import sys, ciaoweb.cli.main;"
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'django', 'rest_framework', 'channels', 'celery', 'pyroute2', 'redis'}))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stderr


# --- watch -----------------------------------------------------------------------------------


def test_event_lines_and_type_filters():
    message = {"type": "instance.updated", "data": {"id": "i1", "name": "web", "state": "running"}}
    assert line(message).split()[1:] == ["instance.updated", "name=web", "state=running", "id=i1"]
    assert wanted("instance.updated", ["instance"]) and wanted("lease.updated", [])
    assert not wanted("lease.updated", ["instance", "host.updated"])
    assert (
        socket_url("https://c.example/ciao", "a/b") == "wss://c.example/ciao/ws/events/?token=a%2Fb"
    )


class EventServer:
    """Connection 1 sends one event and drops (1011); connection 2 sends one and then
    closes as the server does when a token expires (4401)."""

    def __init__(self, **options) -> None:
        self.connections = 0
        self.server = serve(self.handle, "127.0.0.1", 0, **options)
        self.url = f"ws://127.0.0.1:{self.server.socket.getsockname()[1]}/ws/events/?token=t"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def handle(self, ws) -> None:
        self.connections += 1
        ws.send(json.dumps({"type": "host.updated", "data": {"n": self.connections}}))
        if self.connections == 1:
            ws.close(1011, "restarting")
        else:
            ws.close(4401, "token expired")

    def close(self) -> None:
        self.server.shutdown()


def test_watch_reconnects_after_a_drop_and_stops_when_the_token_ends():
    server = EventServer()
    shown, notes = [], []
    try:
        with pytest.raises(CliError) as caught:
            stream(server.url, shown.append, notes.append, sleep=lambda seconds: None)
    finally:
        server.close()
    assert [m["data"]["n"] for m in shown] == [1, 2]
    assert caught.value.exit_code == ExitCode.AUTH and "token expired" in caught.value.message
    assert notes[0] == "watching; Ctrl-C to stop" and "reconnecting" in notes[1]
    assert notes[2].startswith("reconnected")


def test_watch_refused_at_the_handshake_is_exit_3():
    server = EventServer(process_request=lambda conn, request: conn.respond(403, "no\n"))
    try:
        with pytest.raises(CliError) as caught:
            stream(server.url, print, print, sleep=lambda seconds: None)
    finally:
        server.close()
    assert caught.value.exit_code == ExitCode.AUTH and "403" in caught.value.message
