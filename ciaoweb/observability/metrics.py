"""The process' Prometheus registry: its own (not prometheus_client's global one, which
any library may fill and which tests would share), with request latency and the
cluster's state.

Request latency is per process: every API process behind the proxy counts only the
requests it served, so Prometheus scrapes each process at its own address (the proxy
would hand each scrape to any one of them). The cluster's state comes from the database
and is the same from any process.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.exposition import choose_encoder

from .collectors import ClusterCollector

REGISTRY = CollectorRegistry(auto_describe=True)

# Methods beyond these are one label value: a client cannot mint series.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"  # no URL pattern matched (a 404 before any view)

REQUEST_SECONDS = Histogram(
    "ciao_http_request_duration_seconds",
    "HTTP requests served by this process, by method, route (the URL pattern's name, "
    "never the path) and status class",
    ["method", "route", "status"],
    registry=REGISTRY,
)

REGISTRY.register(ClusterCollector())


def observe_request(method: str, route: str | None, status: int, seconds: float) -> None:
    REQUEST_SECONDS.labels(
        method if method in METHODS else "other",
        route or UNMATCHED,
        f"{status // 100}xx",
    ).observe(seconds)


def exposition(accept: str | None) -> tuple[bytes, str]:
    """The registry in the format the scraper asked for (OpenMetrics or Prometheus text)
    and its content type."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(REGISTRY), content_type
