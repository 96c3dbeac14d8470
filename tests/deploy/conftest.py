"""What the deployment tests share: the files under deploy/, an environment built from the
example env files (only their placeholders replaced), and a Redis with TLS and the ACL
file deploy/broker_acl.py renders from those env files.

Every process runs with that environment alone (plus PATH), as a unit would: nothing of
the test run's own environment (DJANGO_SETTINGS_MODULE, DATABASE_URL...) leaks in.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import importlib.util
import ipaddress
import os
import secrets
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
UNITS = DEPLOY / "systemd"
VENV_BIN = Path(sys.executable).parent
# Where the units expect the deployment's virtualenv (docs/deploy.md).
INSTALL_BIN = "/opt/ciaoweb/bin/"
# The settings must not need the database for what these tests do: a port nobody serves
# makes any connection attempt fail loudly.
NEVER_CONNECTED_DB = "postgres://ciaoweb:unused-password@127.0.0.1:1/ciaoweb"
# Imported by these tests' subprocesses to make the web stack unimportable.
WEB_STACK = (
    "django",
    "rest_framework",
    "channels",
    "channels_redis",
    "daphne",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "whitenoise",
    "dj_database_url",
    "psycopg",
)


def without(modules: set[str] | tuple[str, ...]) -> str:
    """Code that makes these top-level modules unimportable, as if not installed: the
    first lines of a subprocess' script."""
    return f"""
import importlib.abc, sys
class _NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {sorted(modules)!r}:
            raise ModuleNotFoundError(f"not installed: {{name}}", name=name)
        return None
sys.meta_path.insert(0, _NotInstalled())
"""


NO_WEB_STACK = without(WEB_STACK)
OURS = {"ciaoweb", "simulator"}  # this distribution's own packages


def base_closure() -> set[str]:
    """The distributions `pip install ciaoweb` brings: the base requirements and theirs."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    wanted = [Requirement(r) for r in importlib.metadata.requires("ciaoweb")]
    wanted = [r for r in wanted if r.marker is None]
    seen: set[str] = set()
    while wanted:
        requirement = wanted.pop()
        name = canonicalize_name(requirement.name)
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = importlib.metadata.requires(requirement.name) or []
        except importlib.metadata.PackageNotFoundError:
            continue  # for another platform or Python: not installed here either
        for text in requires:
            sub = Requirement(text)
            extras = {"", *requirement.extras}
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in extras):
                wanted.append(sub)
    return seen


def outside_the_base_install() -> set[str]:
    """Top-level modules of this environment that `pip install ciaoweb` would not bring."""
    from packaging.utils import canonicalize_name

    closure = base_closure()
    return {
        module
        for module, owners in importlib.metadata.packages_distributions().items()
        if module not in OURS
        and module not in sys.stdlib_module_names
        and not {canonicalize_name(d) for d in owners} & closure
    }


def _load_broker_acl():
    spec = importlib.util.spec_from_file_location("deploy_broker_acl", DEPLOY / "broker_acl.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


broker_acl = _load_broker_acl()


def read_example(name: str) -> dict[str, str]:
    return broker_acl.read_env_file(DEPLOY / name)


def base_env(**values: str) -> dict[str, str]:
    """What a unit's process gets besides its env files."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", **values}


def production_env(var_dir: Path, role: str = "web", **overrides: str) -> dict[str, str]:
    """ciaoweb.env.example + <role>.env.example, with a key of its own for each placeholder
    key, the never-connected database and `var_dir`."""
    env = base_env(**read_example("ciaoweb.env.example"), **read_example(f"{role}.env.example"))
    env.update(
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        CIAO_CONTROL_KEY=secrets.token_hex(32),
        DATABASE_URL=NEVER_CONNECTED_DB,
        CIAO_VAR_DIR=str(var_dir),
    )
    env.update(overrides)
    return {k: v for k, v in env.items() if v is not None}


def run_python(
    code: str, env: dict[str, str], *args: str, timeout: float = 120
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# --- unit files -----------------------------------------------------------------------


def parse_unit(path: Path) -> dict[str, list[tuple[str, str]]]:
    """A systemd unit file as {section: [(key, value), ...]}: keys may repeat
    (ExecStart, EnvironmentFile), `#`/`;` start comments, a trailing backslash continues."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    pending = ""
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = (pending + " " + raw.strip()) if pending else raw.strip()
        pending = ""
        if not line or line.startswith(("#", ";")):
            continue
        if line.endswith("\\"):
            pending = line[:-1].strip()
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        key, sep, value = line.partition("=")
        assert sep and current is not None, f"{path.name}:{number}: not key=value in a section"
        current.append((key.strip(), value.strip()))
    return sections


def values(unit: dict[str, list[tuple[str, str]]], section: str, key: str) -> list[str]:
    return [v for k, v in unit.get(section, []) if k == key]


@dataclass
class Unit:
    path: Path
    sections: dict[str, list[tuple[str, str]]]

    @property
    def name(self) -> str:
        return self.path.name

    def get(self, key: str, section: str = "Service") -> list[str]:
        return values(self.sections, section, key)

    def env(self) -> dict[str, str]:
        """Its EnvironmentFile= values, each read from the example that stands for it."""
        env: dict[str, str] = {}
        for path in self.get("EnvironmentFile"):
            env.update(read_example(example_of(path.lstrip("-")).name))
        return env

    def argv(self, command: str, instance: str = "8001", host: str = "ctl1") -> list[str]:
        """One ExecStart as the process sees it: systemd's specifiers and its
        environment variables (${VAR} one word, $VAR split on spaces) replaced."""
        env = self.env()
        words = []
        for word in shlex.split(command.lstrip("-@:+!")):
            word = word.replace("%i", instance).replace("%H", host)
            if word.startswith("$") and not word.startswith("${"):
                words += env.get(word[1:], "").split()
                continue
            for name, value in env.items():
                word = word.replace("${" + name + "}", value)
            assert "$" not in word, f"{self.name}: {word} names a variable no env file sets"
            words.append(word)
        return words


def example_of(path: str) -> Path:
    """/etc/ciaoweb/web.env -> deploy/web.env.example (the file an operator copies)."""
    return DEPLOY / (Path(path).name + ".example")


def units() -> list[Unit]:
    return [Unit(p, parse_unit(p)) for p in sorted(UNITS.iterdir()) if p.suffix != ".md"]


def unit(name: str) -> Unit:
    return Unit(UNITS / name, parse_unit(UNITS / name))


# --- a Redis with TLS and the deployment's ACL ----------------------------------------------


def _certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A private CA and a server certificate for 127.0.0.1 signed by it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def build(subject: str, key, issuer: str, issuer_key, ca: bool) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key, server_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    ca = build("ciao test CA", ca_key, "ciao test CA", ca_key, ca=True)
    server = build("127.0.0.1", server_key, "ciao test CA", ca_key, ca=False)
    paths = directory / "ca.crt", directory / "redis.crt", directory / "redis.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    paths[2].chmod(0o600)
    return paths


@dataclass
class TlsBroker:
    """The deployment's Redis: its env files (the examples, pointed at it), its CA."""

    port: int
    ca: Path
    etc: Path  # web.env, controller.env, ciaoweb.env as an operator writes them
    acl: Path
    node: str
    credential: Path
    process: object

    def env_file(self, role: str) -> dict[str, str]:
        return broker_acl.read_env_file(self.etc / f"{role}.env")

    def url(self, role: str, variable: str = "REDIS_URL") -> str:
        return self.env_file(role)[variable]

    def agent_url(self) -> str:
        """The agent example's broker_url, pointed at this Redis (no user: the agent adds
        its own from the credential)."""
        return f"rediss://127.0.0.1:{self.port}/0?ssl_cert_reqs=required&ssl_ca_certs={self.ca}"


def _as_operator_writes(example: str, port: int, ca: Path) -> str:
    """The example env file with its placeholders replaced: each password its own, the
    broker this one."""
    text = (DEPLOY / example).read_text()
    for user in ("web", "controller", "cache"):
        text = text.replace(f"change-me-{user}-password", secrets.token_hex(16))
    return text.replace("redis.example.com:6380", f"127.0.0.1:{port}").replace(
        "/etc/ciaoweb/redis-ca.crt", str(ca)
    )


@pytest.fixture(scope="session")
def tls_broker(tmp_path_factory) -> Iterator[TlsBroker]:
    import redis

    from ciaoweb.core.credentials import Credential, new_secret
    from ciaoweb.localcluster.broker import free_port
    from ciaoweb.localcluster.processes import ManagedProcess
    from tests.prereqs import require

    require(("redis-server",), "the deployment's broker tests")
    root = tmp_path_factory.mktemp("tls-broker")
    port = free_port()
    ca, cert, key = _certificates(root)
    etc = root / "etc"
    etc.mkdir()
    for role in ("web", "controller", "ciaoweb"):
        (etc / f"{role}.env").write_text(_as_operator_writes(f"{role}.env.example", port, ca))
    node = read_example("agent.env.example")["CIAO_NODE"]  # the unit's --node
    credential = Credential(node, new_secret()).write(root / "credential.json")
    acl = root / "users.acl"
    acl.write_text(
        broker_acl.users_file([etc / "web.env", etc / "controller.env", etc / "ciaoweb.env"])
        + broker_acl.agent_line(credential)
    )
    conf = root / "redis.conf"
    conf.write_text(
        "\n".join(
            [
                "port 0",
                f"tls-port {port}",
                "bind 127.0.0.1",
                f"tls-cert-file {cert}",
                f"tls-key-file {key}",
                f"tls-ca-cert-file {ca}",
                "tls-auth-clients no",
                f"aclfile {acl}",
                "databases 1",
                'save ""',
                "appendonly no",
                f"dir {root}",
                "daemonize no",
                'logfile ""',
                "set-proc-title no",
            ]
        )
        + "\n"
    )
    process = ManagedProcess("redis", [shutil.which("redis-server"), str(conf)], base_env(), root)
    process.start()
    broker = TlsBroker(port, ca, etc, acl, node, credential, process)
    client = redis.Redis.from_url(broker.url("web"), socket_timeout=2)
    deadline = time.monotonic() + 15
    try:
        while True:
            assert process.alive(), f"redis-server exited:\n{process.log_tail()}"
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, f"no answer:\n{process.log_tail()}"
                time.sleep(0.05)
    finally:
        client.close()
    try:
        yield broker
    finally:
        process.stop()
