"""The catalog's client: push, pull, publish, show, search -- and `modelwire.push()`.

`CatalogClient` is what the CLI, the broker's catalog models and `modelwire.push()`
use: the queries are here, the streaming of bundles is `modelwire.catalog.transfer`,
the connection and its errors `modelwire.catalog.channel`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from modelwire.bundle import Bundle, peek_manifest
from modelwire.bundle.manifest import MANIFEST
from modelwire.bundle.model import Model
from modelwire.bundle.writer import build_files, script_running, write_zip
from modelwire.catalog.channel import CatalogChannel
from modelwire.catalog.listing import ModelInfo, ValidationInfo, parse_method_ref, parse_ref
from modelwire.catalog.transfer import Progress, download, upload
from modelwire.config import CatalogSettings
from modelwire.errors import ModelwireError

__all__ = [
    "CatalogClient",
    "ModelInfo",
    "Progress",
    "ValidationInfo",
    "bundle_ref",
    "parse_method_ref",
    "parse_ref",
    "push",
]


class CatalogClient(CatalogChannel):
    """A connection to a catalog, with a user's token.

    Args:
        settings: the catalog's address and the token (`CatalogSettings.resolve()`).
        timeout: deadline of metadata calls, in seconds; pushes and pulls have none.

    Example:
        >>> with CatalogClient(CatalogSettings.resolve()) as cat:  # doctest: +SKIP
        ...     cat.push("build/iris")
    """

    def __enter__(self) -> CatalogClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
        return upload(self, data, name, version, allow_breaking=allow_breaking, progress=progress)

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
        return download(self, ref, dest, progress=progress)

    def cached(self, ref: str, cache: Path) -> Path:
        """A local bundle directory for NAME[:VERSION], pulled once per digest."""
        return self.fetch(ref, cache)[0]

    def fetch(self, ref: str, cache: Path) -> tuple[Path, ModelInfo]:
        """`cached`, and the version as the catalog lists it (its validation included)."""
        info = self.show(ref)[0]
        target = cache / info.sha256
        if (target / MANIFEST).is_file():
            return target, info
        cache.mkdir(parents=True, exist_ok=True)
        self.pull(f"{info.name}:{info.version}", target)
        return target, info

    # ------------------------------------------------------------ metadata

    def publish(
        self,
        ref: str,
        *,
        description: str,
        category: str,
        tags: Sequence[str] = (),
        force: bool = False,
    ) -> ModelInfo:
        """Make NAME:VERSION public, with a description and a category (both required).

        A version whose validation failed or is still pending is refused (a ServiceError
        with FAILED_PRECONDITION saying why) unless `force`, which the catalog records.
        """
        name, version = parse_ref(ref)
        if not version:
            raise ValueError("publish needs NAME:VERSION")
        reply = self.unary(
            "PublishModel",
            self.pb.get("PublishModelRequest")(
                name=name,
                version=version,
                description=description,
                category=category,
                tags=list(tags),
                force=force,
            ),
            "PublishModelResponse",
        )
        return ModelInfo.from_pb(reply.model)

    def show(self, ref: str) -> tuple[ModelInfo, str, dict[str, Any], list[str]]:
        """(model, proto text, manifest, visible versions) of NAME[:VERSION]."""
        model, proto, manifest, versions, _ = self.details(ref)
        return model, proto, manifest, versions

    def validation(self, ref: str) -> tuple[ModelInfo, ValidationInfo]:
        """NAME[:VERSION] and its validation (status, report, what a pending one waits for)."""
        reply = self._get(ref)
        return ModelInfo.from_pb(reply.model), ValidationInfo.from_pb(reply.validation)

    def details(self, ref: str) -> tuple[ModelInfo, str, dict[str, Any], list[str], ValidationInfo]:
        """`show`'s answer and the version's validation, in one call."""
        reply = self._get(ref)
        return (
            ModelInfo.from_pb(reply.model),
            reply.proto,
            json.loads(reply.manifest_json),
            list(reply.versions),
            ValidationInfo.from_pb(reply.validation),
        )

    def wait_validated(
        self, ref: str, timeout: float, *, interval: float = 1.0
    ) -> tuple[ModelInfo, ValidationInfo]:
        """Poll until the validation of NAME[:VERSION] is no longer pending, or `timeout`
        seconds passed; the last answer."""
        deadline = time.monotonic() + timeout
        while True:
            info, validation = self.validation(ref)
            if validation.status != "pending" or time.monotonic() >= deadline:
                return info, validation
            time.sleep(min(interval, max(0.0, deadline - time.monotonic())))

    def _get(self, ref: str) -> Any:
        name, version = parse_ref(ref)
        return self.unary(
            "GetModel",
            self.pb.get("GetModelRequest")(name=name, version=version),
            "GetModelResponse",
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
        validated: bool = False,
    ) -> list[ModelInfo]:
        """Search; `accepts`/`produces` are `MODEL[:VERSION].METHOD`; `validated`: only
        versions whose validation passed."""
        req = self.pb.get("SearchModelsRequest")(
            text=text,
            category=category,
            tags=list(tags),
            all_versions=all_versions,
            limit=limit,
            validated=validated,
        )
        for field, ref in (("accepts", accepts), ("produces", produces)):
            if ref:
                model, version, method = parse_method_ref(ref)
                getattr(req, field).CopyFrom(
                    self.pb.get("MethodRef")(model=model, version=version, method=method)
                )
        reply = self.unary("SearchModels", req, "SearchModelsResponse")
        return [ModelInfo.from_pb(m) for m in reply.models]


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
    examples: Mapping[str, Sequence[Any]] | None = None,
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
        description, tags, requirements, examples: as for `modelwire.dump` (the
            examples recorded with the model's answers, which the catalog's validation
            replays).
        allow_breaking: accept a version whose types break the previous one's clients.

    Returns:
        The model version as the catalog now lists it.

    Raises:
        ConfigError: no catalog address or token was given or found.
        ServiceError: the catalog refused the push (its status says why).
        ModelwireError: called by a model file that `modelwire dump` is running: the
            command writes only its `-o`, and a pushed version cannot be taken back.

    Example:
        >>> push(Model(classify=classify), "iris", version="1.0.0")  # doctest: +SKIP
    """
    if script_running() is not None:
        raise ModelwireError(
            "push() does not run under modelwire dump, which writes only its -o; "
            'guard the call with `if __name__ == "__main__":`, or push the bundle '
            "with modelwire push"
        )
    settings = CatalogSettings.resolve(catalog, token)
    files = build_files(
        model,
        name,
        version=version,
        description=description,
        tags=tags,
        requirements=requirements,
        examples=examples,
    )
    with _zipped(files) as zipped, CatalogClient(settings) as client:
        info, _ = client.push_bytes(zipped, name, version, allow_breaking=allow_breaking)
    return info
