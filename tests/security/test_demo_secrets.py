"""The demo never ships a fixed password: the local cluster's admin password and the demo
member's password are generated with `secrets` on every start, the admin command refuses a
short one, and `var/demo.json` (which holds it) is readable by its owner only."""

import ast
import stat
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from ciaoweb.localcluster import cluster as cluster_module
from ciaoweb.localcluster.cluster import ClusterConfig, LocalCluster
from ciaoweb.localcluster.seed import seed_demo


class StopAfterAdmin(Exception):
    pass


def generated_admin_password(monkeypatch, tmp_path, name: str) -> str:
    """Start a LocalCluster up to its admin step, with the simulator and every process
    replaced by stand-ins; return the password handed to `localcluster_admin`."""
    monkeypatch.setenv("CIAO_VAR_DIR", str(tmp_path))

    class FakeSim:
        state_dir = str(tmp_path)

        def hosts(self):
            return []

    import simulator

    monkeypatch.setattr(simulator.Simulator, "up", classmethod(lambda cls, *a, **k: FakeSim()))
    handed: dict[str, str] = {}

    def manage(self, *args, input_env=None):
        if args[0] == "localcluster_admin":
            handed.update(input_env or {})
            raise StopAfterAdmin
        return ""

    monkeypatch.setattr(LocalCluster, "_manage", manage)
    monkeypatch.setattr(LocalCluster, "_clear_leftovers", lambda self: None)
    monkeypatch.setattr(LocalCluster, "stop", lambda self: None)
    local = LocalCluster(ClusterConfig(name=name), progress=lambda line: None)
    with pytest.raises(StopAfterAdmin):
        local.start()
    assert handed["CIAO_ADMIN_PASSWORD"] == local.admin_password
    return local.admin_password


def test_every_cluster_gets_its_own_generated_admin_password(monkeypatch, tmp_path):
    first = generated_admin_password(monkeypatch, tmp_path, "sec1")
    second = generated_admin_password(monkeypatch, tmp_path, "sec2")
    assert first != second
    for password in (first, second):
        assert len(password) >= 16  # secrets.token_urlsafe(12): 96 random bits


def test_demo_json_is_private(tmp_path):
    local = LocalCluster(ClusterConfig(name="sec3"), progress=lambda line: None)
    local.admin_password = "generated-for-this-test"
    path = tmp_path / "demo.json"
    local.write_info(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_seeded_demo_member_password_is_generated():
    class Reply:
        status_code, content = 201, b"{}"

        def __init__(self, body):
            self.body = body

        def json(self):
            return {"id": "x", "name": self.body.get("name", "x")}

    class RecordingApi:
        def __init__(self):
            self.bodies = []

        def post(self, path, json):
            self.bodies.append(json)
            return Reply(json)

    passwords = []
    for _ in range(2):
        api = RecordingApi()
        result = seed_demo(api, progress=lambda line: None)
        sent = [b["password"] for b in api.bodies if "password" in b]
        assert sent == [result["member"]["password"]]
        passwords.append(sent[0])
    assert passwords[0] != passwords[1] and all(len(p) >= 16 for p in passwords)


@pytest.mark.django_db
def test_the_admin_command_refuses_missing_or_short_passwords(monkeypatch):
    monkeypatch.delenv("CIAO_ADMIN_PASSWORD", raising=False)
    with pytest.raises(CommandError):
        call_command("localcluster_admin", "admin")
    for short in ("", "admin", "password", "x" * 11):
        monkeypatch.setenv("CIAO_ADMIN_PASSWORD", short)
        with pytest.raises(CommandError):
            call_command("localcluster_admin", "admin")
    assert not get_user_model().objects.filter(username="admin").exists()
    monkeypatch.setenv("CIAO_ADMIN_PASSWORD", "Zq3-generated-Xw9")
    call_command("localcluster_admin", "admin")
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.check_password("Zq3-generated-Xw9")


def test_no_password_literal_in_the_launcher():
    """No `password=...`/`"password": ...` with a string constant anywhere in the demo code."""
    found = []
    files = sorted(Path(cluster_module.__file__).parent.rglob("*.py"))
    assert len(files) >= 5  # cluster, seed, processes, the management commands
    for path in files:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            pairs = []
            if isinstance(node, ast.keyword) and node.arg:
                pairs.append((node.arg, node.value))
            elif isinstance(node, ast.Dict):
                pairs += [
                    (k.value, v)
                    for k, v in zip(node.keys, node.values, strict=True)
                    if isinstance(k, ast.Constant) and isinstance(k.value, str)
                ]
            elif isinstance(node, ast.Assign):
                pairs += [(t.id, node.value) for t in node.targets if isinstance(t, ast.Name)]
            for key, value in pairs:
                if "password" in key.lower() and isinstance(value, ast.Constant) and value.value:
                    found.append(f"{path.name}:{node.lineno} {key}")
    assert found == []
