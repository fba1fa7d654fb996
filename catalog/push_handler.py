"""The PushBundle handler: check a push at every step, and keep it only once all is sound.

A push is checked before anything is kept: the header (name, version, size,
sha256) first -- the same bytes already stored are a no-op and different bytes
under a stored version AlreadyExists, before the upload is even read -- then
the bytes against the header, then the bundle itself, then its types against
the previous version's. Only then does `Store.commit` make it visible, and a new
version is handed to `on_stored` (the catalog's validation queue).

Failures are raised as the errors of `modelwire.errors`; the servicer answers them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from typing import Any

import grpc
from google.protobuf.message import DecodeError as PbDecodeError

from modelwire.catalog.api import CatalogMessages, chunk_of
from modelwire.catalog.records import (
    ModelRow,
    check_name,
    check_version,
    version_key,
    version_record,
)
from modelwire.catalog.refusals import name_taken, version_taken
from modelwire.catalog.schemas import SchemaCache
from modelwire.catalog.store import Store
from modelwire.catalog.upload import EXPANSION_LIMIT, inspect_bundle
from modelwire.codegen.compat import breaking_changes
from modelwire.codegen.schema import ModelSchema
from modelwire.errors import FailedPrecondition, InvalidRequest, TooLarge

__all__ = ["PushHandler"]

logger = logging.getLogger(__name__)

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class PushHandler:
    """Receives pushes into a `Store`.

    Args:
        store: where a push is kept.
        pb: the catalog API's message classes.
        schemas: the schemas of stored versions (for the compatibility check).
        summary: a stored version as the ModelSummary message the reply carries.
        max_upload_bytes: the largest bundle accepted.
        on_stored: called with the id of each new version once it is visible.
    """

    def __init__(
        self,
        store: Store,
        pb: CatalogMessages,
        schemas: SchemaCache,
        summary: Callable[[ModelRow], Any],
        *,
        max_upload_bytes: int,
        on_stored: Callable[[int], None] | None = None,
    ) -> None:
        self.store = store
        self.pb = pb
        self.schemas = schemas
        self.summary = summary
        self.max_upload = max_upload_bytes
        self.on_stored = on_stored

    def receive(self, requests: Iterator[bytes], viewer: int, user: str) -> bytes:
        """Check and keep one push by `user` (id `viewer`); the serialized reply, or b''
        when the client went away (nothing is kept then)."""
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
        if created and self.on_stored is not None:
            self.on_stored(row.id)
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
        problems = breaking_changes(self.schemas.of(prev), schema)
        if problems:
            listed = "; ".join(problems[:10])
            more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
            raise FailedPrecondition(
                f"{name}:{version} breaks clients of {name}:{prev.version}: {listed}{more}; "
                "push with --allow-breaking (allow_breaking=True) to accept it",
                subject=f"{name}:{version}",
            )
