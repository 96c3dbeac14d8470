"""The CLI's parts without a server: where URL and token come from, the config file,
error messages and exit codes, tables, pagination and name resolution."""

from __future__ import annotations

import stat

import httpx
import pytest

from ciaoweb.cli import config, output
from ciaoweb.cli.client import ApiClient
from ciaoweb.cli.errors import ApiError, CliError, ExitCode, field_messages
from ciaoweb.cli.resources import INSTANCE, NETWORK, resolve
from tests.cli.helpers import URL, FakeApi, page

# --- config --------------------------------------------------------------------------------

STORED = {"url": "http://stored:8000", "token": "stored-token"}


@pytest.mark.parametrize(
    ("flags", "env", "expected"),
    [
        ((None, None), {}, ("http://stored:8000", "stored-token", "config", "config")),
        ((None, None), {"CIAO_TOKEN": "env-t"}, ("http://stored:8000", "env-t", "config", "env")),
        (
            ("http://flag:1/", "flag-t"),
            {"CIAO_URL": "http://env:2", "CIAO_TOKEN": "env-t"},
            ("http://flag:1", "flag-t", "flag", "flag"),
        ),
        (
            (None, None),
            {"CIAO_URL": "http://env:2/api/v1/", "CIAO_TOKEN": "env-t"},
            ("http://env:2", "env-t", "env", "env"),
        ),
        # The file's token belongs to the file's server, not to one named elsewhere.
        ((None, None), {"CIAO_URL": "http://env:2"}, ("http://env:2", None, "env", "")),
        (
            ("http://stored:8000/", None),
            {},
            ("http://stored:8000", "stored-token", "flag", "config"),
        ),
    ],
)
def test_flags_then_environment_then_config_file(flags, env, expected):
    found = config.resolve(*flags, env=env, stored=STORED)
    assert (found.url, found.token, found.url_source, found.token_source) == expected


def test_config_file_is_private_and_under_xdg_config_home(tmp_path):
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "HOME": str(tmp_path / "home")}
    path = config.save({"url": URL, "token": "secret"}, env)
    assert path == tmp_path / "xdg" / "ciao" / "config.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert config.load(env) == {"url": URL, "token": "secret"}
    assert config.config_path({"HOME": str(tmp_path)}) == tmp_path / ".config/ciao/config.json"
    assert config.remove(env) and not path.exists() and config.load(env) == {}


def test_a_broken_config_file_is_a_usage_error(tmp_path):
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    (tmp_path / "ciao").mkdir()
    (tmp_path / "ciao" / "config.json").write_text("{not json")
    with pytest.raises(CliError) as caught:
        config.load(env)
    assert caught.value.exit_code == ExitCode.USAGE and "config.json" in caught.value.message


# --- errors --------------------------------------------------------------------------------


def test_field_messages_name_each_field_also_nested():
    body = {
        "name": ["too long"],
        "networks": [{}, {"ip": ["not in 10.0.0.0/24"], "mac": ["taken"]}],
        "non_field_errors": ["bad pair"],
    }
    assert field_messages(body) == [
        "name: too long",
        "networks[1].ip: not in 10.0.0.0/24",
        "networks[1].mac: taken",
        "bad pair",
    ]


@pytest.mark.parametrize(
    ("status", "code"),
    [(400, 1), (401, 3), (403, 3), (404, 4), (405, 1), (409, 5), (413, 1), (500, 6), (502, 6)],
)
def test_statuses_map_to_exit_codes(status, code):
    assert ApiError(status, "", {"detail": "x"}).exit_code == code


def test_one_message_is_one_line_several_are_details():
    single = ApiError(409, "Conflict", {"detail": "quota exceeded: networks limit 1"})
    assert single.message == "409 Conflict: quota exceeded: networks limit 1"
    assert single.details == []
    several = ApiError(400, "Bad Request", {"cidr": ["bad"], "vlan": ["too big"]})
    assert several.message == "400 Bad Request:"
    assert several.details == ["cidr: bad", "vlan: too big"]


# --- output --------------------------------------------------------------------------------


class NoNames:
    def name(self, path, object_id):
        return f"<{path}:{object_id}>" if object_id else None


def test_tables_align_columns_and_show_missing_values_as_dashes():
    rows = [
        {"name": "web", "state": "running", "host_name": "node1", "attachments": [], "id": "1"},
        {
            "name": "database",
            "state": "pending",
            "host_name": None,
            "id": "2",
            "operation": {"kind": "create", "state": "running"},
            "attachments": [{"ifname": "eth0", "ip": "10.0.0.2"}],
        },
    ]
    text = output.rows_table(rows, INSTANCE.columns, NoNames())
    assert text.splitlines() == [
        "NAME      STATE    KIND  HOST   IPS            OPERATION       ID",
        "web       running  -     node1  -              -               1",
        "database  pending  -     -      eth0=10.0.0.2  create:running  2",
    ]
    assert output.rows_table(rows, INSTANCE.columns, NoNames(), headers=False).startswith("web ")


def test_cells():
    assert output.cell(True) == "yes" and output.cell(False) == "no"
    assert output.cell(None) == "-" and output.cell("") == "-" and output.cell([]) == "-"
    assert output.cell({"kind": "create", "error": None}) == "kind=create error=-"
    assert output.cell("2025-01-31T12:00:00.5Z")[:4] == "2025"  # local time, no "T"
    assert "T" not in output.cell("2025-01-31T12:00:00Z")


def test_show_lists_fields_then_sub_tables():
    net = {"id": "n1", "name": "data", "shared": False}
    text = output.object_view(net, {}, NoNames())
    assert text.splitlines() == ["id      n1", "name    data", "shared  no"]
    inst = {"name": "web", "attachments": [{"ifname": "eth1", "network": "n1", "ip": "10.0.0.5"}]}
    lines = output.object_view(inst, INSTANCE.subtables, NoNames()).splitlines()
    assert lines[:2] == ["name  web", "attachments:"]
    assert lines[2].split() == [
        "IFNAME",
        "NETWORK",
        "MAC",
        "IP",
        "SOURCE",
        "IPV6",
        "SOURCE6",
        "STATE",
        "VF",
    ]
    assert lines[3].split() == ["eth1", "<networks:n1>", "-", "10.0.0.5", "-", "-", "-", "-", "-"]


def test_json_and_yaml_are_the_objects():
    rows = [{"id": "1", "vlan": None}]
    assert output.dump(rows, "json").startswith("[\n  {")
    assert output.dump(rows, "yaml") == "- id: '1'\n  vlan: null"


# --- client --------------------------------------------------------------------------------


def client(api: FakeApi) -> ApiClient:
    return ApiClient(URL, "t", transport=api.transport())


def test_lists_follow_next_on_this_client_and_stop_at_the_limit():
    def networks(request: httpx.Request):
        number = int(request.url.params.get("page", "1"))
        assert request.url.params["kind"] == "sriov"  # filters stay on every page
        rows = [{"id": f"{number}-{i}"} for i in range(2)]
        nxt = f"kind=sriov&page={number + 1}" if number < 3 else None
        return page(rows, nxt, host="https://behind-a-proxy")

    api = FakeApi({("GET", "/api/v1/networks/"): networks})
    assert len(client(api).list("networks/", {"kind": "sriov"})) == 6
    assert {r.url.host for r in api.requests} == {"ciao.test"}
    api.requests.clear()
    assert [r["id"] for r in client(api).list("networks/", {"kind": "sriov"}, limit=3)] == [
        "1-0",
        "1-1",
        "2-0",
    ]
    assert len(api.requests) == 2


def test_transport_failures_and_non_json_answers_are_exit_6():
    def refuse(request):
        raise httpx.ConnectError("connection refused")

    with pytest.raises(CliError) as caught:
        ApiClient(URL, transport=httpx.MockTransport(refuse)).get("hosts/")
    assert caught.value.exit_code == ExitCode.UNAVAILABLE and "cannot reach" in caught.value.message

    html = httpx.MockTransport(lambda r: httpx.Response(200, text="<html>hello</html>"))
    with pytest.raises(CliError) as caught:
        ApiClient(URL, transport=html).get("hosts/")
    assert caught.value.exit_code == ExitCode.UNAVAILABLE and "not JSON" in caught.value.message

    proxy = httpx.MockTransport(lambda r: httpx.Response(502, text="<h1>Bad Gateway</h1>\n..."))
    with pytest.raises(ApiError) as caught:
        ApiClient(URL, transport=proxy).get("hosts/")
    assert caught.value.exit_code == ExitCode.UNAVAILABLE
    assert caught.value.message == "502 Bad Gateway: <h1>Bad Gateway</h1>"


# --- names ---------------------------------------------------------------------------------

DATA_A = {"id": "11111111-1111-1111-1111-111111111111", "name": "data", "tenant": "a"}
DATA_B = {"id": "22222222-2222-2222-2222-222222222222", "name": "data", "tenant": "b"}
OTHER = {"id": "33333333-3333-3333-3333-333333333333", "name": "datastore", "tenant": "a"}


def test_names_are_matched_exactly_even_when_the_server_ignores_the_filter():
    api = FakeApi({("GET", "/api/v1/networks/"): page([DATA_A, OTHER])})
    assert resolve(client(api), NETWORK, "data") == DATA_A
    assert api.requests[0].url.params["name"] == "data"
    with pytest.raises(CliError) as caught:
        resolve(client(api), NETWORK, "dat")
    assert caught.value.exit_code == ExitCode.NOT_FOUND
    assert caught.value.message == "no network named 'dat'"


def test_a_name_several_objects_share_is_a_usage_error_listing_their_ids():
    api = FakeApi({("GET", "/api/v1/networks/"): page([DATA_A, DATA_B])})
    with pytest.raises(CliError) as caught:
        resolve(client(api), NETWORK, "data")
    assert caught.value.exit_code == ExitCode.USAGE
    assert DATA_A["id"] in caught.value.message and "--tenant" in caught.value.message
    assert resolve(client(api), NETWORK, "data", where=lambda n: n["tenant"] == "b") == DATA_B


def test_ids_are_fetched_and_an_unknown_one_is_not_found():
    api = FakeApi({("GET", f"/api/v1/networks/{DATA_A['id']}/"): DATA_A})
    assert resolve(client(api), NETWORK, DATA_A["id"]) == DATA_A
    with pytest.raises(CliError) as caught:
        resolve(client(api), NETWORK, DATA_B["id"])
    assert caught.value.exit_code == ExitCode.NOT_FOUND
    assert caught.value.message == f"network {DATA_B['id']} not found"


def test_dual_stack_networks_and_attachments_show_their_ipv6():
    networks = [
        {"name": "web", "cidr": "10.1.0.0/24", "ipv6_cidr": "fd00:1::/64", "ipv6_mode": "slaac"},
        {"name": "old", "cidr": "10.2.0.0/24", "ipv6_cidr": "", "ipv6_mode": ""},
    ]
    text = output.rows_table(networks, NETWORK.columns, NoNames()).splitlines()
    ipv6 = text[0].split().index("IPV6")
    assert text[1].split()[ipv6 : ipv6 + 2] == ["fd00:1::/64", "(slaac)"]
    assert text[2].split()[ipv6] == "-"
    attachment = {
        "ifname": "eth1",
        "ip": "10.1.0.5",
        "ipv6": "fd00:1::5054:ff:fe12:3456",
        "ipv6_source": "slaac",
    }
    instance = {"name": "web", "attachments": [attachment]}
    row = output.rows_table([instance], INSTANCE.columns, NoNames()).splitlines()[1]
    assert "eth1=10.1.0.5 eth1=fd00:1::5054:ff:fe12:3456" in row
    lines = output.object_view(instance, INSTANCE.subtables, NoNames()).splitlines()
    assert lines[3].split()[5:7] == ["fd00:1::5054:ff:fe12:3456", "slaac"]
