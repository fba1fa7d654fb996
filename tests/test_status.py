"""The one exception -> gRPC status mapping (`modelwire.hosting.status.status_of`), pinned as a
table: one row per error kind, per kind of exception a model can raise, for a step's upstream
status and for an exception nobody expected -- code, message and whether it is logged."""

from __future__ import annotations

import inspect

import grpc
import pytest

from modelwire import errors
from modelwire.codegen.values import DecodeError
from modelwire.errors import (
    AlreadyExists,
    BadResult,
    BundleError,
    Cancelled,
    DataLoss,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidRequest,
    ModelFailed,
    NotFound,
    OutOfSpace,
    PermissionDenied,
    RequestError,
    SchemaError,
    ServiceError,
    StepFailed,
    TooLarge,
    Unauthenticated,
)
from modelwire.hosting.status import MAX_DETAIL, Status, status_of

C = grpc.StatusCode
LONG = "x" * (MAX_DETAIL + 50)

# (id, exception, where, code, message, internal)
ROWS: list[tuple[str, BaseException, str, grpc.StatusCode, str, bool]] = [
    (
        "invalid-request",
        InvalidRequest("add: invalid request: x: required field is not set", subject="add"),
        "add",
        C.INVALID_ARGUMENT,
        "add: invalid request: x: required field is not set",
        False,
    ),
    (
        "not-found",
        NotFound("no model 'iris:1.0.0' in the catalog", subject="iris:1.0.0"),
        "GetModel",
        C.NOT_FOUND,
        "no model 'iris:1.0.0' in the catalog",
        False,
    ),
    (
        "already-exists",
        AlreadyExists("user 'alice' already exists", subject="alice"),
        "",
        C.ALREADY_EXISTS,
        "user 'alice' already exists",
        False,
    ),
    (
        "unauthenticated",
        Unauthenticated("the catalog needs a token: pass --token, or set MODELWIRE_TOKEN"),
        "PushBundle",
        C.UNAUTHENTICATED,
        "the catalog needs a token: pass --token, or set MODELWIRE_TOKEN",
        False,
    ),
    (
        "permission-denied",
        PermissionDenied("only the owner of iris:1.0.0 can publish it", subject="iris:1.0.0"),
        "PublishModel",
        C.PERMISSION_DENIED,
        "only the owner of iris:1.0.0 can publish it",
        False,
    ),
    (
        "failed-precondition",
        FailedPrecondition("iris:2.0.0 breaks clients of iris:1.0.0: ..."),
        "PushBundle",
        C.FAILED_PRECONDITION,
        "iris:2.0.0 breaks clients of iris:1.0.0: ...",
        False,
    ),
    (
        "too-large",
        TooLarge(
            "add: the reply is 2000 bytes, over the server's limit of 1000 bytes",
            size=2000,
            limit=1000,
        ),
        "add",
        C.RESOURCE_EXHAUSTED,
        "add: the reply is 2000 bytes, over the server's limit of 1000 bytes",
        False,
    ),
    (
        "out-of-space",
        OutOfSpace("the catalog's disk is full; ask its operator"),
        "PushBundle",
        C.RESOURCE_EXHAUSTED,
        "the catalog's disk is full; ask its operator",
        False,
    ),
    (
        "data-loss",
        DataLoss("the bundle of iris:1.0.0 is missing from the catalog's storage"),
        "PullBundle",
        C.DATA_LOSS,
        "the bundle of iris:1.0.0 is missing from the catalog's storage",
        False,
    ),
    (
        "deadline-exceeded",
        DeadlineExceeded(
            "classify: the deadline passed while the call waited for its batch; the model "
            "did not run for it",
            subject="classify",
        ),
        "classify",
        C.DEADLINE_EXCEEDED,
        "classify: the deadline passed while the call waited for its batch; the model did "
        "not run for it",
        False,
    ),
    (
        "cancelled",
        Cancelled(
            "classify: the call was cancelled while it waited for its batch", subject="classify"
        ),
        "classify",
        C.CANCELLED,
        "classify: the call was cancelled while it waited for its batch",
        False,
    ),
    (
        "request-error-clipped",
        InvalidRequest(LONG),
        "",
        C.INVALID_ARGUMENT,
        "x" * (MAX_DETAIL - 3) + "...",
        False,
    ),
    (
        "model-value-error",
        ModelFailed("reject", ValueError("x must be positive, got -2.5")),
        "reject",
        C.INVALID_ARGUMENT,
        "reject: the model rejected the request: ValueError: x must be positive, got -2.5",
        False,
    ),
    (
        "model-type-error",
        ModelFailed("wrong_type", TypeError("x must be a whole number, got 1.5")),
        "wrong_type",
        C.INVALID_ARGUMENT,
        "wrong_type: the model rejected the request: TypeError: x must be a whole number, got 1.5",
        False,
    ),
    (
        "model-value-error-subclass",
        ModelFailed("parse", DecodeError("x", "required field is not set")),
        "parse",
        C.INVALID_ARGUMENT,
        "parse: the model rejected the request: DecodeError: x: required field is not set",
        False,
    ),
    (
        "model-value-error-clipped",
        ModelFailed("reject", ValueError(LONG)),
        "reject",
        C.INVALID_ARGUMENT,
        ("reject: the model rejected the request: ValueError: " + LONG)[: MAX_DETAIL - 3] + "...",
        False,
    ),
    (
        "model-other-exception",
        ModelFailed("crash", LookupError("no entry 17.25 in the table")),
        "crash",
        C.INTERNAL,
        "crash: the model raised LookupError; the traceback is in the server's log",
        True,
    ),
    (
        "model-sys-exit",
        ModelFailed("exits", SystemExit(3)),
        "exits",
        C.INTERNAL,
        "exits: the model raised SystemExit; the traceback is in the server's log",
        True,
    ),
    (
        "model-raises-a-request-error",
        ModelFailed("lookup", NotFound("no such key")),
        "lookup",
        C.INTERNAL,
        "lookup: the model raised NotFound; the traceback is in the server's log",
        True,
    ),
    (
        "bad-result",
        BadResult("bad_result", "value: expected an integer, got str 'not an int'"),
        "bad_result",
        C.INTERNAL,
        "bad_result: the model returned a value that does not fit its declared response: "
        "value: expected an integer, got str 'not an int'",
        True,
    ),
    (
        "step-failed-upstream-unavailable",
        StepFailed(
            "advise: step 'faces' (faces.detect): UNAVAILABLE: connection refused",
            method="advise",
            step="faces",
            status="UNAVAILABLE",
        ),
        "advise",
        C.UNAVAILABLE,
        "advise: step 'faces' (faces.detect): UNAVAILABLE: connection refused",
        False,
    ),
    (
        "step-failed-upstream-invalid-argument",
        StepFailed(
            "advise: step 'eyes' (eyes.detect): INVALID_ARGUMENT: detect: invalid request",
            method="advise",
            step="eyes",
            status="INVALID_ARGUMENT",
        ),
        "advise",
        C.INVALID_ARGUMENT,
        "advise: step 'eyes' (eyes.detect): INVALID_ARGUMENT: detect: invalid request",
        False,
    ),
    (
        "step-failed-unknown-status-name",
        StepFailed("advise: step 'faces' failed", method="advise", step="faces", status="NOPE"),
        "advise",
        C.UNKNOWN,
        "advise: step 'faces' failed",
        False,
    ),
    (
        "unexpected-exception",
        RuntimeError("secret /srv/model.py detail"),
        "add",
        C.INTERNAL,
        "add: internal error; see the server's log",
        True,
    ),
    (
        "unexpected-exception-nowhere",
        KeyError("secret"),
        "",
        C.INTERNAL,
        "internal error; see the server's log",
        True,
    ),
    (
        "unmapped-modelwire-error",
        SchemaError("annotation 'tuple' has no protobuf mapping", where="method 'f'"),
        "f",
        C.INTERNAL,
        "f: internal error; see the server's log",
        True,
    ),
    (
        "client-side-error-on-a-server",
        ServiceError("localhost:1 Add: UNAVAILABLE: down", target="localhost:1"),
        "PushBundle",
        C.INTERNAL,
        "PushBundle: internal error; see the server's log",
        True,
    ),
    (
        "bundle-error-on-a-server",
        BundleError("file model.pkl is missing", bundle="/srv/iris"),
        "PullBundle",
        C.INTERNAL,
        "PullBundle: internal error; see the server's log",
        True,
    ),
]


@pytest.mark.parametrize(
    ("exc", "where", "code", "message", "internal"),
    [pytest.param(*row[1:], id=row[0]) for row in ROWS],
)
def test_status_of(exc, where, code, message, internal):
    assert status_of(exc, where) == Status(code, message, internal)


def _request_error_kinds() -> set[type[RequestError]]:
    return {
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, RequestError)
        and cls is not RequestError
        and cls.__module__ == errors.__name__
    }


def test_every_request_error_kind_has_a_row():
    """A new kind of RequestError cannot be added without a status pinned here."""
    kinds = _request_error_kinds()
    assert len(kinds) >= 8
    rows = {type(exc) for _, exc, *_ in ROWS}
    missing = sorted(k.__name__ for k in kinds - rows)
    assert not missing, f"no row in ROWS for {', '.join(missing)}"


def test_every_request_error_kind_answers_with_its_own_message_and_not_internal():
    """A request error is the caller's to fix: none falls through to INTERNAL, and only
    the two ways of running out of room (a message over a limit, a full disk) share a code."""
    kinds = sorted(_request_error_kinds(), key=lambda k: k.__name__)
    statuses = {k: status_of(k("what went wrong"), "m") for k in kinds}
    answered = {k: (s.message, s.internal) for k, s in statuses.items()}
    assert answered == dict.fromkeys(kinds, ("what went wrong", False))
    codes = [s.code for s in statuses.values()]
    assert C.INTERNAL not in codes
    shared = {c for c in codes if codes.count(c) > 1}
    assert shared == {C.RESOURCE_EXHAUSTED}
