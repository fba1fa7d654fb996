"""An upload in progress, and the check that what arrived is a bundle.

    DATA/uploads/<uuid>.part     one file per push being received

An `Upload` writes the pushed bytes to its own file, hashing them on the way,
and holds an exclusive `flock` on it for as long as it lives, so that a catalog
starting beside a running one (or `catalog user add`) only removes the files of
uploads nobody is receiving any more (`clear_stale`).

`inspect_bundle` checks a finished upload the way loading a bundle would
(`modelwire.bundle.Bundle`): a zip holding a valid manifest, every listed file
present with its sha256, nothing unlisted. It streams every entry through zlib
and sha256 in small pieces instead of reading whole files into memory, so a
multi-GB model costs no memory and a zip bomb is refused from its declared sizes
before anything is inflated.

This module stores nothing: `Store.commit` moves a checked upload into place.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import io
import os
import struct
import threading
import uuid
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from modelwire.bundle.manifest import MANIFEST, PROTO, Manifest, listing_problem
from modelwire.errors import BundleError, InvalidRequest, OutOfSpace, TooLarge

__all__ = ["CheckedBundle", "Upload", "clear_stale", "inspect_bundle"]

_PIECE = 128 * 1024  # inflate and hash in pieces that stay in the CPU cache
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")  # zip local file header, 30 bytes
_LOCAL_MAGIC = b"PK\x03\x04"
# a bundle may expand to this many times the upload limit (pickles of zeros compress well)
EXPANSION_LIMIT = 8


class Upload:
    """The bytes of one push: a locked temp file, their running sha256 and size.

    `write` hashes and writes each chunk as it arrives (a writer thread beside the
    receiving one measured slower on a two-core machine: both are CPU-bound).
    `finish` starts the fsync in a thread, so that it overlaps the bundle check;
    `durable` waits for it.

    Args:
        directory: where the temp file goes (the store's `uploads/`).
        limit: the most bytes the upload may hold (TooLarge beyond).
        announced: the size the header announced (InvalidRequest beyond).
    """

    def __init__(self, directory: Path, *, limit: int, announced: int) -> None:
        self.limit = limit
        self.announced = announced
        self.path = directory / f"{uuid.uuid4().hex}.part"
        self._file = self.path.open("xb")
        fcntl.flock(self._file.fileno(), fcntl.LOCK_EX)
        self._hash = hashlib.sha256()
        self.size = 0
        self.sha256 = ""
        self._sync: threading.Thread | None = None
        self._sync_failure: OSError | None = None

    def write(self, chunk: bytes | memoryview) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            raise TooLarge(
                f"the upload exceeds the catalog's limit of {self.limit} bytes "
                "(modelwire catalog serve --max-upload-mb)",
                size=self.size,
                limit=self.limit,
            )
        if self.size > self.announced:
            raise InvalidRequest(
                f"the upload is larger than the {self.announced} bytes its header announced"
            )
        self._hash.update(chunk)
        with _disk_errors():
            self._file.write(chunk)

    def finish(self) -> str:
        """Flush what was written, start the fsync; the hex sha256 of the upload."""
        with _disk_errors():
            self._file.flush()
        self.sha256 = self._hash.hexdigest()
        self._sync = threading.Thread(target=self._fsync, name="catalog-fsync")
        self._sync.start()
        return self.sha256

    def _fsync(self) -> None:
        try:
            os.fsync(self._file.fileno())
        except OSError as exc:
            self._sync_failure = exc

    def durable(self) -> None:
        """Wait until the bytes are on disk (the fsync `finish` started)."""
        if self._sync is None:
            raise RuntimeError("durable() before finish()")
        self._sync.join()
        if self._sync_failure is not None:
            with _disk_errors():
                raise self._sync_failure

    def discard(self) -> None:
        """Remove the temp file, if it is still there (a no-op once it was moved)."""
        if self._sync is not None:
            self._sync.join()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        with contextlib.suppress(OSError):
            self._file.close()  # releases the lock


@contextlib.contextmanager
def _disk_errors() -> Iterator[None]:
    """A full disk is the operator's to fix: OutOfSpace, not an internal failure."""
    try:
        yield
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise OutOfSpace("the catalog's disk is full; ask its operator") from exc
        raise


def clear_stale(directory: Path) -> int:
    """Remove upload files no live upload holds (left by a crash); returns how many."""
    removed = 0
    for stale in directory.glob("*.part"):
        try:
            with stale.open("rb") as f:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                stale.unlink()
                removed += 1
        except (BlockingIOError, FileNotFoundError):
            continue  # being received right now, or already gone
    return removed


@dataclass(frozen=True)
class CheckedBundle:
    """What a valid uploaded bundle tells the catalog."""

    manifest: Manifest
    proto: str


def inspect_bundle(path: Path, *, size_limit: int) -> CheckedBundle:
    """Check an uploaded zip as loading the bundle would; its manifest and proto.

    Raises:
        InvalidRequest: naming what is wrong with the bundle.
        TooLarge: its files expand beyond `size_limit` bytes.
    """
    try:
        with zipfile.ZipFile(path) as zf, path.open("rb", buffering=0) as raw:
            assert isinstance(raw, io.FileIO)
            return _inspect(zf, raw, size_limit)
    except zipfile.BadZipFile:
        raise _invalid("it is not a zip file (push a bundle written by modelwire dump)") from None
    except BundleError as exc:
        message = str(exc)
        prefix = f"bundle {exc.bundle}: "
        raise _invalid(message[len(prefix) :] if message.startswith(prefix) else message) from exc


def _invalid(reason: str) -> InvalidRequest:
    return InvalidRequest(f"the upload is not a valid bundle: {reason}")


def _inspect(zf: zipfile.ZipFile, raw: io.FileIO, size_limit: int) -> CheckedBundle:
    def entry(info: zipfile.ZipInfo, *, keep: bool) -> tuple[str, bytes]:
        """(sha256, bytes if `keep`) of an entry."""
        h = hashlib.sha256()
        data = _read_entry(raw, info, keep=keep, into=h.update)
        return h.hexdigest(), data

    infos = {i.filename: i for i in zf.infolist() if not i.filename.endswith("/")}
    if len(infos) != len([i for i in zf.infolist() if not i.filename.endswith("/")]):
        raise _invalid("the zip holds the same path twice")
    if MANIFEST not in infos:
        raise _invalid(f"the zip holds no {MANIFEST}")
    expanded = sum(i.file_size for i in infos.values())
    if expanded > size_limit:
        raise TooLarge(
            f"the bundle's files add up to {expanded} bytes, over the catalog's limit of "
            f"{size_limit} bytes ({EXPANSION_LIMIT} times --max-upload-mb)",
            size=expanded,
            limit=size_limit,
        )
    _, manifest_bytes = entry(infos[MANIFEST], keep=True)
    manifest = Manifest.parse(manifest_bytes, "")
    problem = listing_problem(manifest)
    if problem is not None:
        raise _invalid(problem)
    for rel in sorted(infos):
        if rel != MANIFEST and rel not in manifest.files:
            raise _invalid(f"file {rel} is not listed in {MANIFEST}")
    proto = b""
    for rel, digest in sorted(manifest.files.items()):
        info = infos.get(rel)
        if info is None:
            raise _invalid(f"file {rel} is missing")
        keep = rel == PROTO
        sha256, data = entry(info, keep=keep)
        if sha256 != digest:
            raise _invalid(f"file {rel} does not match its sha256 in {MANIFEST}")
        if keep:
            proto = data
    try:
        text = proto.decode()
    except UnicodeDecodeError:
        raise _invalid(f"{PROTO} is not UTF-8 text") from None
    return CheckedBundle(manifest, text)


def _read_entry(
    raw: io.FileIO,
    info: zipfile.ZipInfo,
    *,
    keep: bool,
    into: Callable[[bytes | memoryview], object] | None = None,
) -> bytes:
    """Inflate one entry in pieces, feeding `into`; its bytes when `keep` (small files)."""
    raw.seek(info.header_offset)
    header = raw.read(_LOCAL_HEADER.size)
    if header is None or len(header) != _LOCAL_HEADER.size:
        raise _invalid(f"the zip entry of {info.filename} is truncated")
    fields = _LOCAL_HEADER.unpack(header)
    if fields[0] != _LOCAL_MAGIC:
        raise _invalid(f"the zip entry of {info.filename} has a bad header")
    name_len, extra_len = fields[10], fields[11]
    name = raw.read(name_len) or b""
    encoding = "utf-8" if fields[3] & 0x800 else "cp437"
    if name.decode(encoding, errors="replace") != info.orig_filename:
        raise _invalid(f"the zip entry of {info.filename} names another file")
    raw.seek(extra_len, os.SEEK_CUR)
    if info.compress_type == zipfile.ZIP_DEFLATED:
        inflater = zlib.decompressobj(-15)
    elif info.compress_type == zipfile.ZIP_STORED:
        inflater = None
    else:
        raise _invalid(f"{info.filename} uses an unsupported zip compression")
    left = info.compress_size
    out = 0
    kept: list[bytes] = []
    buf = bytearray(_PIECE)
    view = memoryview(buf)
    while left:
        n = raw.readinto(view[: min(left, _PIECE)])
        if not n:
            raise _invalid(f"the zip entry of {info.filename} is truncated")
        left -= n
        try:
            piece: bytes | memoryview = (
                inflater.decompress(view[:n], info.file_size - out + 1)
                if inflater is not None
                else view[:n]
            )
        except zlib.error:
            raise _invalid(f"{info.filename} is not valid deflate data") from None
        out += len(piece)
        if out > info.file_size:
            break
        if into is not None:
            into(piece)
        if keep:
            kept.append(bytes(piece))
    if inflater is not None and out <= info.file_size:
        tail = inflater.flush()
        out += len(tail)
        if into is not None:
            into(tail)
        if keep:
            kept.append(tail)
        if not inflater.eof:
            raise _invalid(f"the zip entry of {info.filename} is not a complete deflate stream")
    if out != info.file_size:
        raise _invalid(f"{info.filename} does not have the size the zip declares")
    return b"".join(kept)
