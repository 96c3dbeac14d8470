"""Agent liveness through the broker's Redis: one key per host, no task per beat.

Each agent SETs `ciao.alive.<host>` every heartbeat interval with an expiry, the value
being that expiry in milliseconds. The controller reads every host's key and PTTL in one
round trip: value - PTTL is how long ago the host last beat, measured by Redis' own
clock, so neither side's clock matters. A beat costs Redis one SET and the controller
nothing; a missing key (expired, or a Redis that restarted empty) is no news, and the
controller decides from the last beat it saw (`inventory.services.note_liveness`).

No Django: the agent imports it. The broker ACL lets an agent SET its own key and
nothing else there, and the controller GET/PTTL them (ciaoweb.core.broker_acl).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

PREFIX = "ciao.alive."


def alive_key(node: str) -> str:
    return f"{PREFIX}{node}"


def redis_client(url: str, timeout: float = 2.0) -> Any:
    """A redis-py client for a broker URL (rediss:// TLS options come in its query),
    failing within `timeout` instead of redis-py's three retries."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis.Redis.from_url(
        url, socket_connect_timeout=timeout, socket_timeout=timeout, retry=Retry(NoBackoff(), 0)
    )


def beat(client: Any, node: str, ttl: float) -> None:
    """This host is alive now; the key lives `ttl` seconds."""
    ttl_ms = max(int(ttl * 1000), 1)
    client.set(alive_key(node), str(ttl_ms), px=ttl_ms)


def beat_ages(client: Any, nodes: Iterable[str]) -> dict[str, float]:
    """Seconds since each host's last beat, for the hosts whose key is there."""
    nodes = list(nodes)
    pipe = client.pipeline(transaction=False)
    for node in nodes:
        pipe.get(alive_key(node))
        pipe.pttl(alive_key(node))
    replies = pipe.execute()
    ages = {}
    for node, value, remaining in zip(nodes, replies[::2], replies[1::2], strict=True):
        try:
            ttl_ms = int(value)
        except (TypeError, ValueError):  # gone between GET and PTTL, or not ours
            continue
        if remaining >= 0:
            ages[node] = max(ttl_ms - remaining, 0) / 1000
    return ages
