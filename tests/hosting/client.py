"""A plain HTTP/1.1 client for the HTTP face's tests: stdlib http.client, one keep-alive
connection, every answer returned whole (status, headers, body), errors included."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any


@dataclass
class Reply:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


class Client:
    """Requests to one server over one connection (reopened if the server closed it)."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 30.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self._conn: http.client.HTTPConnection | None = None

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        for attempt in (0, 1):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self._conn.request(method, path, body=body, headers=headers or {})
                r = self._conn.getresponse()
                data = r.read()
            except (ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine):
                self.close()
                if attempt:
                    raise
                continue
            reply = Reply(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
            if r.will_close:
                self.close()
            return reply
        raise AssertionError("unreachable")

    def post(self, path: str, body: bytes | str | Any, **headers: str) -> Reply:
        """POST `body` (bytes as they are, str encoded, anything else as JSON); header
        keywords use underscores for dashes (`content_type="application/proto"`)."""
        if isinstance(body, str):
            body = body.encode()
        elif not isinstance(body, bytes):
            body = json.dumps(body).encode()
        names = {k.replace("_", "-"): v for k, v in headers.items()}
        names.setdefault("content-type", "application/json")
        return self.request("POST", path, body, names)

    def get(self, path: str, **headers: str) -> Reply:
        return self.request("GET", path, None, {k.replace("_", "-"): v for k, v in headers.items()})

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
