"""A connection to a catalog: the gRPC channel, the user's token, and failed calls as errors.

`CatalogClient` builds on it; `modelwire.catalog.transfer` streams bundles over it.
Every failed call becomes one `ServiceError` carrying the status the catalog
answered, with a hint of its own when the catalog cannot be reached at all.
"""

from __future__ import annotations

from typing import Any

import grpc

from modelwire.catalog.api import CATALOG_SERVICE, catalog_classes
from modelwire.config import CatalogSettings
from modelwire.errors import ConfigError, ServiceError
from modelwire.hosting.remote import rpc_error
from modelwire.hosting.tls import explain, is_loopback, open_channel

__all__ = ["MAX_MESSAGE", "CatalogChannel"]

MAX_MESSAGE = 16 * 1024 * 1024  # a 1 MiB chunk and its envelope fit with room to spare


class CatalogChannel:
    """A channel to one catalog, and the metadata that carries the user's token.

    Args:
        settings: the catalog's address, the token and TLS (`CatalogSettings.resolve()`).
        timeout: deadline of metadata calls, in seconds; pushes and pulls have none.

    Raises:
        ConfigError: no TLS to an address that is not loopback, without `insecure`: the
            token would cross the network in plaintext.
    """

    def __init__(self, settings: CatalogSettings, *, timeout: float = 60.0) -> None:
        self.settings = settings
        self.address = settings.address
        self.timeout = timeout
        self.pb = catalog_classes()
        if settings.tls is None and not settings.insecure and not is_loopback(settings.address):
            raise ConfigError(
                "catalog",
                settings.address,
                "not a loopback address, and the token would cross the network in plaintext: "
                "connect with TLS (--tls, and --ca FILE for a private CA), or pass --insecure "
                "on a network you trust",
            )
        self.channel = open_channel(
            settings.address,
            settings.tls,
            [
                ("grpc.max_receive_message_length", MAX_MESSAGE),
                ("grpc.max_send_message_length", MAX_MESSAGE),
            ],
        )
        self.metadata = (("authorization", f"Bearer {settings.token}"),)

    def close(self) -> None:
        self.channel.close()

    def method(self, rpc: str) -> str:
        """The full method name of one of the catalog's rpcs."""
        return f"/{CATALOG_SERVICE}/{rpc}"

    def error(self, rpc: str, exc: grpc.RpcError) -> ServiceError:
        """The ServiceError for a failed call of `rpc`."""
        error = rpc_error(self.address, rpc, exc)
        if error.status != "UNAVAILABLE":
            return error
        why = explain(self.address, self.settings.tls, error.details or "")
        if why is not None:
            return ServiceError(
                f"cannot reach the catalog at {self.address}: {why}",
                target=self.address,
                status=error.status,
                details=error.details,
            )
        return ServiceError(
            f"cannot reach the catalog at {self.address} ({error.details}); "
            "is 'modelwire catalog serve' running there?",
            target=self.address,
            status=error.status,
            details=error.details,
        )

    def unary(self, rpc: str, request: Any, response: str) -> Any:
        """Call a unary rpc with the metadata deadline; its reply, parsed as `response`."""
        call: Any = self.channel.unary_unary(
            self.method(rpc),
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=self.pb.get(response).FromString,
        )
        try:
            return call(request, timeout=self.timeout, metadata=self.metadata)
        except grpc.RpcError as exc:
            raise self.error(rpc, exc) from None
