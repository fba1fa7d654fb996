"""Names of generated things: proto packages, services, rpcs, wrapper messages.

Pure functions of the schema IR; the proto renderer, the descriptors and the lowering
all name things through these, so the `.proto` text and the run-time pool agree.
"""

from __future__ import annotations

import re

from modelwire.codegen.schema import (
    TENSOR_MESSAGE,
    EnumType,
    ListType,
    MapType,
    MessageType,
    Scalar,
    ScalarType,
    TensorType,
    TypeNode,
)

__all__ = ["needs_wrapper", "package_name", "rpc_name", "service_name", "wrapper_name"]

_WORD = re.compile(r"[A-Za-z0-9]+")


def _words(name: str) -> list[str]:
    # split on non-alphanumerics and camelCase boundaries
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return _WORD.findall(spaced)


def package_name(model_name: str, version: str) -> str:
    """`iris`, `2.1.0` -> `modelwire.models.iris.v2` (the major version picks the package).

    A 0.x version is a pre-release of v1: `modelwire.models.iris.v1alpha` (buf's
    PACKAGE_VERSION_SUFFIX rule has no `v0`).
    """
    words = [w.lower() for w in _words(model_name)]
    if not words or not words[0][0].isalpha():
        raise ValueError(f"model name {model_name!r} must start with a letter")
    major = version.split(".", 1)[0]
    if not major.isdigit():
        raise ValueError(f"version {version!r} must start with a major version number")
    suffix = f"v{int(major)}" if int(major) > 0 else "v1alpha"
    return f"modelwire.models.{'_'.join(words)}.{suffix}"


def service_name(model_name: str) -> str:
    """`face-detector` -> `FaceDetectorService`."""
    return "".join(w[:1].upper() + w[1:] for w in _words(model_name)) + "Service"


def rpc_name(method_name: str) -> str:
    """`predict_proba` -> `PredictProba`."""
    return "".join(w[:1].upper() + w[1:] for w in _words(method_name))


def _scalar_title(s: Scalar) -> str:
    return s.value[:1].upper() + s.value[1:]


def wrapper_name(t: TypeNode) -> str:
    """The message that carries a nested container: `list[float]` -> `ListOfDouble`."""
    match t:
        case ListType(item):
            return "ListOf" + _type_title(item)
        case MapType(key, value):
            return f"MapOf{_scalar_title(key.scalar)}To{_type_title(value)}"
    raise TypeError(f"{t!r} needs no wrapper")


def _type_title(t: TypeNode) -> str:
    match t:
        case ScalarType(scalar, _):
            return _scalar_title(scalar)
        case EnumType(name) | MessageType(name):
            return name
        case TensorType():
            return TENSOR_MESSAGE
        case ListType() | MapType():
            return wrapper_name(t)
    raise TypeError(f"{t!r} cannot be nested in a container")


def needs_wrapper(t: TypeNode) -> bool:
    return isinstance(t, ListType | MapType)
