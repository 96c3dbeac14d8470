"""Two tasks for the same instance on one node run one after the other (the watchdog
re-sends a slow step while the first still runs), and a discarded lock file never lets
two holders in."""

from __future__ import annotations

import contextlib
import threading
import time

from ciaoweb.agent.locks import lock_path, node_lock
from ciaoweb.agent.node import NodeAgent


class OverlapRuntime:
    """Namespaces by name only; records the most creates it ever saw at once."""

    host_netns = None

    def __init__(self, meet: int = 0) -> None:
        self.inside = 0
        self.most = 0
        self.guard = threading.Lock()
        # With `meet`, each create waits (up to 5 s) until that many are inside at once.
        self.meeting = threading.Barrier(meet) if meet else None

    def create(self, name: str, kind: str) -> str:
        with self.guard:
            self.inside += 1
            self.most = max(self.most, self.inside)
        if self.meeting is not None:
            with contextlib.suppress(threading.BrokenBarrierError):
                self.meeting.wait(timeout=5)
        else:
            time.sleep(0.05)  # long enough for a second task to arrive meanwhile
        with self.guard:
            self.inside -= 1
        return f"ns-{name}"

    def delete(self, name: str) -> None:
        self.create(name, "container")


def _spec(instance_id: str) -> dict:
    return {"instance_id": instance_id, "generation": 1, "kind": "container", "attachments": []}


def _concurrently(*calls) -> None:
    threads = [threading.Thread(target=call) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_tasks_for_one_instance_never_overlap(tmp_path):
    runtime = OverlapRuntime()
    agent = NodeAgent("node1", None, runtime, None, state_dir=str(tmp_path))
    spec = _spec("i-1")
    _concurrently(
        lambda: agent.ensure_instance(spec),
        lambda: agent.ensure_instance(spec),
        lambda: agent.release_instance(spec),
    )
    assert runtime.most == 1
    agent.release_instance(spec)  # the last task of the instance (the threads' order varies)
    assert not lock_path(tmp_path, "instance-i-1").exists()  # the release discarded it


def test_tasks_for_different_instances_run_side_by_side(tmp_path):
    runtime = OverlapRuntime(meet=2)  # serialized, the first would wait out the barrier
    agent = NodeAgent("node1", None, runtime, None, state_dir=str(tmp_path))
    _concurrently(
        lambda: agent.ensure_instance(_spec("i-1")), lambda: agent.ensure_instance(_spec("i-2"))
    )
    assert runtime.most == 2


def test_a_waiter_on_a_discarded_lock_file_excludes_a_newcomer(tmp_path):
    held, order, inside = threading.Event(), [], []

    def discarding_holder() -> None:
        with node_lock(tmp_path, "k", discard=True):
            held.set()
            time.sleep(0.1)  # the waiter opens the old file meanwhile

    def taker(name: str) -> None:
        with node_lock(tmp_path, "k"):
            inside.append(name)
            order.append(len(inside))
            time.sleep(0.05)
            inside.remove(name)

    first = threading.Thread(target=discarding_holder)
    first.start()
    held.wait()
    waiter = threading.Thread(target=taker, args=("waiter",))
    waiter.start()
    time.sleep(0.02)
    first.join()  # the file is gone: a newcomer creates a new one
    newcomer = threading.Thread(target=taker, args=("newcomer",))
    newcomer.start()
    waiter.join()
    newcomer.join()
    assert order == [1, 1]
