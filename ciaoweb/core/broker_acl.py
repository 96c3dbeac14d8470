"""Redis ACL rules for the broker and the Channels layer (Redis 7 users and selectors).

No Django: the local cluster, the enrolment API and the agent's tooling import it.

Who talks to Redis and what for (from kombu's Redis transport, Celery and
channels-redis, see `docs/security.md`):

- `web` (daphne): sends controller tasks (LPUSH on the `controller` list) and serves
  websockets through the Channels layer (Pub/Sub channels under the `asgi` prefix:
  SUBSCRIBE for its clients' groups, PUBLISH for what a request changed).
- `controller` (the controller's workers and beat): consumes `controller` and
  `controller.liveness` (BRPOP, and kombu's ack emulation: the `unacked` hash, the
  `unacked_index` sorted set, the `unacked_mutex` lock), sends to every `node.<host>`
  list and publishes to the Channels layer (PUBLISH on `asgi*` channels only).
- `agent-<host>`: consumes its own `node.<host>` list with unacked keys of its own
  (`agent_transport_options`), may only *write* (LPUSH) the `controller` list, and SETs
  its own liveness key `ciao.alive.<host>` (ciaoweb.core.liveness); the controller
  reads those (GET, PTTL).

Each permission is a Redis 7 *selector*, a set of commands paired with the keys they may
touch: an agent's LPUSH is allowed on `controller` and on nothing else, and no command
that could delete, retype or read the controller's queue is allowed on it at all. Key
patterns are exact names (host names are DNS labels, so they hold no glob character);
`node.*` appears for the controller only. Pub/Sub is the Channels layer's alone: channel
patterns `asgi*`, for the web and controller users (Celery's remote control, events and
gossip are off: no pidbox or `celeryev` traffic, and their channels are refused to all),
no PSUBSCRIBE; nor does anyone get SELECT (everyone stays on
database 0), keyspace-wide commands (KEYS, SCAN, FLUSHALL) or administration (ACL,
CONFIG). The `default` user is off, so a client without credentials gets NOAUTH.

Three settings in `ciaoweb.taskrouting.CELERY_COMMON` keep the key set this small:
`priority_steps = [0]` (one list per queue, no `<queue>\\x06\\x16<n>` priority lists),
the `controller` queue with `no_declare` (a producer needs neither LLEN on it nor the
`_kombu.binding.controller` set: tasks are published to the default exchange, straight
to the list), and remote control and task events off.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping

from ciaoweb.core.credentials import agent_broker_user
from ciaoweb.core.liveness import PREFIX as ALIVE_PREFIX
from ciaoweb.core.liveness import alive_key

WEB_USER = "web"
CONTROLLER_USER = "controller"
# Only in a local cluster's own Redis: the launcher's user for ACL LOAD and inspection;
# no process of the cluster is given it.
ADMIN_USER = "ciao-admin"

CONTROLLER_QUEUE = "controller"  # ciaoweb.taskrouting.CONTROLLER_QUEUE (no Django import)
LIVENESS_QUEUE = "controller.liveness"  # ciaoweb.taskrouting.LIVENESS_QUEUE
CHANNELS_PREFIX = "asgi"  # channels-redis' default prefix (settings.CHANNEL_LAYERS)
BINDING_PREFIX = "_kombu.binding."  # kombu's Channel.keyprefix_queue

_HOST_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")

# Every user: PING (kombu checks each new channel, and health checks); MULTI/EXEC/DISCARD
# (redis-py pipelines are transactions; the commands inside are checked one by one);
# UNWATCH (a redis-py pipeline reset after a WATCH that did not reach EXEC).
_COMMON = ("+ping", "+multi", "+exec", "+discard", "+unwatch")
# kombu's ack emulation on a consumer's own keys: ZADD/HSET on delivery, ZREM/HDEL on
# ack, ZREVRANGEBYSCORE + HGET + WATCH to restore what outlived the visibility timeout,
# SET NX / GET / DEL (the release script) for the restore mutex (a redis-py Lock,
# released by EVALSHA; SCRIPT LOAD when the server lost the script).
_UNACKED_COMMANDS = (
    "+zadd",
    "+zrem",
    "+zrevrangebyscore",
    "+hset",
    "+hget",
    "+hdel",
    "+watch",
    "+set",
    "+get",
    "+del",
    "+evalsha",
)
# Consuming a queue: BRPOP; RPOP (basic_get); LPUSH/RPUSH to put an unacked message back;
# LLEN (queue_declare's message count).
_CONSUME_COMMANDS = ("+brpop", "+rpop", "+lpush", "+rpush", "+llen")
# channels-redis' Pub/Sub layer: a group is the channel `asgi__group__<name>`, a client
# `asgispecific.<id>`; sending is PUBLISH, listening SUBSCRIBE/UNSUBSCRIBE.
CHANNELS_PATTERN = f"&{CHANNELS_PREFIX}*"
_CHANNELS_SEND = ("+publish",)
_CHANNELS_RECEIVE = ("+subscribe", "+unsubscribe")


def password_hash(password: str) -> str:
    """The form an ACL file keeps a password in (`#<sha256 hex>`): the file never holds
    the password itself."""
    return "#" + hashlib.sha256(password.encode()).hexdigest()


def check_host_name(node: str) -> str:
    """A host name is a DNS label: no space, quote or glob character can widen a rule."""
    if not _HOST_NAME.match(node):
        raise ValueError(f"not a valid host name for a broker user: {node!r}")
    return node


def agent_unacked_keys(node: str) -> dict[str, str]:
    """The kombu ack-emulation keys of one agent: its own, so it never reads another
    node's unacked specs (kombu's default `unacked` hash is shared by every consumer)."""
    check_host_name(node)
    return {
        "unacked_key": f"unacked.node.{node}",
        "unacked_index_key": f"unacked_index.node.{node}",
        "unacked_mutex_key": f"unacked_mutex.node.{node}",
    }


def agent_transport_options(node: str, base: Mapping[str, object] | None = None) -> dict:
    """`broker_transport_options` for the agent of `node`: `base` (the shared options,
    CELERY_COMMON's) plus its own unacked keys. The agent's ACL allows no other."""
    return {**(base or {}), **agent_unacked_keys(node)}


def _selector(commands: Iterable[str], keys: Iterable[str]) -> str:
    return "(" + " ".join([*commands, *keys]) + ")"


def _user(name: str, password: str, *rules: str) -> str:
    # resetkeys/resetchannels/-@all first: the rules below are all that is granted.
    return " ".join(
        ["user", name, "on", password_hash(password), "resetkeys", "resetchannels", "-@all"]
        + list(_COMMON)
        + list(rules)
    )


def agent_rule(node: str, password: str) -> str:
    """One agent's ACL line, `user agent-<node> ...` (what enrolment shows an admin to add
    to the broker's ACL file; `password` is `credentials.broker_password(secret)`)."""
    check_host_name(node)
    queue = f"node.{node}"
    unacked = agent_unacked_keys(node).values()
    return _user(
        agent_broker_user(node),
        password,
        # Reports to the controller: LPUSH on its queue, write-only (%W: no LRANGE, no
        # BRPOP), and no other command on it (no DEL, no SET that would retype it).
        _selector(["+lpush"], [f"%W~{CONTROLLER_QUEUE}"]),
        # Its own queue, and nobody else's (exact name: node.node1 is not node.node10).
        _selector(_CONSUME_COMMANDS, [f"~{queue}"]),
        # kombu binds the queue it consumes (SADD on its exchange's binding set).
        _selector(["+sadd", "+smembers"], [f"~{BINDING_PREFIX}{queue}"]),
        _selector(_UNACKED_COMMANDS, [f"~{key}" for key in unacked]),
        # Its heartbeat: SET (with an expiry) of its own liveness key, nothing else.
        _selector(["+set"], [f"%W~{alive_key(node)}"]),
        # redis-py reloads the lock script when the server lost it (a restarted Redis).
        "+script|load",
    )


def web_rule(password: str) -> str:
    return _user(
        WEB_USER,
        password,
        # Controller tasks (operations to advance, network changes), write-only.
        _selector(["+lpush"], [f"%W~{CONTROLLER_QUEUE}"]),
        # The Channels layer: websocket consumers' channels and groups.
        _selector([*_CHANNELS_SEND, *_CHANNELS_RECEIVE], [CHANNELS_PATTERN]),
    )


def controller_rule(password: str) -> str:
    return _user(
        CONTROLLER_USER,
        password,
        # Its own queues (beat and its own tasks also LPUSH here).
        _selector(_CONSUME_COMMANDS, [f"~{CONTROLLER_QUEUE}", f"~{LIVENESS_QUEUE}"]),
        # kombu's default ack-emulation keys are the controller's alone (agents use theirs).
        _selector(_UNACKED_COMMANDS, ["~unacked", "~unacked_index", "~unacked_mutex"]),
        # Node tasks to every node: LPUSH, and the producer's declare of the node's queue
        # (LLEN for queue_declare, SADD on its binding set).
        _selector(["+lpush", "+llen"], ["~node.*"]),
        _selector(["+sadd", "+smembers"], [f"~{BINDING_PREFIX}node.*"]),
        # Websocket pushes (group_send) through the Channels layer.
        _selector(_CHANNELS_SEND, [CHANNELS_PATTERN]),
        # The agents' heartbeats, read only.
        _selector(["+get", "+pttl"], [f"%R~{ALIVE_PREFIX}*"]),
        "+script|load",
    )


def admin_rule(password: str) -> str:
    return " ".join(["user", ADMIN_USER, "on", password_hash(password), "~*", "&*", "+@all"])


DEFAULT_RULE = "user default off resetkeys resetchannels -@all"


def render_acl_file(
    web_password: str,
    controller_password: str,
    agents: Mapping[str, str],
    *,
    admin_password: str | None = None,
) -> str:
    """The broker's whole ACL file (`aclfile` in redis.conf). `agents`: host name → broker
    password. `admin_password` adds the launcher's `ciao-admin` user (local clusters)."""
    # Redis' ACL files take no comments: every line is a user.
    lines = [
        DEFAULT_RULE,
        web_rule(web_password),
        controller_rule(controller_password),
        *(agent_rule(node, agents[node]) for node in sorted(agents)),
    ]
    if admin_password is not None:
        lines.append(admin_rule(admin_password))
    return "\n".join(lines) + "\n"
