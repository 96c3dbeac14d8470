"""The broker restarts (the cluster's own redis-server, killed; no persistence: every
queued and unacked message is lost; same port and ACL file when it comes back). Agents
and the controller reconnect; each agent's heartbeat failed meanwhile, so its next
registration asks for its operations' steps again (`resume`), and the instances end
running with their IPs. A websocket opened before the restart still gets the pushes of
what changes after it (the Channels layer subscribes again; it does not lose its groups)."""

from __future__ import annotations

import time

import pytest

from tests.e2e.test_websocket import Listener

from .conftest import Instances, make_world, own_cluster
from .invariants import assert_recovered, snapshot_ips

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def redis_cluster():
    with own_cluster("relr") as local:
        yield local


def test_redis_restart_loses_nothing(redis_cluster):
    world = make_world(redis_cluster, "broker")
    instances = Instances(redis_cluster, world)
    kept = [instances.running(), instances.running()]
    ips = snapshot_ips(redis_cluster, [i["id"] for i in kept])
    listener = Listener(redis_cluster, redis_cluster.admin_token)  # open across the restart
    try:
        in_flight = [instances.create(), instances.create()]
        moving = redis_cluster.api.post(f"/api/v1/instances/{kept[0]['id']}/migrate/", json={})
        assert moving.status_code == 202, moving.text
        # Fault injection, not waits for a condition: kill the broker 0.3 s into the launches
        # and the migration (messages queued, some taken, none finished), keep it down 2 s.
        time.sleep(0.3)
        redis_cluster.restart_redis(kill=True, down=2.0)
        for instance in kept + in_flight:
            settled = instances.wait(instance["id"], timeout=90)
            assert settled["state"] == "running", settled
        assert_recovered(redis_cluster, ips, timeout=60, what="redis restarted")
        fresh = instances.running()
        redis_cluster.wait_for(
            lambda: any(
                m["type"] == "instance.updated"
                and m["data"]["id"] == fresh["id"]
                and m["data"]["state"] == "running"
                for _, m in list(listener.messages)
            ),
            timeout=30,
            what="the push of an instance launched after the restart, on an older socket",
        )
    finally:
        listener.close()
    for instance in kept + in_flight + [fresh]:
        instances.delete(instance["id"])
    assert_recovered(redis_cluster, what="after redis restart clean-up")
