"""Exceptions a user of modelwire can cause and fix.

Programmer errors (API misuse) raise TypeError, ValueError or RuntimeError instead.

    ModelwireError
    ├── BlueprintError      blueprint cannot be loaded or type-checked   (.diagnostics, .file)
    ├── SchemaError         annotation has no protobuf mapping (also a TypeError)
    ├── BundleError         bundle missing, malformed, tampered or conflicting
    │   └── BundleNotFound
    ├── RequestError        a server cannot serve a request as asked     (.subject)
    │   ├── InvalidRequest      the request is malformed or names what cannot be
    │   ├── NotFound            what it names does not exist (or is not the caller's to see)
    │   ├── AlreadyExists       it would replace something that must not change
    │   ├── Unauthenticated     no valid credentials
    │   ├── PermissionDenied    valid credentials, not allowed
    │   ├── FailedPrecondition  the server's state does not allow it now
    │   ├── TooLarge            a message over a limit                   (.size, .limit)
    │   ├── OutOfSpace          no room to keep what it sends (a full disk)
    │   ├── DataLoss            stored data is damaged
    │   ├── DeadlineExceeded    its deadline passed before it could be served
    │   └── Cancelled           its caller went away before it was served
    ├── ModelFailed         the model's own code raised                  (.method, .cause)
    ├── BadResult           the model returned what its schema cannot encode (.method)
    ├── StepFailed          a solution's step failed                     (.method, .step, .status)
    ├── ServiceError        a call to a service failed, client side      (.target, .status)
    ├── ConfigError         invalid setting                              (.key, .value, .source)
    └── ToolError           protoc, buf or docker failed                 (.argv, .returncode)

Servers raise these without transport codes; `modelwire.hosting.status` is the one
place that turns an exception into a gRPC status (and, for the HTTP face, an HTTP
status), for the runtime, the broker and the catalog alike.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelwire.diagnostics import Diagnostic

__all__ = [
    "AlreadyExists",
    "BadResult",
    "BlueprintError",
    "BundleError",
    "BundleNotFound",
    "Cancelled",
    "ConfigError",
    "DataLoss",
    "DeadlineExceeded",
    "FailedPrecondition",
    "InvalidRequest",
    "ModelFailed",
    "ModelwireError",
    "NotFound",
    "OutOfSpace",
    "PermissionDenied",
    "RequestError",
    "SchemaError",
    "ServiceError",
    "StepFailed",
    "TooLarge",
    "ToolError",
    "Unauthenticated",
    "os_reason",
]


class ModelwireError(Exception):
    """Base class of every error modelwire reports to its users."""


class BlueprintError(ModelwireError):
    """A blueprint cannot be loaded or type-checked.

    Attributes:
        diagnostics: every problem found, sorted by location (empty when the message
            says it all, e.g. the file cannot be read).
        file: the blueprint's path as given.
    """

    def __init__(
        self, message: str, *, diagnostics: Sequence[Diagnostic] = (), file: str = ""
    ) -> None:
        self.diagnostics = tuple(diagnostics)
        self.file = file
        super().__init__(message)

    @classmethod
    def from_diagnostics(cls, diagnostics: Sequence[Diagnostic], file: str) -> BlueprintError:
        """The error of a blueprint with these problems; `str()` is them rendered."""
        from modelwire.diagnostics import Diagnostic, render

        ordered = sorted(diagnostics, key=Diagnostic.sort_key)
        return cls(render(ordered, file), diagnostics=ordered, file=file)


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


class RequestError(ModelwireError):
    """A request that a server cannot serve as asked; the subclass says why.

    Attributes:
        subject: what the request named, where that helps a caller (``'iris:1.0.0'``).
    """

    def __init__(self, message: str, *, subject: str = "") -> None:
        self.subject = subject
        super().__init__(message)


class InvalidRequest(RequestError):
    """The request is malformed, or asks for something that can never be served."""


class NotFound(RequestError):
    """What the request names does not exist, or is not the caller's to see."""


class AlreadyExists(RequestError):
    """The request would replace something that must not change."""


class Unauthenticated(RequestError):
    """The request carries no valid credentials."""


class PermissionDenied(RequestError):
    """The caller is known but not allowed to do this."""


class FailedPrecondition(RequestError):
    """The server's state does not allow the request now (it may later)."""


class TooLarge(RequestError):
    """A message is over a limit.

    Attributes:
        size: its size in bytes (0 when not known yet).
        limit: the limit in bytes.
    """

    def __init__(self, message: str, *, size: int = 0, limit: int = 0, subject: str = "") -> None:
        self.size = size
        self.limit = limit
        super().__init__(message, subject=subject)


class OutOfSpace(RequestError):
    """The server has no room to keep what the request sends (a full disk); it may later."""


class DataLoss(RequestError):
    """Stored data is damaged: what the request needs cannot be read back intact."""


class DeadlineExceeded(RequestError):
    """The request's deadline passed before it could be served (a batched call still
    queued): it was not run."""


class Cancelled(RequestError):
    """The request's caller went away before it was served: it was not run."""


class ModelFailed(ModelwireError):
    """The model's own code raised while serving a method.

    Attributes:
        method: the model's method (its Python name).
        cause: what the model raised (its traceback stays in the server's log).
    """

    def __init__(self, method: str, cause: BaseException) -> None:
        self.method = method
        self.cause = cause
        super().__init__(f"{method}: the model raised {type(cause).__name__}: {cause}")


class BadResult(ModelwireError):
    """The model returned a value that its declared response type cannot encode.

    Attributes:
        method: the model's method (its Python name).
    """

    def __init__(self, method: str, reason: str) -> None:
        self.method = method
        super().__init__(
            f"{method}: the model returned a value that does not fit its declared response: "
            f"{reason}"
        )


class StepFailed(ModelwireError):
    """A step of a solution's method failed, and with it the call.

    Attributes:
        method: the solution's method.
        step: the step's name ('' when the call failed outside any step).
        status: the name of the status the step ended with (``'UNAVAILABLE'``): the one
            the step's model answered, or the broker's own for a failure of its own.
    """

    def __init__(self, message: str, *, method: str, step: str = "", status: str) -> None:
        self.method = method
        self.step = step
        self.status = status
        super().__init__(message)


class ServiceError(ModelwireError):
    """A call to a model service failed.

    Attributes:
        target: the address that was called.
        status: the gRPC status code's name, e.g. ``'INVALID_ARGUMENT'``.
        details: the status message the service sent.
        rpc: the method that was called, e.g. ``'Classify'`` (empty when no call failed).
    """

    def __init__(
        self,
        message: str,
        *,
        target: str = "",
        status: str = "",
        details: str = "",
        rpc: str = "",
    ):
        self.target = target
        self.status = status
        self.details = details
        self.rpc = rpc
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
