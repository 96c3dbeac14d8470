"""Dead-node detection on the bench cluster: `kill -9` of a host's agent (worker and pool)
until the API says the host is `offline` and its instance `host_state` is `offline`;
then a long idle run under API load in which no host may go offline (a false flap).

The cluster runs the product's defaults (beat 1 s, CIAO_HEARTBEAT_TIMEOUT 6 s). Neutron
declares an agent down after 75 s by default (agent_down_time).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from .util import summary

POLL = 0.05


def _host_states(api) -> dict[str, str]:
    reply = api.get("/api/v1/hosts/", params={"limit": 1000})
    reply.raise_for_status()
    return {h["name"]: h["state"] for h in reply.json()["results"]}


def _wait(what: str, done, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if done():
            return time.monotonic() - started
        time.sleep(POLL)
    raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")


def detection(bench, kills: int = 5) -> dict[str, Any]:
    """`kills` agents killed one after the other (a different host each, each with a
    running instance); seconds from the SIGKILL to the host `offline` in the API, and to
    its instance's `host_state` `offline`."""
    cluster, api = bench.cluster, bench.api
    hosts = [h for h in sorted(cluster.agents) if h != "netnode"][:kills]
    host_s, instance_s, back_s = [], [], []
    for host in hosts:
        instance = bench.launch(bench._name("dead"), "container", host=host)
        cluster.wait_instance(instance["id"], timeout=60)
        killed = time.monotonic()
        cluster.agents[host].kill()
        host_s.append(
            _wait(f"{host} offline", lambda h=host: _host_states(api)[h] == "offline", 60)
        )

        def flagged(i=instance["id"]) -> bool:
            body = api.get(f"/api/v1/instances/{i}/").json()
            return body.get("host_state") == "offline"

        _wait(f"{instance['name']} flagged", flagged, 30)
        instance_s.append(time.monotonic() - killed)
        restarted = time.monotonic()
        cluster.start_agent(host)
        _wait(f"{host} online", lambda h=host: _host_states(api)[h] == "online", 60)
        back_s.append(time.monotonic() - restarted)
        api.delete(f"/api/v1/instances/{instance['id']}/")
    return {
        "kills": len(hosts),
        "to_host_offline": summary(host_s),
        "to_instance_flagged": summary(instance_s),
        "restart_to_online": summary(back_s),
        "heartbeat_timeout_s": cluster.config.heartbeat_timeout,
        "heartbeat_interval_s": cluster.config.heartbeat_interval,
    }


def idle_flaps(bench, seconds: float = 120.0, readers: int = 4) -> dict[str, Any]:
    """`seconds` of nothing but API reads from `readers` threads as fast as they go: every
    host must stay online (its state checked every second, and the events searched)."""
    cluster, api = bench.cluster, bench.api
    stop = threading.Event()
    requests = [0] * readers
    errors: list[str] = []

    def read(n: int) -> None:
        import httpx

        with httpx.Client(base_url=cluster.url, headers=dict(api.headers), timeout=30) as client:
            paths = ("/api/v1/instances/", "/api/v1/hosts/", "/api/v1/virtual-functions/")
            while not stop.is_set():
                reply = client.get(paths[requests[n] % len(paths)])
                if reply.status_code != 200:
                    errors.append(f"{reply.status_code} {reply.request.url}")
                requests[n] += 1

    threads = [threading.Thread(target=read, args=(n,), daemon=True) for n in range(readers)]
    since = time.time()
    for thread in threads:
        thread.start()
    seen_offline: set[str] = set()
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        seen_offline |= {h for h, state in _host_states(api).items() if state == "offline"}
        time.sleep(1.0)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    events = api.get("/api/v1/events/", params={"limit": 1000}).json()["results"]
    went_offline = [
        e["message"]
        for e in events
        if e.get("kind") == "host.updated"
        and "offline" in e.get("message", "")
        and _after(e.get("created"), since)
    ]
    return {
        "seconds": seconds,
        "api_requests": sum(requests),
        "api_requests_per_s": sum(requests) / seconds,
        "api_errors": errors[:10],
        "hosts": len(_host_states(api)),
        # Two witnesses: the audit log's offline events, and the hosts polled offline.
        "false_flaps": max(len(went_offline), len(seen_offline)),
        "flap_messages": went_offline[:10],
        "seen_offline": sorted(seen_offline),
    }


def _after(created: str | None, since: float) -> bool:
    from datetime import datetime

    if not created:
        return False
    return datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp() >= since
