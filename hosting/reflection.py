"""Server reflection over a private descriptor pool, so grpcurl and `connect()` need no
.proto file."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_health.v1 import health_pb2

from modelwire.hosting.health import HEALTH_SERVICE
from modelwire.hosting.info import INFO_SERVICE, info_file

__all__ = ["enable_reflection", "reflection_pool", "reflection_services"]


def reflection_pool(
    files: Iterable[descriptor_pb2.FileDescriptorProto],
) -> descriptor_pool.DescriptorPool:
    """A private pool with health, reflection, model info and `files`, for reflection."""
    from grpc_reflection.v1alpha import reflection_pb2

    pool = descriptor_pool.DescriptorPool()
    for mod in (health_pb2, reflection_pb2):
        pool.Add(descriptor_pb2.FileDescriptorProto.FromString(mod.DESCRIPTOR.serialized_pb))
    pool.Add(info_file())
    for f in files:
        pool.Add(f)
    return pool


def reflection_services(*names: str) -> list[str]:
    from grpc_reflection.v1alpha import reflection

    return [*names, INFO_SERVICE, HEALTH_SERVICE, reflection.SERVICE_NAME]


def enable_reflection(
    server: Any, names: Iterable[str], files: Iterable[descriptor_pb2.FileDescriptorProto]
) -> None:
    """Serve reflection for `names` (plus health, reflection, info) from `files`."""
    from grpc_reflection.v1alpha import reflection

    reflection.enable_server_reflection(
        reflection_services(*names), server, pool=reflection_pool(files)
    )
