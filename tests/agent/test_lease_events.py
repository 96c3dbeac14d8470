"""A network node forwards its servers' lease events (DhcpServers.lease_events): a
server's directory removed under the reader (its network deleted while its last event
was being reported) must not stop the events of every other server. It did: the
generator raised, the agent's lease thread ended, and no lease was recorded any more."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

from ciaoweb.agent.cnci import DhcpServers
from ciaoweb.agent.dhcp import events
from ciaoweb.agent.dhcp.hooks import STDLIB_ONLY, hook_source


def _event(directory: Path, mac: str) -> None:
    directory.mkdir(exist_ok=True)
    line = {"action": "add", "mac": mac, "ip": "10.0.0.5", "time": 1.0}
    with open(directory / "events.jsonl", "a") as fh:
        fh.write(json.dumps(line) + "\n")


def test_a_removed_server_directory_does_not_stop_the_others(tmp_path):
    servers = DhcpServers(str(tmp_path), driver=None, runtime=None, overlay=None)
    gone, kept = tmp_path / "dhcp-aaaa", tmp_path / "dhcp-bbbb"
    _event(gone, "02:00:00:00:00:01")
    stop = threading.Event()
    stream = servers.lease_events(stop)
    assert next(stream)["mac"] == "02:00:00:00:00:01"
    shutil.rmtree(gone)  # while the event is being reported
    _event(kept, "02:00:00:00:00:02")
    assert next(stream)["mac"] == "02:00:00:00:00:02"
    _event(kept, "02:00:00:00:00:03")
    assert next(stream)["mac"] == "02:00:00:00:00:03"
    stop.set()


def test_a_file_removed_between_stat_and_open_reads_as_nothing(tmp_path, monkeypatch):
    path = tmp_path / "events.jsonl"
    _event(tmp_path, "02:00:00:00:00:01")
    reader = events.LeaseEventReader(path)

    def vanished(*args, **kwargs):
        raise FileNotFoundError(path)

    monkeypatch.setattr(events, "open", vanished, raising=False)
    assert reader.read_new() == []
    monkeypatch.undo()
    assert [e.mac for e in reader.read_new()] == ["02:00:00:00:00:01"]


def test_the_hook_wakes_the_reader_which_polls_no_more(tmp_path, monkeypatch):
    """dnsmasq's hook (the real script, run as dnsmasq runs it) pokes the agent's socket
    after appending: with the reader's fallback read switched off, its event still
    comes, so the agent need not poll the files 50 times a second."""
    monkeypatch.setattr(events, "READ_ANYWAY_SECONDS", None)  # wait for a wakeup only
    servers = DhcpServers(str(tmp_path), driver=None, runtime=None, overlay=None)
    server_dir = tmp_path / "dhcp-aaaa"
    _event(server_dir, "02:00:00:00:00:01")
    stop = threading.Event()
    stream = servers.lease_events(stop)
    assert next(stream)["mac"] == "02:00:00:00:00:01"  # read before any wait
    hook = server_dir / "lease_hook"
    hook.write_text(hook_source("lease_hook"))
    run = [sys.executable, STDLIB_ONLY, str(hook), "add", "02:00:00:00:00:02", "10.0.0.6"]
    subprocess.run(run, check=True, env={"DNSMASQ_LEASE_EXPIRES": "1700000000"})
    got: list[dict] = []
    reader = threading.Thread(target=lambda: got.append(next(stream)), daemon=True)
    reader.start()
    reader.join(30)  # a hang guard: without the wakeup it would wait forever
    assert [e["mac"] for e in got] == ["02:00:00:00:00:02"]
    assert got[0]["expires"] == 1700000000
    stop.set()
