"""The catalog's gRPC service: push, pull, publish, show, search -- with bearer tokens.

Every call needs `authorization: Bearer <token>` metadata (Unauthenticated
otherwise); health and reflection do not. A private model answers NOT_FOUND to
everyone but its owner, in every call, so its existence is not revealed.

This module is the servicer: it authenticates each call, answers pull, show and
publish itself (publish refuses a version whose validation failed or is pending,
unless its owner forces it, which is recorded), and hands a push to `push_handler`
(which queues each new version for validation) and a search to `search_handler`.
The handlers and the store raise the errors of `modelwire.errors` (NotFound,
InvalidRequest, ...), never a status; `_serve` answers every failure with
`modelwire.hosting.status.status_of`, logging an internal one here, once, with its
traceback.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import grpc

from modelwire.catalog import validations
from modelwire.catalog.api import CATALOG_SERVICE, catalog_classes, chunk_message
from modelwire.catalog.listing import ValidationInfo
from modelwire.catalog.push_handler import PushHandler
from modelwire.catalog.records import ModelRow, check_version
from modelwire.catalog.schemas import SchemaCache
from modelwire.catalog.search_handler import SearchHandler
from modelwire.catalog.store import Store
from modelwire.catalog.validation_jobs import Validator
from modelwire.errors import DataLoss, FailedPrecondition, InvalidRequest, Unauthenticated
from modelwire.hosting.status import status_of

__all__ = ["CHUNK", "DEFAULT_MAX_UPLOAD_MB", "CatalogServicer"]

logger = logging.getLogger(__name__)

DEFAULT_MAX_UPLOAD_MB = 4096
CHUNK = 1024 * 1024
T = TypeVar("T")


class CatalogServicer:
    """Handlers for CatalogService over a `Store`."""

    def __init__(
        self, store: Store, *, max_upload_bytes: int, validator: Validator | None = None
    ) -> None:
        self.store = store
        self.max_upload = max_upload_bytes
        self.validator = validator
        self.pb = catalog_classes()
        schemas = SchemaCache(store)
        self.pushes = PushHandler(
            store,
            self.pb,
            schemas,
            self.summary,
            max_upload_bytes=max_upload_bytes,
            on_stored=validator.submit if validator is not None else None,
        )
        self.searches = SearchHandler(store, self.pb, schemas, self.summary)

    # ------------------------------------------------------------ plumbing

    def _user(self, context: grpc.ServicerContext) -> tuple[int, str]:
        auth = ""
        for key, value in context.invocation_metadata():
            if key == "authorization":
                auth = str(value)
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("the catalog needs a token: pass --token, or set MODELWIRE_TOKEN")
        user = self.store.user_for_token(token.strip())
        if user is None:
            raise Unauthenticated(
                "the token is not valid (modelwire catalog user token NAME issues a new one)"
            )
        return user

    def _serve(self, rpc: str, context: grpc.ServicerContext, fn: Callable[[], T]) -> T:
        """Run a handler's work; the one place where errors become gRPC statuses."""
        try:
            return fn()
        except Exception as exc:
            status = status_of(exc, rpc)
            if status.internal:
                logger.exception("%s failed", rpc, extra={"rpc": rpc})
        # only the status outlives the except block: a kept exception would keep its
        # traceback's frames (protobuf messages, the request stream) in a cycle for the
        # garbage collector
        context.abort(status.code, status.message)
        raise AssertionError("abort() raises")

    def summary(self, row: ModelRow, validation: str | None = None) -> Any:
        """The ModelSummary of a version; `validation` its status if known (else read)."""
        if validation is None:
            validation = validations.statuses(self.store.db, [row.id])[row.id]
        method = self.pb.get("MethodSummary")
        return self.pb.get("ModelSummary")(
            name=row.name,
            version=row.version,
            owner=row.owner,
            published=row.published,
            description=row.description,
            category=row.category,
            tags=list(row.tags),
            methods=[method(**m) for m in row.methods],
            sha256=row.sha256,
            size=row.size,
            created=row.created,
            service=row.service,
            validation=validation,
        )

    # ------------------------------------------------------------ push, search

    def push(self, requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
        return self._serve(
            "PushBundle", context, lambda: self.pushes.receive(requests, *self._user(context))
        )

    def search(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._serve(
            "SearchModels",
            context,
            lambda: self.searches.search(request, self._user(context)[0]),
        )

    # ------------------------------------------------------------ pull, show, publish

    def pull(self, request: Any, context: grpc.ServicerContext) -> Iterator[bytes]:
        def start() -> tuple[bytes, Any]:
            viewer, _ = self._user(context)
            row = self.store.get(request.name, request.version or None, viewer)
            try:
                blob = self.store.blob_path(row.sha256).open("rb")
            except FileNotFoundError:
                raise DataLoss(
                    f"the bundle of {row.name}:{row.version} is missing from the catalog's "
                    "storage; ask its operator",
                    subject=f"{row.name}:{row.version}",
                ) from None
            header = self.pb.get("PullBundleResponse")(
                header=self.pb.get("DownloadHeader")(
                    model=self.summary(row), size=row.size, sha256=row.sha256
                )
            )
            return header.SerializeToString(), blob

        header, blob = self._serve("PullBundle", context, start)
        with blob:
            yield header
            while chunk := blob.read(CHUNK):
                yield chunk_message(chunk)

    def get(self, request: Any, context: grpc.ServicerContext) -> Any:
        def work() -> Any:
            viewer, _ = self._user(context)
            row = self.store.get(request.name, request.version or None, viewer)
            versions = [r.version for r in self.store.versions(request.name, viewer)]
            manifest, proto = self.store.document(row.id)
            validation = validations.status_of(self.store.db, row.id)
            return self.pb.get("GetModelResponse")(
                model=self.summary(row, validation.status),
                proto=proto,
                manifest_json=manifest,
                versions=versions,
                validation=self._validation(validation),
            )

        return self._serve("GetModel", context, work)

    def publish(self, request: Any, context: grpc.ServicerContext) -> Any:
        def work() -> Any:
            viewer, user = self._user(context)
            if not request.description.strip() or not request.category.strip():
                raise InvalidRequest(
                    "publishing needs a description and a category (--description, --category)"
                )
            check_version(request.version)
            forced = self._may_publish(request, viewer)
            row = self.store.publish(
                request.name,
                request.version,
                viewer,
                request.description.strip(),
                request.category.strip(),
                [t.strip() for t in request.tags if t.strip()],
            )
            if forced:
                validations.record_force(self.store.db, row.id, forced, user)
            logger.info(
                "published %s:%s by %s%s",
                row.name,
                row.version,
                user,
                f" with --force (its validation: {forced})" if forced else "",
            )
            return self.pb.get("PublishModelResponse")(model=self.summary(row))

        return self._serve("PublishModel", context, work)

    def _may_publish(self, request: Any, viewer: int) -> str:
        """Refuse to publish a version whose validation failed or is pending, unless its
        owner forces it; the status that was forced ("" if none was)."""
        found = validations.version_id(self.store.db, request.name, request.version)
        if found is None or found[1] != viewer:
            return ""  # the store answers: not found, or only its owner publishes it
        model = found[0]
        validation = validations.status_of(self.store.db, model)
        if validation.status == validations.UNVALIDATED and self.validator is not None:
            self.validator.submit(model)  # from before validation: validated from now on
            validation = validations.status_of(self.store.db, model)
        if validation.status not in (validations.FAILED, validations.PENDING):
            return ""
        if request.force:
            return validation.status
        ref = f"{request.name}:{request.version}"
        force = "or publish it anyway with --force (recorded, and shown with it)"
        if validation.status == validations.FAILED:
            failure = (validation.report or {}).get("failure") or "failed"
            raise FailedPrecondition(
                f"{ref} failed its validation ({failure}): {validation.reason}; push a fixed "
                f"version, {force}",
                subject=ref,
            )
        if self.validator is None:
            raise FailedPrecondition(
                f"{ref} has not been validated yet, and this catalog does not validate "
                f"(catalog serve --validate off); ask its operator, {force}",
                subject=ref,
            )
        raise FailedPrecondition(
            f"{ref} is still being validated ({_pending(validation)}); publish it once "
            f"'modelwire show {ref}' says passed (publish --wait SECONDS waits for it), "
            f"{force}",
            subject=ref,
        )

    def _validation(self, v: ValidationInfo) -> Any:
        return self.pb.get("ValidationStatus")(
            status=v.status,
            mode=v.mode,
            reason=v.reason,
            report_json=json.dumps(v.report, sort_keys=True) if v.report else "",
            note=v.note,
            attempts=v.attempts,
            running=v.running,
            ahead=v.ahead,
            queued=v.queued,
            finished=v.finished,
            forced_status=v.forced_status,
            forced_by=v.forced_by,
            forced_at=v.forced_at,
        )

    # ------------------------------------------------------------ registration

    def generic_handler(self) -> grpc.GenericRpcHandler:
        pb = self.pb

        def ser(m: Any) -> bytes:
            data: bytes = m.SerializeToString()
            return data

        def de(name: str) -> Any:
            return pb.get(name).FromString

        return grpc.method_handlers_generic_handler(
            CATALOG_SERVICE,
            {
                # bytes in and out: a malformed message is INVALID_ARGUMENT (not grpcio's
                # INTERNAL), and a chunk is framed without copying it into a message
                "PushBundle": grpc.stream_unary_rpc_method_handler(self.push),
                "PullBundle": grpc.unary_stream_rpc_method_handler(
                    self.pull, de("PullBundleRequest")
                ),
                "PublishModel": grpc.unary_unary_rpc_method_handler(
                    self.publish, de("PublishModelRequest"), ser
                ),
                "GetModel": grpc.unary_unary_rpc_method_handler(
                    self.get, de("GetModelRequest"), ser
                ),
                "SearchModels": grpc.unary_unary_rpc_method_handler(
                    self.search, de("SearchModelsRequest"), ser
                ),
            },
        )


def _pending(v: ValidationInfo) -> str:
    """Where a pending validation is: running (its step), or queued (behind how many)."""
    if v.running:
        return f"running: {v.note}" if v.note else "running"
    queued = f"queued, {v.ahead} ahead" if v.ahead else "queued"
    return f"{queued}; {v.note}" if v.note and v.note != "started" else queued
