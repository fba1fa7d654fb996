"""Find each blueprint model's schema: from its bundle, its running service, or a catalog.

`bundle:` models are read from their manifest (nothing is unpickled or run);
`address:` models are asked through server reflection, and, when they are
modelwire services, for their manifest (which adds Tensor dtypes and Python
parameter names); `catalog:` models are pulled by the `CatalogResolver`, and one whose
version has not passed the catalog's validation is a log warning naming its status.
Problems become MW105 diagnostics at the model's line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from modelwire.broker.blueprint import Blueprint, ModelRef
from modelwire.bundle import read_manifest
from modelwire.codegen.descriptors import schema_from_descriptor
from modelwire.codegen.schema import ModelSchema
from modelwire.config import ClientTls
from modelwire.diagnostics import Diagnostic
from modelwire.errors import BundleError, ModelwireError, ServiceError
from modelwire.hosting.remote import fetch_info, reflect, wait_ready
from modelwire.hosting.tls import open_channel

__all__ = ["CatalogBundle", "CatalogResolver", "Resolved", "resolve", "schema_at"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CatalogBundle:
    """A `catalog:` model pulled into a local bundle.

    Attributes:
        path: the local bundle.
        ref: the NAME:VERSION the reference resolved to.
        validation: what the catalog says of its validation: passed, failed, pending or
            unvalidated ("" from a catalog that does not validate at all).
    """

    path: Path
    ref: str
    validation: str


# A catalog hook: `ref` -> the local bundle it was pulled into (cli/_kit.py makes one).
CatalogResolver = Callable[[str], CatalogBundle]


@dataclass
class Resolved:
    schemas: dict[str, ModelSchema] = field(default_factory=dict)
    bundles: dict[str, Path] = field(default_factory=dict)  # models to start locally
    addresses: dict[str, str] = field(default_factory=dict)  # models already running
    diagnostics: list[Diagnostic] = field(default_factory=list)


def schema_at(address: str, *, timeout: float = 5.0, tls: ClientTls | None = None) -> ModelSchema:
    """The schema of the service running at `address`, read over gRPC (TLS with `tls`).

    Raises:
        ServiceError: it cannot be reached or has no usable schema.
    """
    with open_channel(address, tls) as channel:
        wait_ready(channel, address, timeout, tls=tls)
        found = reflect(channel, address)
        manifest = fetch_info(channel)
        if manifest is not None and manifest.get("service") == found.service:
            return ModelSchema.from_json(manifest["schema"])
        short = found.service.rsplit(".", 1)[-1]
        try:
            return schema_from_descriptor(found.file, service=short)
        except ValueError as exc:
            raise ServiceError(f"{address}: {exc}", target=address) from None


def _one(m: ModelRef, catalog: CatalogResolver | None, out: Resolved) -> None:
    def problem(text: str, help: str | None = None) -> None:
        out.diagnostics.append(
            Diagnostic("MW105", f"model {m.name!r}: {text}", m.location, help=help)
        )

    if m.kind == "address":
        try:
            out.schemas[m.name] = schema_at(m.value, tls=m.tls)
        except ModelwireError as exc:
            problem(str(exc), "start the service first, or use 'bundle:' to have it started")
            return
        out.addresses[m.name] = m.value
        return
    if m.kind == "catalog":
        if catalog is None:
            problem(
                f"catalog reference {m.value!r} needs a catalog",
                "set MODELWIRE_CATALOG and MODELWIRE_TOKEN, or use 'bundle:'",
            )
            return
        try:
            found = catalog(m.value)
        except ModelwireError as exc:
            problem(str(exc))
            return
        path = found.path
        if found.validation != "passed":
            logger.warning(
                "model %r: catalog version %s is not validated (its validation: %s)",
                m.name,
                found.ref,
                found.validation or "unvalidated",
                extra={"model": m.name},
            )
    else:
        assert m.path is not None
        path = m.path
    try:
        manifest = read_manifest(path)
    except BundleError as exc:
        problem(str(exc), "dump the model there first (modelwire dump)")
        return
    out.schemas[m.name] = manifest.schema
    out.bundles[m.name] = path


def resolve(bp: Blueprint, *, catalog: CatalogResolver | None = None) -> Resolved:
    """Resolve every model of a blueprint; problems are collected, not raised.

    Running services (`address:`) are asked all at once, so several that do not answer
    cost one wait, not one each; the results are merged in the blueprint's order.
    """
    from concurrent.futures import ThreadPoolExecutor

    models = list(bp.models.values())
    parts = [Resolved() for _ in models]
    remote = [i for i, m in enumerate(models) if m.kind == "address"]
    with ThreadPoolExecutor(max_workers=max(1, min(16, len(remote)))) as pool:
        asked = [pool.submit(_one, models[i], catalog, parts[i]) for i in remote]
        for i, m in enumerate(models):
            if m.kind != "address":
                _one(m, catalog, parts[i])
        for future in asked:
            future.result()
    out = Resolved()
    for part in parts:
        out.schemas.update(part.schemas)
        out.bundles.update(part.bundles)
        out.addresses.update(part.addresses)
        out.diagnostics.extend(part.diagnostics)
    return out
