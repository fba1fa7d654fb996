"""The catalog's gRPC service: push, pull, publish, show, search -- with bearer tokens.

Every call needs `authorization: Bearer <token>` metadata (Unauthenticated
otherwise); health and reflection do not. A private model answers NOT_FOUND to
everyone but its owner, in every call, so its existence is not revealed.

This module is the servicer: it authenticates each call, answers pull, show and
publish itself, and hands a push to `push_handler` and a search to
`search_handler`. The handlers and the store raise the errors of
`modelwire.errors` (NotFound, InvalidRequest, ...), never a status; `_serve`
answers every failure with `modelwire.hosting.status.status_of`, logging an
internal one here, once, with its traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import grpc

from modelwire.catalog.api import CATALOG_SERVICE, catalog_classes, chunk_message
from modelwire.catalog.push_handler import PushHandler
from modelwire.catalog.records import ModelRow, check_version
from modelwire.catalog.schemas import SchemaCache
from modelwire.catalog.search_handler import SearchHandler
from modelwire.catalog.store import Store
from modelwire.errors import DataLoss, InvalidRequest, Unauthenticated
from modelwire.hosting.status import status_of

__all__ = ["CHUNK", "DEFAULT_MAX_UPLOAD_MB", "CatalogServicer"]

logger = logging.getLogger(__name__)

DEFAULT_MAX_UPLOAD_MB = 4096
CHUNK = 1024 * 1024
T = TypeVar("T")


class CatalogServicer:
    """Handlers for CatalogService over a `Store`."""

    def __init__(self, store: Store, *, max_upload_bytes: int) -> None:
        self.store = store
        self.max_upload = max_upload_bytes
        self.pb = catalog_classes()
        schemas = SchemaCache(store)
        self.pushes = PushHandler(
            store, self.pb, schemas, self.summary, max_upload_bytes=max_upload_bytes
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

    def summary(self, row: ModelRow) -> Any:
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
            return self.pb.get("GetModelResponse")(
                model=self.summary(row),
                proto=proto,
                manifest_json=manifest,
                versions=versions,
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
            row = self.store.publish(
                request.name,
                request.version,
                viewer,
                request.description.strip(),
                request.category.strip(),
                [t.strip() for t in request.tags if t.strip()],
            )
            logger.info("published %s:%s by %s", row.name, row.version, user)
            return self.pb.get("PublishModelResponse")(model=self.summary(row))

        return self._serve("PublishModel", context, work)

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
