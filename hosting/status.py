"""The one boundary between errors and statuses, for every modelwire server.

The runtime, the broker's solution service and the catalog raise the domain errors of
`modelwire.errors` (no transport codes in them) and answer with `status_of(exc)`. The
table `GRPC_CODES` is the whole mapping; tests/test_status.py pins it, and the HTTP
face derives its statuses from the same gRPC codes (as Connect does).

What leaves a server: the error's own message for a `ModelwireError` (these are
written for the caller); for a model's ValueError/TypeError its text too (it usually
says what was wrong with the request); for anything else only the exception's type,
the traceback staying in the server's log.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from modelwire.errors import (
    AlreadyExists,
    BadResult,
    Cancelled,
    DataLoss,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidRequest,
    ModelFailed,
    ModelwireError,
    NotFound,
    OutOfSpace,
    PermissionDenied,
    StepFailed,
    TooLarge,
    Unauthenticated,
)

__all__ = ["GRPC_CODES", "MAX_DETAIL", "Status", "status_of"]

MAX_DETAIL = 1000  # characters of a status message; longer ones are clipped

GRPC_CODES: tuple[tuple[type[ModelwireError], grpc.StatusCode], ...] = (
    (InvalidRequest, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (TooLarge, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (OutOfSpace, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (DataLoss, grpc.StatusCode.DATA_LOSS),
    (DeadlineExceeded, grpc.StatusCode.DEADLINE_EXCEEDED),
    (Cancelled, grpc.StatusCode.CANCELLED),
    (BadResult, grpc.StatusCode.INTERNAL),
)
"""Error class -> gRPC code, first match wins. `ModelFailed` and `StepFailed` are
decided by their data (the model's exception; the step's status)."""


@dataclass(frozen=True, slots=True)
class Status:
    """What a caller is answered: a gRPC code and a message meant for them.

    Attributes:
        code: the gRPC status code.
        message: the status message (at most MAX_DETAIL characters).
        internal: the server failed, not the request: log the cause with its traceback.
    """

    code: grpc.StatusCode
    message: str
    internal: bool = False


def _clip(text: str) -> str:
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 3] + "..."


def status_of(exc: BaseException, where: str = "") -> Status:
    """The status a caller gets for `exc`, raised while serving (`where`: the method,
    prefixed to messages that do not name it already; '' for none)."""
    prefix = f"{where}: " if where else ""
    if isinstance(exc, ModelFailed):
        cause = exc.cause
        if isinstance(cause, ValueError | TypeError):
            return Status(
                grpc.StatusCode.INVALID_ARGUMENT,
                _clip(
                    f"{exc.method}: the model rejected the request: {type(cause).__name__}: {cause}"
                ),
            )
        return Status(
            grpc.StatusCode.INTERNAL,
            f"{exc.method}: the model raised {type(cause).__name__}; "
            "the traceback is in the server's log",
            internal=True,
        )
    if isinstance(exc, StepFailed):
        code = getattr(grpc.StatusCode, exc.status, grpc.StatusCode.UNKNOWN)
        return Status(code, _clip(str(exc)))
    for kind, code in GRPC_CODES:
        if isinstance(exc, kind):
            return Status(code, _clip(str(exc)), internal=code is grpc.StatusCode.INTERNAL)
    return Status(
        grpc.StatusCode.INTERNAL, f"{prefix}internal error; see the server's log", internal=True
    )
