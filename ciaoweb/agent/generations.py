"""The newest desired-state generation this node has seen per instance.

A task redelivered long after a crash (the broker returns unacked tasks) may describe an
instance that has since been deleted or moved; applying it could plug a VF for an
attachment that no longer exists. Specs older than the newest one seen are skipped.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .locks import node_lock


class GenerationLog:
    def __init__(self, state_dir: str | os.PathLike[str]) -> None:
        self.path = Path(state_dir) / "generations.json"
        self.state_dir = state_dir

    def admit(self, instance_id: str, generation: int) -> bool:
        """Record `generation`; False when a newer one was already seen (stale spec)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with node_lock(self.state_dir, "generations"):
            try:
                seen = json.loads(self.path.read_text())
            except (FileNotFoundError, ValueError):
                seen = {}
            if int(generation) < int(seen.get(instance_id, 0)):
                return False
            if seen.get(instance_id) != generation:
                seen[instance_id] = int(generation)
                tmp = self.path.with_suffix(".tmp")
                tmp.write_text(json.dumps(seen))
                tmp.replace(self.path)
            return True
