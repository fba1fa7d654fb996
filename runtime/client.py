"""`modelwire.connect(address)`: call a model service with plain Python values.

The client reads the service's proto through server reflection (no .proto or
stubs needed) and, from modelwire services, the model's manifest, so its methods
carry the model's Python names and take and return the same kinds of values:
NamedTuples, dataclasses or dicts in; namedtuples, ndarrays, enums out.
"""

from __future__ import annotations

from typing import Any

import grpc

from modelwire.codegen.descriptors import message_classes, schema_from_descriptor
from modelwire.codegen.schema import ModelSchema
from modelwire.codegen.values import DecodeError, MethodCodec, ValueCodec
from modelwire.config import ClientTls, parse_address
from modelwire.errors import ServiceError
from modelwire.hosting.info import INFO_SERVICE
from modelwire.hosting.remote import fetch_info, reflect, rpc_error, wait_ready
from modelwire.hosting.tls import open_channel

__all__ = ["RemoteMethod", "RemoteModel", "connect"]

_DEFAULT_MAX_MESSAGE = 256 * 1024 * 1024


class RemoteMethod:
    """One method of a remote model; call it like the model's Python method."""

    def __init__(
        self,
        model: RemoteModel,
        codec: MethodCodec,
        call: grpc.UnaryUnaryMultiCallable[bytes, bytes],
    ) -> None:
        self._model = model
        self._codec = codec
        self._call = call
        self.name = codec.method.name
        self.__doc__ = codec.method.doc

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        request = self._codec.encode_request(args, kwargs)
        try:
            reply = self._call(request, timeout=self._model.timeout)
        except grpc.RpcError as exc:
            raise rpc_error(self._model.address, self._codec.method.rpc, exc) from None
        try:
            return self._codec.decode_response(reply)
        except DecodeError as exc:
            raise ServiceError(
                f"{self._model.address} {self._codec.method.rpc}: the reply does not match "
                f"the schema: {exc}",
                target=self._model.address,
                rpc=self._codec.method.rpc,
            ) from exc

    def __repr__(self) -> str:
        return f"<remote method {self._model.schema.name}.{self.name}>"


class RemoteModel:
    """A connected model service. Methods appear as attributes; close() when done."""

    def __init__(
        self,
        address: str,
        channel: grpc.Channel,
        schema: ModelSchema,
        codec: ValueCodec,
        manifest: dict[str, Any] | None,
        timeout: float | None,
    ) -> None:
        self.address = address
        self.channel = channel
        self.schema = schema
        self.codec = codec
        self.manifest = manifest
        self.timeout = timeout
        self.methods: dict[str, RemoteMethod] = {}
        service = f"{schema.package}.{schema.service}" if schema.package else schema.service
        for m in schema.methods:
            call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
                f"/{service}/{m.rpc}"
            )
            self.methods[m.name] = RemoteMethod(self, codec.method(m.name), call)

    def __getattr__(self, name: str) -> RemoteMethod:
        methods = self.__dict__.get("methods", {})
        try:
            return methods[name]  # type: ignore[no-any-return]
        except KeyError:
            raise AttributeError(
                f"{self.__dict__.get('address')} has no method {name!r}; "
                f"it has {', '.join(methods) or 'none'}"
            ) from None

    def __dir__(self) -> list[str]:
        return [*super().__dir__(), *self.methods]

    def python_type(self, message: str) -> type:
        """The namedtuple class that values of `message` are returned as."""
        return self.codec.python_type(message)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> RemoteModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<RemoteModel {self.schema.name} at {self.address}: {', '.join(self.methods)}>"


def connect(
    address: str,
    *,
    service: str | None = None,
    timeout: float | None = None,
    max_message_mb: int = 256,
    channel: grpc.Channel | None = None,
    tls: ClientTls | bool | None = None,
) -> RemoteModel:
    """Connect to a model service and return a client whose methods are the model's.

    Args:
        address: ``host:port`` of a running service.
        service: the full service name, when the server runs more than one.
        timeout: deadline in seconds for each call (None: no deadline).
        max_message_mb: the largest request or reply accepted, in MiB.
        channel: an existing channel to use instead of one made here.
        tls: connect with TLS: True trusts the system's CAs; a `ClientTls` names the CA
            file, the client's certificate (mutual TLS) and the server's name. None or
            False: plaintext.

    Raises:
        ConfigError: `address` is not HOST:PORT (or a gRPC target URI), or a TLS file
            does not load; nothing is dialled.
        ServiceError: nothing listens there, the service cannot be reached (a failed TLS
            handshake says why), or it has no usable schema.

    Example:
        >>> iris = connect("localhost:50051")  # doctest: +SKIP
        >>> iris.classify(IrisInput([5.1], [3.5], [1.4], [0.2]))  # doctest: +SKIP
        ClassifyResponse(iris_type=[0])
    """
    settings = ClientTls() if tls is True else (tls or None)
    if channel is None:
        parse_address(address)
        size = max_message_mb * 1024 * 1024
        options = [
            ("grpc.max_send_message_length", size),
            ("grpc.max_receive_message_length", size),
        ]
        channel = open_channel(address, settings, options)
    try:
        wait_ready(channel, address, timeout or 10, tls=settings)
    except ServiceError:
        channel.close()
        raise
    try:
        found = reflect(channel, address, service)
        manifest = fetch_info(channel) if INFO_SERVICE in found.services else None
        schema = (
            ModelSchema.from_json(manifest["schema"])
            if manifest is not None and manifest.get("service") == found.service
            else schema_from_descriptor(found.file, service=found.service.rsplit(".", 1)[-1])
        )
        fdp = found.file
        codec = ValueCodec(schema, message_classes(fdp))
    except BaseException:
        channel.close()
        raise
    return RemoteModel(address, channel, schema, codec, manifest, timeout)
