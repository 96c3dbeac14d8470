"""Shared helpers: percentiles, scratch databases, names, memory."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCH_DIR = REPO / "bench"
DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/ciaoweb"


def pct(values: Iterable[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no data."""
    data = sorted(values)
    if not data:
        return None
    rank = max(1, min(len(data), int(round(q / 100 * len(data) + 0.4999))))
    return data[rank - 1]


def summary(values: list[float], unit: str = "s") -> dict:
    """n, p50, p95, min, max, mean of a sample (seconds unless told)."""
    values = [v for v in values if v is not None]
    if not values:
        return {"n": 0, "unit": unit}
    return {
        "n": len(values),
        "unit": unit,
        "p50": pct(values, 50),
        "p95": pct(values, 95),
        "min": min(values),
        "max": max(values),
        "mean": statistics.fmean(values),
    }


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or not b:
        return None
    return a / b


def database_url() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        url = DEFAULT_PG
    return url


def fresh_database(name: str) -> str:
    """Drop and create a scratch PostgreSQL database; return its URL."""
    import psycopg

    base = database_url().rsplit("/", 1)[0]
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{base}/{name}"


def drop_database(name: str) -> None:
    import psycopg

    base = database_url().rsplit("/", 1)[0]
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def mem_available_kib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1])
    return 0


class Clock:
    """Wall-clock stamps (time.time, comparable across processes) and elapsed."""

    def __init__(self) -> None:
        self.start = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.start
