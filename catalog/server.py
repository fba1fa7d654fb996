"""Run the catalog: `modelwire catalog serve --data DIR`.

CatalogService on the sync service host (SQLite and file I/O are blocking), with
health and reflection, announcing itself in one stable line:

    modelwire catalog listening on 127.0.0.1:50060

and, unless validation is off, the validation of every pushed version beside it
(`modelwire.catalog.validation_jobs`), started once the catalog serves and stopped
after it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from modelwire.catalog.api import CATALOG_FILE, CATALOG_SCHEMA, CATALOG_SERVICE
from modelwire.catalog.service import CatalogServicer
from modelwire.catalog.store import Store
from modelwire.catalog.validation_jobs import Validator, choose_mode
from modelwire.codegen.descriptors import build_file
from modelwire.codegen.lowering import lower
from modelwire.config import CatalogConfig
from modelwire.hosting.binding import check_port_free, format_host
from modelwire.hosting.host import HostSpec, Listen, Service, ServiceHost
from modelwire.hosting.process import tune_malloc
from modelwire.hosting.tls import is_loopback

__all__ = ["LISTENING", "RunningCatalog", "serve", "start"]

logger = logging.getLogger(__name__)

LISTENING = "modelwire catalog listening on"
_MAX_MESSAGE = 16 * 1024 * 1024  # chunks are 1 MiB; headroom for the envelope


@dataclass
class RunningCatalog:
    """A catalog served from this process."""

    host: ServiceHost
    store: Store
    validator: Validator | None = None

    @property
    def port(self) -> int:
        return self.host.port

    @property
    def address(self) -> str:
        return self.host.address

    def stop(self, grace: float | None = None) -> None:
        """NOT_SERVING, let in-flight calls finish (up to `grace` s), stop; a running
        validation goes back to the queue."""
        self.host.stop(grace)
        if self.validator is not None:
            self.validator.stop()


def _validator(
    store: Store, config: CatalogConfig, mode: str, why: str
) -> tuple[Validator | None, Callable[[], None]]:
    """The validation in `mode` (chosen by `choose_mode`: auto is docker when an engine
    answers, else off), and how to announce it in the log once the catalog listens."""
    if mode == "off":
        if config.validation.mode == "auto":
            return None, lambda: logger.warning(
                "pushed versions are not validated: %s (--validate docker needs an engine; "
                "--validate venv validates without a sandbox)",
                why,
            )
        return None, lambda: logger.info("pushed versions are not validated (--validate off)")
    validator = Validator(store, config.validation, mode)
    level = logging.WARNING if mode == "venv" else logging.INFO  # venv: NOT isolated
    return validator, lambda: logger.log(level, "%s", validator.describe())


def start(config: CatalogConfig) -> RunningCatalog:
    """Serve a catalog from this process (tests and embedding use this).

    Raises:
        ConfigError: `config.data` holds no catalog and `config.init` is not set, the
            data directory cannot be used, the port is taken, or docker validation was
            asked for and no engine answers.
    """
    check_port_free(config.host, config.port)  # before a new catalog is made for nothing
    mode, why = choose_mode(config.validation.mode)  # likewise: docker without an engine
    store = Store(config.data, create=config.init)
    if store.created:
        logger.info("created a new catalog in %s", config.data, extra={"data": config.data})
    uploads, blobs = store.recover()
    if uploads or blobs:
        logger.warning(
            "removed %d unfinished upload(s) and %d orphan blob(s) left by a crash",
            uploads,
            blobs,
            extra={"data": config.data},
        )
    validator, announce_validation = _validator(store, config, mode, why)
    servicer = CatalogServicer(
        store, max_upload_bytes=config.max_upload_mb * 1024 * 1024, validator=validator
    )
    spec = HostSpec(
        listening=LISTENING,
        services=(
            Service(
                CATALOG_SERVICE,
                servicer.generic_handler(),
                build_file(lower(CATALOG_SCHEMA), CATALOG_FILE),
            ),
        ),
        listen=Listen(
            config.host, config.port, _MAX_MESSAGE, threads=config.threads, tls=config.tls
        ),
        grace=config.grace_seconds,
    )
    if config.tls is None and not is_loopback(f"{format_host(config.host)}:{config.port}"):
        logger.warning(
            "serving the catalog on %s without TLS: tokens cross the network in plaintext; "
            "give --tls-cert and --tls-key",
            config.host,
        )
    running = RunningCatalog(ServiceHost(spec).start(), store, validator)
    announce_validation()
    if validator is not None:
        validator.start()
    return running


def serve(config: CatalogConfig, *, announce: Callable[[str], None] | None = None) -> int:
    """Serve until SIGTERM/SIGINT; returns the exit status."""
    tune_malloc()  # 1 MiB chunks stay on the heap instead of an mmap/munmap each
    running = start(config)
    logger.info("catalog data in %s", config.data, extra={"data": config.data})
    try:
        running.host.run(announce)
    finally:
        if running.validator is not None:
            running.validator.stop()
    return 0
