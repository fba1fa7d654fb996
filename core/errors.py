"""Exceptions a user of modelwire can cause and fix.

Programmer errors (API misuse) raise TypeError, ValueError or RuntimeError instead.

    ModelwireError
    ├── BlueprintError    blueprint cannot be loaded or type-checked
    ├── SchemaError       annotation has no protobuf mapping (also a TypeError)
    ├── BundleError       bundle missing, malformed, tampered or conflicting
    │   └── BundleNotFound
    ├── ServiceError      a model service call failed
    ├── ConfigError       invalid setting
    └── ToolError         protoc, buf or docker failed
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = [
    "BlueprintError",
    "BundleError",
    "BundleNotFound",
    "ConfigError",
    "ModelwireError",
    "SchemaError",
    "ServiceError",
    "ToolError",
    "os_reason",
]


class ModelwireError(Exception):
    """Base class of every error modelwire reports to its users."""


class BlueprintError(ModelwireError):
    """A blueprint cannot be loaded or type-checked."""


class SchemaError(ModelwireError, TypeError):
    """An annotation has no protobuf mapping, or a schema is inconsistent.

    Attributes:
        annotation: the offending annotation, rendered as text.
        where: where it was found, e.g. ``method 'classify', parameter 'x'``.
    """

    def __init__(self, message: str, *, annotation: str = "", where: str = "") -> None:
        self.annotation = annotation
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)


class BundleError(ModelwireError):
    """A bundle is missing, malformed, tampered with, or cannot be loaded here.

    Attributes:
        bundle: the bundle's path.
    """

    def __init__(self, message: str, *, bundle: str | Path = "") -> None:
        self.bundle = str(bundle)
        super().__init__(f"bundle {self.bundle}: {message}" if self.bundle else message)


class BundleNotFound(BundleError):
    """No bundle exists at the given path or reference."""


class ServiceError(ModelwireError):
    """A call to a model service failed.

    Attributes:
        target: the address that was called.
        status: the gRPC status code's name, e.g. ``'INVALID_ARGUMENT'``.
        details: the status message the service sent.
    """

    def __init__(self, message: str, *, target: str = "", status: str = "", details: str = ""):
        self.target = target
        self.status = status
        self.details = details
        super().__init__(message)


class ConfigError(ModelwireError):
    """A setting is invalid.

    Attributes:
        key: the setting, e.g. ``'port'`` or ``'MODELWIRE_PORT'``.
        value: the rejected value as given (None: nothing was given, or nothing to show).
        source: where it came from: ``'flag'``, ``'env'``, ``'file'`` or ``'default'``.
    """

    def __init__(self, key: str, value: object, reason: str, *, source: str = "") -> None:
        self.key = key
        self.value = value
        self.source = source
        if value is None:  # nothing to show: the setting is missing, or the key says it all
            super().__init__(reason if source == "default" else f"{key}: {reason}")
        else:
            super().__init__(f"{key}={value!r}: {reason}")


class ToolError(ModelwireError):
    """An external tool (protoc, buf, docker) failed.

    Attributes:
        argv: the command that ran.
        returncode: its exit status.
        stderr_tail: the last lines it wrote to stderr.
    """

    def __init__(
        self,
        message: str,
        *,
        argv: Sequence[str] = (),
        returncode: int | None = None,
        stderr_tail: str = "",
    ) -> None:
        self.argv = tuple(argv)
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        text = message
        if self.argv:
            text += f" (command: {' '.join(self.argv)}"
            text += f", exit status {returncode})" if returncode is not None else ")"
        if stderr_tail:
            text += "\n" + stderr_tail
        super().__init__(text)


def os_reason(exc: OSError, *, hide: Callable[[str], bool] | None = None) -> str:
    """`strerror: path` as the OS says it (a missing parent, no permission, a full disk),
    without the path where `hide(path)` says it is only an internal temp file."""
    if exc.strerror is None:
        return str(exc)
    name = str(exc.filename or "")
    if not name or (hide is not None and hide(name)):
        return exc.strerror
    return f"{exc.strerror}: {name}"
