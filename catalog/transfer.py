"""Bundles over the wire: the PushBundle upload and the PullBundle download, checked at
both ends.

Bundles travel as their deterministic zip, in 1 MiB chunks, with their size
and sha256 up front; both sides check them. A pull lands in a temp file that is
checked and only then moved into place (or extracted as a bundle directory), so
a cut or corrupted download leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc

from modelwire.bundle import Bundle
from modelwire.bundle.writer import is_bundle_zip, write_dir
from modelwire.catalog.api import chunk_message, chunk_of
from modelwire.catalog.channel import CatalogChannel
from modelwire.catalog.listing import ModelInfo, parse_ref
from modelwire.errors import BundleError, ServiceError, os_reason

__all__ = ["CHUNK", "Progress", "download", "upload"]

CHUNK = 1024 * 1024
_HASH_PIECE = 256 * 1024
Progress = Callable[[int, int], None]  # (bytes done, bytes in all)


def upload(
    conn: CatalogChannel,
    data: bytes | Path,
    name: str,
    version: str,
    *,
    allow_breaking: bool = False,
    progress: Progress | None = None,
) -> tuple[ModelInfo, bool]:
    """Upload a bundle zip (bytes, or a file) as NAME:VERSION; returns (model, created).

    Raises:
        ServiceError: the catalog refused the push (the status says why).
    """
    if isinstance(data, Path):
        size = data.stat().st_size
        digest = _file_sha256(data)
    else:
        size = len(data)
        digest = hashlib.sha256(data).hexdigest()
    header = conn.pb.get("PushBundleRequest")(
        header=conn.pb.get("UploadHeader")(
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

    call: Any = conn.channel.stream_unary(
        conn.method("PushBundle"),
        response_deserializer=conn.pb.get("PushBundleResponse").FromString,
    )
    try:
        reply = call(messages(), metadata=conn.metadata)
    except grpc.RpcError as exc:
        raise conn.error("PushBundle", exc) from None
    return ModelInfo.from_pb(reply.model), bool(reply.created)


def download(
    conn: CatalogChannel,
    ref: str,
    dest: str | os.PathLike[str],
    *,
    progress: Progress | None = None,
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
    call: Any = conn.channel.unary_stream(
        conn.method("PullBundle"),
        request_serializer=lambda m: m.SerializeToString(),
    )
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    except OSError as exc:
        raise BundleError(f"cannot write it ({_os_reason(exc)})", bundle=dest) from exc
    tmp = Path(tmp_name)
    parse = conn.pb.get("PullBundleResponse").FromString
    try:
        info: ModelInfo | None = None
        h = hashlib.sha256()
        size = got = 0
        expected = ""
        with os.fdopen(fd, "wb") as f:
            try:
                for data in call(
                    conn.pb.get("PullBundleRequest")(name=name, version=version),
                    metadata=conn.metadata,
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
                raise conn.error("PullBundle", exc) from None
        if info is None or got != size or h.hexdigest() != expected:
            raise ServiceError(
                f"{conn.address}: the download of {ref} was incomplete or corrupted "
                f"({got} of {size} bytes); pull again",
                target=conn.address,
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


def _extract(zip_path: Path, dest: Path) -> None:
    """Extract a pulled zip as a bundle directory, checked before it replaces `dest`."""
    try:
        files = Bundle(zip_path).files()  # every digest verified, in the zip
    except BundleError as exc:
        raise BundleError(f"the pulled file is not a sound bundle ({exc})", bundle=dest) from exc
    write_dir(files, dest)
