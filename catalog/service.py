"""The catalog's gRPC service: push, pull, publish, show, search -- with bearer tokens.

Every call needs `authorization: Bearer <token>` metadata (Unauthenticated
otherwise); health and reflection do not. A private model answers NOT_FOUND to
everyone but its owner, in every call, so its existence is not revealed.

A push is checked before anything is kept: the header (name, version, size,
sha256) first -- the same bytes already stored are a no-op and different bytes
under a stored version AlreadyExists, before the upload is even read -- then
the bytes against the header, then the bundle itself, then its types against
the previous version's. Only then does `Store.commit` make it visible.

The handlers and the store raise the errors of `modelwire.errors` (NotFound,
InvalidRequest, ...), never a status; `_serve` answers every failure with
`modelwire.hosting.status.status_of`, logging an internal one here, once, with its
traceback.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import grpc
from google.protobuf.message import DecodeError as PbDecodeError

from modelwire.bundle.manifest import Manifest
from modelwire.catalog.api import CATALOG_SERVICE, catalog_classes, chunk_message, chunk_of
from modelwire.catalog.search import Hit, find
from modelwire.catalog.store import (
    IndexRow,
    ModelRow,
    Store,
    VersionRecord,
    check_name,
    check_version,
    name_taken,
    version_key,
    version_taken,
)
from modelwire.catalog.upload import EXPANSION_LIMIT, inspect_bundle
from modelwire.codegen.compat import Typed, assignable, breaking_changes, render_type
from modelwire.codegen.schema import Field, MessageType, Method, ModelSchema, OptionalType
from modelwire.errors import (
    DataLoss,
    FailedPrecondition,
    InvalidRequest,
    NotFound,
    TooLarge,
    Unauthenticated,
)
from modelwire.hosting.status import status_of

__all__ = ["CHUNK", "DEFAULT_MAX_UPLOAD_MB", "CatalogServicer", "index_rows", "version_record"]

logger = logging.getLogger(__name__)

DEFAULT_MAX_UPLOAD_MB = 4096
CHUNK = 1024 * 1024
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_MAX_LIMIT = 10_000
_SCHEMA_CACHE = 20_000  # parsed schemas kept (a few KB each)
T = TypeVar("T")


def index_rows(schema: ModelSchema) -> list[IndexRow]:
    """(method, side, field, required) of every method's request and response fields."""
    rows: list[IndexRow] = []
    for m in schema.methods:
        for side, name in (("request", m.request), ("response", m.response)):
            rows.extend(
                (m.name, side, f.name, not isinstance(f.type, OptionalType))
                for f in _fields(schema, name)
            )
    return rows


def _fields(schema: ModelSchema, message: str) -> tuple[Field, ...]:
    try:
        return schema.message(message).fields
    except KeyError:  # not a message of this schema: nothing to list by name
        return ()


def _format(schema: ModelSchema, message: str) -> str:
    """A message's fields as the proto declares them: `text: string, limit: int32`."""
    return ", ".join(
        f"{f.name}: {render_type(f.type, top=False)}" for f in _fields(schema, message)
    )


def version_record(manifest: Manifest, proto: str) -> VersionRecord:
    """What the catalog records about a bundle: its formats come from its schema (its proto)."""
    schema = manifest.schema
    return VersionRecord(
        name=manifest.name,
        version=manifest.version,
        manifest=dict(manifest.raw),
        proto=proto,
        service=f"{schema.package}.{schema.service}",
        methods=tuple(
            {
                "name": m.name,
                "rpc": m.rpc,
                "request": m.request,
                "response": m.response,
                "doc": m.doc or "",
                "input": _format(schema, m.request),
                "output": _format(schema, m.response),
            }
            for m in schema.methods
        ),
        index=tuple(index_rows(schema)),
    )


class CatalogServicer:
    """Handlers for CatalogService over a `Store`."""

    def __init__(self, store: Store, *, max_upload_bytes: int) -> None:
        self.store = store
        self.max_upload = max_upload_bytes
        self.pb = catalog_classes()
        self._schemas: dict[int, ModelSchema] = {}

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
                "the token is not valid (modelwire catalog user add NAME prints a new one)"
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

    def _schema(self, row: ModelRow) -> ModelSchema:
        """The version's schema, parsed once (a version's manifest never changes)."""
        return self._schemas_of([row.id])[row.id]

    def _remember(self, model_id: int, schema: dict[str, Any]) -> ModelSchema:
        if len(self._schemas) >= _SCHEMA_CACHE:
            self._schemas.clear()
        got = self._schemas[model_id] = ModelSchema.from_json(schema)
        return got

    def _schemas_of(self, ids: list[int]) -> dict[int, ModelSchema]:
        """Schemas of these versions: from the cache, the others read in one query."""
        missing = [i for i in ids if i not in self._schemas]
        for model_id, text in self.store.schemas_json(missing).items():
            self._remember(model_id, json.loads(text))
        return {i: self._schemas[i] for i in ids if i in self._schemas}

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

    # ------------------------------------------------------------ push

    def push(self, requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
        return self._serve("PushBundle", context, lambda: self._push(requests, context))

    def _push(self, requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
        viewer, user = self._user(context)
        messages = self._messages(requests)
        try:
            first = next(messages, None)
        except grpc.RpcError:
            return b""  # the client went away before sending anything
        if first is None or isinstance(first, memoryview) or not first.HasField("header"):
            raise InvalidRequest("the first message of a push must carry the header")
        h = first.header
        self._check_header(h)
        stored = self.store.stored(h.name, h.version)
        if stored is not None:
            owner, sha256 = stored
            if owner != viewer:
                raise name_taken(h.name)
            if sha256 != h.sha256:
                raise version_taken(h.name, h.version, sha256)
            # the same bytes again: nothing to receive
            row = self.store.get(h.name, h.version, viewer)
            logger.info("already had %s:%s, pushed again by %s", h.name, h.version, user)
            return self._push_reply(row, created=False)
        if self.store.owner_of(h.name) not in (None, viewer):
            raise name_taken(h.name)

        upload = self.store.begin_upload(limit=self.max_upload, announced=h.size)
        try:
            if first.chunk:
                upload.write(first.chunk)
            try:
                for msg in messages:
                    if isinstance(msg, memoryview):
                        upload.write(msg)
                    elif msg.HasField("header"):
                        raise InvalidRequest("a push carries one header, in its first message")
                    else:
                        upload.write(msg.chunk)
            except grpc.RpcError:
                logger.info(
                    "the push of %s:%s by %s was cancelled after %d bytes; nothing was kept",
                    h.name,
                    h.version,
                    user,
                    upload.size,
                )
                return b""
            digest = upload.finish()
            if upload.size != h.size:
                raise InvalidRequest(f"received {upload.size} bytes, the header announced {h.size}")
            if digest != h.sha256:
                raise InvalidRequest(
                    f"the upload's sha256 is {digest}, the header says {h.sha256}; "
                    "it was corrupted on the way, push again"
                )
            checked = inspect_bundle(upload.path, size_limit=EXPANSION_LIMIT * self.max_upload)
            manifest = checked.manifest
            if (manifest.name, manifest.version) != (h.name, h.version):
                raise InvalidRequest(
                    f"the bundle is {manifest.name}:{manifest.version}, "
                    f"the header says {h.name}:{h.version}"
                )
            if not h.allow_breaking:
                self._check_compatible(viewer, manifest.name, manifest.version, manifest.schema)
            row, created = self.store.commit(
                upload, version_record(manifest, checked.proto), owner=viewer
            )
        finally:
            upload.discard()  # a no-op once the blob was moved into place
        logger.info(
            "%s %s:%s by %s (%d bytes)",
            "stored" if created else "already had",
            h.name,
            h.version,
            user,
            upload.size,
            extra={"model": h.name, "version": h.version, "user": user},
        )
        return self._push_reply(row, created=created)

    def _push_reply(self, row: ModelRow, *, created: bool) -> bytes:
        reply = self.pb.get("PushBundleResponse")(model=self.summary(row), created=created)
        data: bytes = reply.SerializeToString()
        return data

    def _messages(self, requests: Iterator[bytes]) -> Iterator[Any]:
        """Parsed PushBundleRequests; a message holding only a chunk comes as a memoryview."""
        parse = self.pb.get("PushBundleRequest").FromString
        for n, data in enumerate(requests, start=1):
            chunk = chunk_of(data)
            if chunk is not None:
                yield chunk
                continue
            try:
                yield parse(data)
            except PbDecodeError:
                raise InvalidRequest(
                    f"message {n} of the push is not a valid PushBundleRequest"
                ) from None

    def _check_header(self, h: Any) -> None:
        check_name(h.name)
        check_version(h.version)
        if h.size <= 0:
            raise InvalidRequest("the header must announce the bundle's size in bytes")
        if h.size > self.max_upload:
            raise TooLarge(
                f"the bundle is {h.size} bytes, over the catalog's limit of "
                f"{self.max_upload} bytes (modelwire catalog serve --max-upload-mb)",
                size=h.size,
                limit=self.max_upload,
                subject=f"{h.name}:{h.version}",
            )
        if not _SHA256.match(h.sha256):
            raise InvalidRequest(
                f"the header's sha256 {h.sha256!r} is not 64 lower-case hex digits"
            )

    def _check_compatible(self, viewer: int, name: str, version: str, schema: ModelSchema) -> None:
        """Refuse a version whose types break the clients of the version before it."""
        older = [
            r
            for r in self.store.versions(name, viewer)
            if version_key(r.version) < version_key(version)
        ]
        if not older:
            return
        prev = older[-1]
        problems = breaking_changes(self._schema(prev), schema)
        if problems:
            listed = "; ".join(problems[:10])
            more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
            raise FailedPrecondition(
                f"{name}:{version} breaks clients of {name}:{prev.version}: {listed}{more}; "
                "push with --allow-breaking (allow_breaking=True) to accept it",
                subject=f"{name}:{version}",
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

    # ------------------------------------------------------------ search

    def _method_ref(self, ref: Any, viewer: int) -> tuple[ModelSchema, Method]:
        row = self.store.get(ref.model, ref.version or None, viewer)
        schema = self._schema(row)
        try:
            return schema, schema.method(ref.method)
        except KeyError:
            names = ", ".join(m.name for m in schema.methods)
            raise NotFound(
                f"{row.name}:{row.version} has no method {ref.method!r} (it has {names})",
                subject=f"{row.name}:{row.version}.{ref.method}",
            ) from None

    def search(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._serve("SearchModels", context, lambda: self._search(request, context))

    def _search(self, request: Any, context: grpc.ServicerContext) -> Any:
        viewer, _ = self._user(context)
        limit = min(int(request.limit), _MAX_LIMIT) if request.limit > 0 else 100
        produced: Typed | None = None  # --accepts: what the candidate must take
        wanted: Typed | None = None  # --produces: what the candidate must give
        accepting = producing = None
        if request.HasField("accepts"):
            schema, m = self._method_ref(request.accepts, viewer)
            produced = Typed(schema, MessageType(m.response))
            accepting = _field_names(schema, m.response, required_only=False)
        if request.HasField("produces"):
            schema, m = self._method_ref(request.produces, viewer)
            wanted = Typed(schema, MessageType(m.request))
            producing = _field_names(schema, m.request, required_only=True)
        found: list[Hit] = []
        typed = produced is not None or wanted is not None
        pending: list[Hit] = []

        def settle() -> bool:
            """Check the pending hits in order; whether the answer is complete."""
            schemas = self._schemas_of([h.id for h in pending]) if typed else {}
            for hit in pending:
                if not request.all_versions and found and found[-1].name == hit.name:
                    continue  # a newer version of this name is already in
                if typed and not _fits(schemas[hit.id], hit.methods, produced, wanted):
                    continue
                found.append(hit)
                if len(found) >= limit:
                    return True
            pending.clear()
            return False

        hits = find(
            self.store,
            viewer,
            text=request.text,
            category=request.category,
            tags=list(request.tags),
            accepting=accepting,
            producing=producing,
        )
        with contextlib.closing(hits):
            for hit in hits:
                if not request.all_versions and (
                    (found and found[-1].name == hit.name)
                    or (pending and pending[-1].name == hit.name and not typed)
                ):
                    continue
                pending.append(hit)
                # untyped, every pending hit is kept: settle once the limit is reached
                if len(pending) >= (64 if typed else limit - len(found)) and settle():
                    break
            else:
                settle()
        rows = self.store.rows([h.id for h in found])
        return self.pb.get("SearchModelsResponse")(
            models=[self.summary(rows[h.id]) for h in found if h.id in rows]
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


def _field_names(schema: ModelSchema, message: str, *, required_only: bool) -> set[str]:
    return {
        f.name
        for f in _fields(schema, message)
        if not (required_only and isinstance(f.type, OptionalType))
    }


def _fits(
    schema: ModelSchema,
    methods: tuple[str, ...],
    produced: Typed | None,
    wanted: Typed | None,
) -> bool:
    """Whether one of `methods` takes `produced` and gives `wanted` (where given)."""
    for name in methods:
        m = schema.method(name)
        if produced is not None and assignable(produced, Typed(schema, MessageType(m.request))):
            continue
        if wanted is not None and assignable(Typed(schema, MessageType(m.response)), wanted):
            continue
        return True
    return False
