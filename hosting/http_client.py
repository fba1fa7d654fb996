"""The client side of the HTTP face: a service's manifest, and Connect unary calls.

`modelwire call --http URL ...` reads the schema from `GET /model/info` (the manifest
ModelInfoService gives over gRPC) and sends `POST /<package>.<Service>/<Rpc>` with a
protobuf body (`application/proto`, `Connect-Timeout-Ms` as the deadline), so that it
checks and prints requests and replies exactly as the gRPC path does. Standard library
only (http.client). A failed call is a `ServiceError` in the client side's one text
form, `URL RPC: STATUS: details`, STATUS the gRPC code of Connect's error code.
"""

from __future__ import annotations

import http.client
import json
import math
import socket
import ssl
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from modelwire.config import ClientTls
from modelwire.errors import ServiceError
from modelwire.hosting.tls import client_ssl_context

__all__ = ["HttpTarget", "fetch_manifest", "unary_call"]

_PROTO = "application/proto"


@dataclass(frozen=True)
class HttpTarget:
    """Where an HTTP face is: `http://host:port` (a base path, if any, kept as a prefix)."""

    url: str
    https: bool
    host: str
    port: int
    prefix: str
    context: ssl.SSLContext | None = field(default=None, compare=False, repr=False)

    @classmethod
    def parse(cls, url: str, tls: ClientTls | None = None) -> HttpTarget:
        """`http://localhost:8080`, `https://host/base`, or `localhost:8080` (http, or
        https with `tls`: its CA and client certificate are used for https).

        Raises:
            ServiceError: not an http(s) URL with a host.
        """
        text = url.strip()
        default = "https" if tls is not None else "http"
        parts = urlsplit(text if "://" in text else f"{default}://{text}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ServiceError(
                f"{url!r} is not an HTTP address; write http://HOST:PORT, e.g. "
                "http://localhost:8080",
                target=url,
            )
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise ServiceError(f"{url!r} has no valid port (1-65535)", target=url) from None
        base = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
        https = parts.scheme == "https"
        context = client_ssl_context(tls) if https and tls is not None else None
        return cls(base, https, parts.hostname, port, parts.path.rstrip("/"), context)

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        if self.https:
            return http.client.HTTPSConnection(
                self.host, self.port, timeout=timeout, context=self.context
            )
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def request(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str], timeout: float
    ) -> tuple[int, str, bytes]:
        """(status, content type, body) of one request.

        Raises:
            ServiceError: no answer (`cannot reach URL: reason`).
        """
        conn = self._connection(timeout)
        try:
            conn.request(method, self.prefix + path, body=body, headers=headers)
            reply = conn.getresponse()
            return reply.status, reply.getheader("content-type", ""), reply.read()
        except (OSError, http.client.HTTPException) as exc:
            if isinstance(exc, ssl.SSLCertVerificationError):
                reason = f"the server's certificate does not verify: {exc.verify_message}"
            else:
                reason = "no answer in time" if isinstance(exc, socket.timeout) else str(exc)
            raise ServiceError(f"cannot reach {self.url}: {reason or type(exc).__name__}") from None
        finally:
            conn.close()


def fetch_manifest(target: HttpTarget, timeout: float = 10.0) -> dict[str, Any]:
    """The manifest the service publishes at /model/info (its schema included).

    Raises:
        ServiceError: unreachable, or not a modelwire service's HTTP face.
    """
    status, _, body = target.request("GET", "/model/info", None, {}, timeout)
    try:
        manifest = json.loads(body) if status == 200 else None
    except ValueError:
        manifest = None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("schema"), dict):
        raise ServiceError(
            f"{target.url} GET /model/info answered {status}: not the HTTP face of a "
            "modelwire service (its gRPC address works with modelwire call without --http)",
            target=target.url,
        )
    return manifest


def unary_call(target: HttpTarget, service: str, rpc: str, request: bytes, timeout: float) -> bytes:
    """One Connect unary call with protobuf bodies; the reply's bytes.

    Raises:
        ServiceError: unreachable, or the call failed (the status and message of
            Connect's error body).
    """
    headers = {
        "Content-Type": _PROTO,
        "Connect-Protocol-Version": "1",
        "Connect-Timeout-Ms": str(max(1, math.ceil(timeout * 1000))),
    }
    # the socket waits a little longer than the deadline: the server answers it
    status, kind, body = target.request("POST", f"/{service}/{rpc}", request, headers, timeout + 5)
    if status == 200 and kind.split(";")[0].strip() == _PROTO:
        return body
    code, message = _error_of(status, body)
    text = f"{target.url} {rpc}: {code}: {message}" if message else f"{target.url} {rpc}: {code}"
    raise ServiceError(text, target=target.url, rpc=rpc, status=code, details=message)


def _error_of(status: int, body: bytes) -> tuple[str, str]:
    """(gRPC code name, message) of a Connect error answer."""
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("code"), str):
        code = "CANCELLED" if doc["code"] == "canceled" else doc["code"].upper()
        return code, str(doc.get("message", ""))
    return "UNKNOWN", f"HTTP {status}: {body[:200].decode('utf-8', 'replace')}"
