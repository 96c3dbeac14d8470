"""Redis URLs as the controller and the agents accept them (broker, channel layer).

No Django here: the agent validates its own config with it."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

SCHEMES = ("redis", "rediss", "unix")
# kombu and redis-py take either spelling; only a verified certificate is accepted.
VERIFIED = ("required", "cert_required")


def check_redis_url(url: object) -> str:
    """The URL itself, or ValueError saying what is wrong with it (never the URL: it
    may hold a password).

    A `rediss://` URL must say `ssl_cert_reqs=required`: without it Celery's Redis
    backend refuses to start only once a task result is first stored, and `none` or
    `optional` would talk TLS to anyone who answers (no protection against a MITM)."""
    parts = urlsplit(url) if isinstance(url, str) and "://" in url else None
    if parts is None or parts.scheme not in SCHEMES:
        schemes = ", ".join(f"{s}://" for s in SCHEMES)
        raise ValueError(f"not a Redis URL ({schemes})")
    if parts.scheme == "rediss":
        reqs = parse_qs(parts.query).get("ssl_cert_reqs", [""])[-1]
        if reqs.lower() not in VERIFIED:
            raise ValueError(
                "a rediss:// URL must verify the server's certificate: add "
                "?ssl_cert_reqs=required&ssl_ca_certs=/path/to/ca.pem"
                + (f" (ssl_cert_reqs={reqs} does not verify it)" if reqs else "")
            )
    return url
