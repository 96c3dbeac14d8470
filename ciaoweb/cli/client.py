"""The REST API over httpx: every transport failure and every answer >= 400 becomes a
`CliError` with its exit code (never a traceback), and lists follow `next` to the end."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from ciaoweb.cli.errors import ApiError, CliError, ExitCode

API_PREFIX = "/api/v1/"
DEFAULT_TIMEOUT = 30.0


class ApiClient:
    """`url` is the server's root (`http://127.0.0.1:8000`); paths are relative to
    `/api/v1/` (`"networks/"`)."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url
        headers = {"Accept": "application/json", "User-Agent": "ciao"}
        if token:
            headers["Authorization"] = f"Token {token}"
        try:
            self._http = httpx.Client(
                base_url=url.rstrip("/") + API_PREFIX,
                headers=headers,
                timeout=timeout,
                transport=transport,
            )
        except (httpx.InvalidURL, ValueError) as exc:
            raise CliError(f"bad API URL {url!r}: {exc}", ExitCode.UNAVAILABLE) from None

    def close(self) -> None:
        self._http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | list[tuple[str, Any]] | None = None,
    ) -> Any:
        """The decoded JSON body (None for an empty one)."""
        try:
            reply = self._http.request(method, path, json=json, params=params)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise CliError(
                f"cannot reach {self.url}: {exc or type(exc).__name__}", ExitCode.UNAVAILABLE
            ) from None
        body = _decode(reply)
        if reply.status_code >= 400:
            raise ApiError(reply.status_code, reply.reason_phrase, body)
        if body is _NOT_JSON:
            raise CliError(
                f"{method} {reply.url} answered {reply.status_code} with something that is not "
                f"JSON (is {self.url} a ciao server?)",
                ExitCode.UNAVAILABLE,
            )
        return body

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, json=body)

    def patch(self, path: str, body: Any) -> Any:
        return self.request("PATCH", path, json=body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def list(
        self, path: str, params: dict[str, Any] | None = None, limit: int | None = None
    ) -> list[dict]:
        """Every row of a paginated collection (or a plain list), at most `limit`."""
        rows: list[dict] = []
        query: Any = dict(params or {})
        while True:
            body = self.get(path, query)
            if isinstance(body, list):
                rows += body
                break
            rows += body.get("results", [])
            following = body.get("next")
            if not following or (limit and len(rows) >= limit):
                break
            # The same path with the next page's query: a `next` link built behind a proxy
            # may name another scheme or host than the one this client talks to.
            query = parse_qsl(urlsplit(following).query, keep_blank_values=True)
        return rows[:limit] if limit else rows


_NOT_JSON = object()


def _decode(reply: httpx.Response) -> Any:
    if not reply.content:
        return None
    try:
        return reply.json()
    except ValueError:
        if reply.status_code >= 400:  # e.g. a proxy's HTML error page: its first line
            text = reply.text.strip().splitlines()
            return {"detail": text[0][:200]} if text else None
        return _NOT_JSON
