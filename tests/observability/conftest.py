"""Observability tests reuse the API tests' world: tenants a and b (alice, bob), an
admin, hosts node1 and node2 with VFs, one SR-IOV network per tenant and a shared one.
Dispatch and websocket publishing are recorded, not sent."""

from prometheus_client.parser import text_string_to_metric_families

from tests.api.conftest import dispatched, fast_passwords, published, world  # noqa: F401


def scrape(client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """GET /metrics as `client`: {(sample name, sorted labels): value}."""
    reply = client.get("/metrics")
    assert reply.status_code == 200, reply.content
    samples = {}
    for family in text_string_to_metric_families(reply.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    """One sample's value (KeyError names what is missing)."""
    return samples[(name, tuple(sorted(labels.items())))]
