"""The catalog's client: push, pull, publish, show, search -- and `modelwire.push()`.

Bundles travel as their deterministic zip, in 1 MiB chunks, with their size
and sha256 up front; both sides check them. A pull lands in a temp file that is
checked and only then moved into place (or extracted as a bundle directory).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from modelwire.bundle import Bundle, peek_manifest
from modelwire.bundle.manifest import MANIFEST
from modelwire.bundle.model import Model
from modelwire.bundle.writer import build_files, is_bundle_zip, write_dir, write_zip
from modelwire.catalog.api import CATALOG_SERVICE, catalog_classes, chunk_message, chunk_of
from modelwire.config import CatalogSettings
from modelwire.errors import BundleError, ServiceError, os_reason
from modelwire.hosting.remote import rpc_error

__all__ = [
    "CatalogClient",
    "ModelInfo",
    "Progress",
    "bundle_ref",
    "parse_method_ref",
    "parse_ref",
    "push",
]

CHUNK = 1024 * 1024
_HASH_PIECE = 256 * 1024
_MAX_MESSAGE = 16 * 1024 * 1024
Progress = Callable[[int, int], None]  # (bytes done, bytes in all)


def parse_ref(ref: str) -> tuple[str, str]:
    """`name`, `name:1.2.0` -> (name, version or '')."""
    name, _, version = ref.partition(":")
    if not name:
        raise ValueError(f"{ref!r} is not NAME or NAME:VERSION")
    return name, version


def parse_method_ref(ref: str) -> tuple[str, str, str]:
    """`iris.classify`, `iris:1.2.0.classify` -> (model, version, method)."""
    head, dot, method = ref.rpartition(".")
    if not dot or not head or not method:
        raise ValueError(f"{ref!r} is not MODEL[:VERSION].METHOD")
    model, version = parse_ref(head)
    return model, version, method


@dataclass(frozen=True)
class ModelInfo:
    """A model version as the catalog lists it."""

    name: str
    version: str
    owner: str
    published: bool
    description: str
    category: str
    tags: tuple[str, ...]
    methods: tuple[dict[str, str], ...]
    sha256: str
    size: int
    created: str
    service: str

    @classmethod
    def from_pb(cls, m: Any) -> ModelInfo:
        return cls(
            m.name,
            m.version,
            m.owner,
            m.published,
            m.description,
            m.category,
            tuple(m.tags),
            tuple(
                {
                    "name": x.name,
                    "rpc": x.rpc,
                    "request": x.request,
                    "response": x.response,
                    "doc": x.doc,
                    "input": x.input,
                    "output": x.output,
                }
                for x in m.methods
            ),
            m.sha256,
            m.size,
            m.created,
            m.service,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "owner": self.owner,
            "published": self.published,
            "description": self.description,
            "category": self.category,
            "tags": list(self.tags),
            "methods": list(self.methods),
            "sha256": self.sha256,
            "size": self.size,
            "created": self.created,
            "service": self.service,
        }


class CatalogClient:
    """A connection to a catalog, with a user's token.

    Args:
        settings: the catalog's address and the token (`CatalogSettings.resolve()`).
        timeout: deadline of metadata calls, in seconds; pushes and pulls have none.

    Example:
        >>> with CatalogClient(CatalogSettings.resolve()) as cat:  # doctest: +SKIP
        ...     cat.push("build/iris")
    """

    def __init__(self, settings: CatalogSettings, *, timeout: float = 60.0) -> None:
        self.settings = settings
        self.address = settings.address
        self.timeout = timeout
        self.pb = catalog_classes()
        self.channel = grpc.insecure_channel(
            settings.address,
            options=[
                ("grpc.max_receive_message_length", _MAX_MESSAGE),
                ("grpc.max_send_message_length", _MAX_MESSAGE),
            ],
        )
        self._metadata = (("authorization", f"Bearer {settings.token}"),)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> CatalogClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _error(self, rpc: str, exc: grpc.RpcError) -> ServiceError:
        error = rpc_error(self.address, rpc, exc)
        if error.status != "UNAVAILABLE":
            return error
        return ServiceError(
            f"cannot reach the catalog at {self.address} ({error.details}); "
            "is 'modelwire catalog serve' running there?",
            target=self.address,
            status=error.status,
            details=error.details,
        )

    def _unary(self, rpc: str, request: Any, response: str) -> Any:
        call: Any = self.channel.unary_unary(
            f"/{CATALOG_SERVICE}/{rpc}",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=self.pb.get(response).FromString,
        )
        try:
            return call(request, timeout=self.timeout, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise self._error(rpc, exc) from None

    # ------------------------------------------------------------ push

    def push_bytes(
        self,
        data: bytes | Path,
        name: str,
        version: str,
        *,
        allow_breaking: bool = False,
        progress: Progress | None = None,
    ) -> tuple[ModelInfo, bool]:
        """Upload a bundle zip (bytes, or a file) as NAME:VERSION; returns (model, created)."""
        if isinstance(data, Path):
            size = data.stat().st_size
            digest = _file_sha256(data)
        else:
            size = len(data)
            digest = hashlib.sha256(data).hexdigest()
        header = self.pb.get("PushBundleRequest")(
            header=self.pb.get("UploadHeader")(
                name=name,
                version=version,
                size=size,
                sha256=digest,
                allow_breaking=allow_breaking,
            )
        )

        def messages() -> Iterator[bytes]:
            yield header.SerializeToString()
            sent = 0
            for chunk in _chunks(data):
                yield chunk_message(chunk)
                sent += len(chunk)
                if progress is not None:
                    progress(sent, size)

        call: Any = self.channel.stream_unary(
            f"/{CATALOG_SERVICE}/PushBundle",
            response_deserializer=self.pb.get("PushBundleResponse").FromString,
        )
        try:
            reply = call(messages(), metadata=self._metadata)
        except grpc.RpcError as exc:
            raise self._error("PushBundle", exc) from None
        return ModelInfo.from_pb(reply.model), bool(reply.created)

    def push(
        self,
        bundle: str | os.PathLike[str],
        *,
        allow_breaking: bool = False,
        progress: Progress | None = None,
    ) -> tuple[ModelInfo, bool]:
        """Upload a bundle (directory or zip); its name and version come from its manifest.

        A zip is sent as it is (the catalog checks it); a directory is checked,
        then zipped into a temp file first.

        Raises:
            BundleError: `bundle` is not a bundle.
            ServiceError: the catalog refused the push (the status says why).
        """
        path = Path(bundle)
        if path.is_file():
            m = peek_manifest(path)
            return self.push_bytes(
                path, m.name, m.version, allow_breaking=allow_breaking, progress=progress
            )
        b = Bundle(path)
        with _zipped(b.files()) as zipped:
            return self.push_bytes(
                zipped,
                b.manifest.name,
                b.manifest.version,
                allow_breaking=allow_breaking,
                progress=progress,
            )

    # ------------------------------------------------------------ pull

    def pull(
        self, ref: str, dest: str | os.PathLike[str], *, progress: Progress | None = None
    ) -> ModelInfo:
        """Download NAME[:VERSION] into `dest`: a directory (extracted) or a path ending .zip.

        Raises:
            BundleError: `dest` exists and is not a bundle (it is not overwritten), or
                cannot be written.
            ServiceError: the catalog refused, or the download was cut or corrupted.
        """
        name, version = parse_ref(ref)
        dest = Path(dest)
        zipped = dest.suffix == ".zip"
        if zipped and dest.exists() and not is_bundle_zip(dest):
            raise BundleError(
                "the path exists and is not a bundle zip; refusing to overwrite it "
                "(choose another path or remove it)",
                bundle=dest,
            )
        call: Any = self.channel.unary_stream(
            f"/{CATALOG_SERVICE}/PullBundle",
            request_serializer=lambda m: m.SerializeToString(),
        )
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(
                prefix=f".{dest.name}.", suffix=".part", dir=dest.parent
            )
        except OSError as exc:
            raise BundleError(f"cannot write it ({_os_reason(exc)})", bundle=dest) from exc
        tmp = Path(tmp_name)
        parse = self.pb.get("PullBundleResponse").FromString
        try:
            info: ModelInfo | None = None
            h = hashlib.sha256()
            size = got = 0
            expected = ""
            with os.fdopen(fd, "wb") as f:
                try:
                    for data in call(
                        self.pb.get("PullBundleRequest")(name=name, version=version),
                        metadata=self._metadata,
                    ):
                        chunk = chunk_of(data)
                        if chunk is None:
                            msg: Any = parse(data)
                            if msg.HasField("header"):
                                info = ModelInfo.from_pb(msg.header.model)
                                size, expected = msg.header.size, msg.header.sha256
                                continue
                            chunk = memoryview(msg.chunk)
                        f.write(chunk)
                        h.update(chunk)
                        got += len(chunk)
                        if progress is not None:
                            progress(got, size)
                except grpc.RpcError as exc:
                    raise self._error("PullBundle", exc) from None
            if info is None or got != size or h.hexdigest() != expected:
                raise ServiceError(
                    f"{self.address}: the download of {ref} was incomplete or corrupted "
                    f"({got} of {size} bytes); pull again",
                    target=self.address,
                )
            if zipped:
                os.replace(tmp, dest)
            else:
                _extract(tmp, dest)
            return info
        except OSError as exc:  # a full disk, a file in the way of the bundle directory
            raise BundleError(f"cannot write it ({_os_reason(exc)})", bundle=dest) from exc
        finally:
            tmp.unlink(missing_ok=True)

    def cached(self, ref: str, cache: Path) -> Path:
        """A local bundle directory for NAME[:VERSION], pulled once per digest."""
        info = self.show(ref)[0]
        target = cache / info.sha256
        if (target / MANIFEST).is_file():
            return target
        cache.mkdir(parents=True, exist_ok=True)
        self.pull(f"{info.name}:{info.version}", target)
        return target

    # ------------------------------------------------------------ metadata

    def publish(
        self, ref: str, *, description: str, category: str, tags: Sequence[str] = ()
    ) -> ModelInfo:
        """Make NAME:VERSION public, with a description and a category (both required)."""
        name, version = parse_ref(ref)
        if not version:
            raise ValueError("publish needs NAME:VERSION")
        reply = self._unary(
            "PublishModel",
            self.pb.get("PublishModelRequest")(
                name=name,
                version=version,
                description=description,
                category=category,
                tags=list(tags),
            ),
            "PublishModelResponse",
        )
        return ModelInfo.from_pb(reply.model)

    def show(self, ref: str) -> tuple[ModelInfo, str, dict[str, Any], list[str]]:
        """(model, proto text, manifest, visible versions) of NAME[:VERSION]."""
        name, version = parse_ref(ref)
        reply = self._unary(
            "GetModel",
            self.pb.get("GetModelRequest")(name=name, version=version),
            "GetModelResponse",
        )
        return (
            ModelInfo.from_pb(reply.model),
            reply.proto,
            json.loads(reply.manifest_json),
            list(reply.versions),
        )

    def search(
        self,
        text: str = "",
        *,
        category: str = "",
        tags: Sequence[str] = (),
        accepts: str | None = None,
        produces: str | None = None,
        all_versions: bool = False,
        limit: int = 100,
    ) -> list[ModelInfo]:
        """Search; `accepts`/`produces` are `MODEL[:VERSION].METHOD`."""
        req = self.pb.get("SearchModelsRequest")(
            text=text, category=category, tags=list(tags), all_versions=all_versions, limit=limit
        )
        for field, ref in (("accepts", accepts), ("produces", produces)):
            if ref:
                model, version, method = parse_method_ref(ref)
                getattr(req, field).CopyFrom(
                    self.pb.get("MethodRef")(model=model, version=version, method=method)
                )
        reply = self._unary("SearchModels", req, "SearchModelsResponse")
        return [ModelInfo.from_pb(m) for m in reply.models]


def _chunks(data: bytes | Path) -> Iterator[bytes]:
    if isinstance(data, Path):
        with data.open("rb") as f:
            while chunk := f.read(CHUNK):
                yield chunk
        return
    view = memoryview(data)
    for i in range(0, len(view), CHUNK):
        yield bytes(view[i : i + CHUNK])


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    buf = bytearray(_HASH_PIECE)  # small pieces stay in the CPU cache
    view = memoryview(buf)
    with path.open("rb", buffering=0) as f:
        while n := f.readinto(view):
            h.update(view[:n])
    return h.hexdigest()


def _os_reason(exc: OSError) -> str:
    """The OS's reason, with the path it names unless that is the download's temp file."""
    return os_reason(exc, hide=lambda name: name.endswith(".part"))


def bundle_ref(bundle: str | os.PathLike[str]) -> tuple[str, str]:
    """(name, version) of a bundle directory or zip, from its manifest alone (cheap).

    Raises:
        BundleError: `bundle` is not a bundle.
    """
    m = peek_manifest(bundle)
    return m.name, m.version


@contextlib.contextmanager
def _zipped(files: dict[str, bytes]) -> Iterator[Path]:
    """A bundle's files as a deterministic zip in a temp file, removed afterwards."""
    tmp = Path(tempfile.mkdtemp(prefix="modelwire-push-"))
    try:
        path = tmp / "bundle.zip"
        write_zip(files, path)
        yield path
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _extract(zip_path: Path, dest: Path) -> None:
    """Extract a pulled zip as a bundle directory, checked before it replaces `dest`."""
    try:
        files = Bundle(zip_path).files()  # every digest verified, in the zip
    except BundleError as exc:
        raise BundleError(f"the pulled file is not a sound bundle ({exc})", bundle=dest) from exc
    write_dir(files, dest)


def push(
    model: Model,
    name: str,
    *,
    version: str = "1.0.0",
    catalog: str | None = None,
    token: str | None = None,
    description: str | None = None,
    tags: Sequence[str] = (),
    requirements: Sequence[str] | None = None,
    allow_breaking: bool = False,
) -> ModelInfo:
    """Package `model` and push it to a catalog, private to you until published.

    Args:
        model: the model to push.
        name: its name in the catalog (lower-case letters, digits, '-', '_').
        version: its version; versions are immutable once pushed.
        catalog: the catalog's HOST:PORT; default MODELWIRE_CATALOG, then the
            config file (see `modelwire.config.CatalogSettings`).
        token: your bearer token; default MODELWIRE_TOKEN, then the config file.
        description, tags, requirements: as for `modelwire.dump`.
        allow_breaking: accept a version whose types break the previous one's clients.

    Returns:
        The model version as the catalog now lists it.

    Raises:
        ConfigError: no catalog address or token was given or found.
        ServiceError: the catalog refused the push (its status says why).

    Example:
        >>> push(Model(classify=classify), "iris", version="1.0.0")  # doctest: +SKIP
    """
    settings = CatalogSettings.resolve(catalog, token)
    files = build_files(
        model,
        name,
        version=version,
        description=description,
        tags=tags,
        requirements=requirements,
    )
    with _zipped(files) as zipped, CatalogClient(settings) as client:
        info, _ = client.push_bytes(zipped, name, version, allow_breaking=allow_breaking)
    return info
