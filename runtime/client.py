"""`modelwire.connect(address)`: call a model service with plain Python values.

The client reads the service's proto through server reflection (no .proto or
stubs needed) and, from modelwire services, the model's manifest, so its methods
carry the model's Python names and take and return the same kinds of values:
NamedTuples, dataclasses or dicts in; namedtuples, ndarrays, enums out.
"""

from __future__ import annotations

import json
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool

from modelwire.codegen.descriptors import message_classes, schema_from_descriptor
from modelwire.codegen.schema import ModelSchema
from modelwire.codegen.values import DecodeError, MethodCodec, ValueCodec
from modelwire.errors import ServiceError

__all__ = ["RemoteMethod", "RemoteModel", "connect"]

_INFRA = ("grpc.health.", "grpc.reflection.", "modelwire.runtime.v1.")
_DEFAULT_MAX_MESSAGE = 256 * 1024 * 1024


def _error(target: str, rpc: str, exc: grpc.RpcError) -> ServiceError:
    code = exc.code() if isinstance(exc, grpc.Call) else None
    details = exc.details() if isinstance(exc, grpc.Call) else str(exc)
    name = code.name if code is not None else "UNKNOWN"
    return ServiceError(
        f"{target} {rpc}: {name}: {details}", target=target, status=name, details=details or ""
    )


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
            raise _error(self._model.address, self._codec.method.rpc, exc) from None
        try:
            return self._codec.decode_response(reply)
        except DecodeError as exc:
            raise ServiceError(
                f"{self._model.address} {self._codec.method.rpc}: the reply does not match "
                f"the schema: {exc}",
                target=self._model.address,
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


def _reflect(
    channel: grpc.Channel, address: str, service: str | None
) -> tuple[descriptor_pb2.FileDescriptorProto, str, list[str]]:
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
        ProtoReflectionDescriptorDatabase,
    )

    db = ProtoReflectionDescriptorDatabase(channel)
    try:
        services = list(db.get_services())
    except grpc.RpcError as exc:
        raise _error(address, "ServerReflectionInfo", exc) from None
    candidates = [s for s in services if not s.startswith(_INFRA)]
    if service is not None:
        if service not in services:
            raise ServiceError(
                f"{address} has no service {service!r}; it has {', '.join(candidates) or 'none'}",
                target=address,
            )
        chosen = service
    elif len(candidates) == 1:
        chosen = candidates[0]
    else:
        raise ServiceError(
            f"{address} serves {len(candidates)} services ({', '.join(candidates) or 'none'}); "
            "choose one with connect(address, service=...)",
            target=address,
        )
    pool = descriptor_pool.DescriptorPool(db)
    try:
        desc = pool.FindServiceByName(chosen)
    except (KeyError, grpc.RpcError) as exc:
        raise ServiceError(
            f"{address}: cannot read the schema of {chosen}: {exc}", target=address
        ) from None
    fdp = descriptor_pb2.FileDescriptorProto()
    desc.file.CopyToProto(fdp)
    return fdp, desc.full_name, services


def _manifest(channel: grpc.Channel) -> dict[str, Any] | None:
    from modelwire.codegen.descriptors import build_file
    from modelwire.codegen.schema import lower
    from modelwire.runtime.info import INFO_FILE, INFO_SCHEMA, INFO_SERVICE

    classes = message_classes(build_file(lower(INFO_SCHEMA), INFO_FILE))
    resp_cls = classes.get("GetModelInfoResponse")
    call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
        f"/{INFO_SERVICE}/GetModelInfo"
    )
    reply = resp_cls.FromString(call(b"", timeout=10))
    data: dict[str, Any] = json.loads(reply.manifest_json)  # type: ignore[attr-defined]
    return data


def connect(
    address: str,
    *,
    service: str | None = None,
    timeout: float | None = None,
    max_message_mb: int = 256,
    channel: grpc.Channel | None = None,
) -> RemoteModel:
    """Connect to a model service and return a client whose methods are the model's.

    Args:
        address: ``host:port`` of a running service.
        service: the full service name, when the server runs more than one.
        timeout: deadline in seconds for each call (None: no deadline).
        max_message_mb: the largest request or reply accepted, in MiB.
        channel: an existing channel to use instead of an insecure one to `address`.

    Raises:
        ServiceError: the service cannot be reached or has no usable schema.

    Example:
        >>> iris = connect("localhost:50051")  # doctest: +SKIP
        >>> iris.classify(IrisInput([5.1], [3.5], [1.4], [0.2]))  # doctest: +SKIP
        ClassifyResponse(iris_type=[0])
    """
    if channel is None:
        size = max_message_mb * 1024 * 1024
        channel = grpc.insecure_channel(
            address,
            options=[
                ("grpc.max_send_message_length", size),
                ("grpc.max_receive_message_length", size),
            ],
        )
    # The first call waits for the connection. (grpc.channel_ready_future would do,
    # but it polls connectivity every 200 ms.) Any answer, even UNIMPLEMENTED from a
    # server without health checks, proves the server is there.
    wait = timeout or 10
    try:
        check: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
            "/grpc.health.v1.Health/Check"
        )
        check(b"", timeout=wait, wait_for_ready=True)
    except grpc.RpcError as exc:
        code = exc.code() if isinstance(exc, grpc.Call) else None
        if code in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE):
            channel.close()
            raise ServiceError(
                f"cannot reach {address}: no connection within {wait:g} s", target=address
            ) from None
    try:
        fdp, full_name, services = _reflect(channel, address, service)
        manifest = None
        from modelwire.runtime.info import INFO_SERVICE

        if INFO_SERVICE in services:
            try:
                manifest = _manifest(channel)
            except grpc.RpcError:
                manifest = None
        schema = (
            ModelSchema.from_json(manifest["schema"])
            if manifest is not None and f"{manifest.get('service')}" == full_name
            else schema_from_descriptor(fdp, service=full_name.rsplit(".", 1)[-1])
        )
        codec = ValueCodec(schema, message_classes(fdp))
    except BaseException:
        channel.close()
        raise
    return RemoteModel(address, channel, schema, codec, manifest, timeout)
