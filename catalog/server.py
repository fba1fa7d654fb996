"""Run the catalog: `modelwire catalog serve --data DIR`.

A sync gRPC server (SQLite and file I/O are blocking) with CatalogService,
health and reflection, announcing itself in one stable line:

    modelwire catalog listening on 127.0.0.1:50060
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from modelwire.catalog.api import CATALOG_FILE, CATALOG_SCHEMA, CATALOG_SERVICE
from modelwire.catalog.service import CatalogServicer
from modelwire.catalog.store import Store
from modelwire.codegen.descriptors import build_file
from modelwire.codegen.schema import lower
from modelwire.config import CatalogConfig
from modelwire.hosting.binding import bind, check_port_free, connect_host, format_host, grpc_options
from modelwire.hosting.health import HealthServicer
from modelwire.hosting.process import tune_malloc, wait_for_signal
from modelwire.hosting.reflection import enable_reflection

__all__ = ["LISTENING", "RunningCatalog", "serve", "start"]

logger = logging.getLogger(__name__)

LISTENING = "modelwire catalog listening on"


@dataclass
class RunningCatalog:
    server: grpc.Server
    port: int
    host: str
    store: Store
    health: HealthServicer

    @property
    def address(self) -> str:
        return f"{format_host(self.host)}:{self.port}"

    def stop(self, grace: float | None = None) -> None:
        self.health.enter_graceful_shutdown()
        self.server.stop(grace).wait()


def start(config: CatalogConfig) -> RunningCatalog:
    """Serve a catalog from this process (tests and embedding use this).

    Raises:
        ConfigError: `config.data` holds no catalog and `config.init` is not set, or
            the port is taken.
    """
    check_port_free(config.host, config.port)  # before a new catalog is made for nothing
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
    servicer = CatalogServicer(store, max_upload_bytes=config.max_upload_mb * 1024 * 1024)
    # chunks are 1 MiB; headroom for the envelope
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=config.threads, thread_name_prefix="catalog"),
        options=grpc_options(16 * 1024 * 1024),
    )
    server.add_generic_rpc_handlers((servicer.generic_handler(),))
    health = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    enable_reflection(server, [CATALOG_SERVICE], [build_file(lower(CATALOG_SCHEMA), CATALOG_FILE)])
    port = bind(server, f"{format_host(config.host)}:{config.port}")
    server.start()
    for name in ("", CATALOG_SERVICE):
        health.set(name, health_pb2.HealthCheckResponse.SERVING)
    host = connect_host(config.host)
    return RunningCatalog(server, port, host, store, health)


def serve(config: CatalogConfig, *, announce: Callable[[str], None] | None = None) -> int:
    """Serve until SIGTERM/SIGINT; returns the exit status."""
    tune_malloc()  # 1 MiB chunks stay on the heap instead of an mmap/munmap each
    running = start(config)
    logger.info("catalog data in %s", config.data, extra={"data": config.data})

    def ready() -> None:
        if announce is not None:
            announce(f"{LISTENING} {format_host(config.host)}:{running.port}")

    signum = wait_for_signal(ready)
    logger.info("%s received: stopping", signal.Signals(signum).name)
    running.stop(config.grace_seconds)
    return 0
