"""Notice a lost broker connection in every worker, also while it is busy.

kombu's Redis transport reads from the broker only while the worker can take another
task: once its prefetch slots are all taken by running tasks, no socket of the consumer
is watched. Remote control used to hide that (its pidbox subscription kept a socket in
the event loop, so a restarted Redis was noticed at once); with remote control off
(taskrouting.CELERY_COMMON), a worker whose every slot was busy when Redis restarted
would fail its acks and then wait forever for a slot that never frees.

`Consumer` (CELERY_COMMON's `worker_consumer`) adds one step: a connection of its own
to the broker, PINGed every few seconds without redis-py's reconnect-and-retry; a
failure is raised in the worker's event loop as a connection error, which restarts the
consumer (reconnect, fresh channel, fresh prefetch slots), as the pidbox did. PING is
the one command every broker user may run (ciaoweb.core.broker_acl).
"""

from __future__ import annotations

import logging

from celery import bootsteps
from celery.worker.consumer import Consumer as CeleryConsumer

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 2.0


class BrokerWatch(bootsteps.StartStopStep):
    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, c, **kwargs) -> None:
        super().__init__(c, **kwargs)
        self.probe = None
        self.tref = None

    def start(self, c) -> None:
        if c.connection is None or c.connection.transport.driver_type != "redis":
            return
        self._open(c)
        self.tref = c.timer.call_repeatedly(INTERVAL_SECONDS, self.check, (c,), priority=10)

    def _open(self, c) -> None:
        import redis

        # The URI leaves out the TLS options (rediss://...?ssl_ca_certs=): kombu keeps them
        # apart, in `ssl`.
        ssl = c.connection.ssl if isinstance(c.connection.ssl, dict) else {}
        pool = redis.ConnectionPool.from_url(c.connection.as_uri(include_password=True), **ssl)
        probe = pool.make_connection()
        probe.connect()
        self.probe = probe

    def check(self, c) -> None:
        """PING on our own connection, no retry: a dead broker (or a restarted one, whose
        old connections are all closed) raises here, in the event loop."""
        import redis

        try:
            if self.probe is None:
                self._open(c)
            self.probe.send_command("PING", check_health=False)
            self.probe.read_response()
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            log.warning("lost the broker connection (%s): restarting the consumer", exc)
            self._close()
            raise redis.ConnectionError(f"broker connection lost: {exc}") from exc

    def stop(self, c) -> None:
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None
        self._close()

    shutdown = stop

    def _close(self) -> None:
        if self.probe is not None:
            try:
                self.probe.disconnect()
            except Exception:  # noqa: BLE001 - closing a dead socket may fail any way
                pass
            self.probe = None


class Consumer(CeleryConsumer):
    class Blueprint(CeleryConsumer.Blueprint):
        default_steps = [*CeleryConsumer.Blueprint.default_steps, f"{__name__}:BrokerWatch"]
