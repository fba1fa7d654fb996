"""Settings of each component, as frozen dataclasses validated on creation (the gRPC
addresses they name are parsed by `modelwire.addresses`, re-exported here).

Only the CLI reads flags, `MODELWIRE_*` environment variables and files; library
code receives these objects. Precedence: flag > environment > file > default.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from modelwire.addresses import (
    DEFAULT_CATALOG_PORT,
    DEFAULT_HTTP_PORT,
    DEFAULT_PORT,
    Address,
    address_problem,
    parse_address,
)
from modelwire.client_config import (
    ENV_CATALOG,
    ENV_CATALOG_INSECURE,
    ENV_CONFIG,
    ENV_TOKEN,
    CatalogSettings,
)
from modelwire.errors import ConfigError
from modelwire.tls_config import (
    ENV_TLS,
    ENV_TLS_CA,
    ENV_TLS_CERT,
    ENV_TLS_CLIENT_CA,
    ENV_TLS_CLIENT_CERT,
    ENV_TLS_CLIENT_KEY,
    ENV_TLS_KEY,
    ENV_TLS_SERVER_NAME,
    ClientTls,
    ServerTls,
)

__all__ = [
    "DEFAULT_CATALOG_PORT",
    "DEFAULT_HTTP_PORT",
    "DEFAULT_PORT",
    "ENV_CATALOG",
    "ENV_CATALOG_INSECURE",
    "ENV_CATALOG_PORT",
    "ENV_CONFIG",
    "ENV_GRACE",
    "ENV_HOST",
    "ENV_HTTP_PORT",
    "ENV_LIVENESS_TIMEOUT",
    "ENV_LOG_FORMAT",
    "ENV_LOG_LEVEL",
    "ENV_MAX_MESSAGE_MB",
    "ENV_MAX_RESTARTS",
    "ENV_METRICS_PORT",
    "ENV_NO_HTTP",
    "ENV_PORT",
    "ENV_RESTART_BACKOFF",
    "ENV_SERVER",
    "ENV_STARTUP_TIMEOUT",
    "ENV_TLS",
    "ENV_TLS_CA",
    "ENV_TLS_CERT",
    "ENV_TLS_CLIENT_CA",
    "ENV_TLS_CLIENT_CERT",
    "ENV_TLS_CLIENT_KEY",
    "ENV_TLS_KEY",
    "ENV_TLS_SERVER_NAME",
    "ENV_TOKEN",
    "ENV_WORKERS",
    "VALIDATION_MODES",
    "Address",
    "BrokerConfig",
    "CatalogSettings",
    "ClientTls",
    "RuntimeConfig",
    "ServerTls",
    "ValidationConfig",
    "address_problem",
    "parse_address",
]

ENV_HOST = "MODELWIRE_HOST"
ENV_PORT = "MODELWIRE_PORT"
ENV_HTTP_PORT = "MODELWIRE_HTTP_PORT"
ENV_NO_HTTP = "MODELWIRE_NO_HTTP"
ENV_WORKERS = "MODELWIRE_WORKERS"
ENV_METRICS_PORT = "MODELWIRE_METRICS_PORT"
ENV_MAX_MESSAGE_MB = "MODELWIRE_MAX_MESSAGE_MB"
ENV_SERVER = "MODELWIRE_SERVER"
ENV_LOG_LEVEL = "MODELWIRE_LOG_LEVEL"
ENV_LOG_FORMAT = "MODELWIRE_LOG_FORMAT"
ENV_GRACE = "MODELWIRE_GRACE"
ENV_STARTUP_TIMEOUT = "MODELWIRE_STARTUP_TIMEOUT"
# supervision: `run` of its models, `serve --workers` of its workers
ENV_RESTART_BACKOFF = "MODELWIRE_RESTART_BACKOFF"
ENV_MAX_RESTARTS = "MODELWIRE_MAX_RESTARTS"
ENV_LIVENESS_TIMEOUT = "MODELWIRE_LIVENESS_TIMEOUT"
# the catalog's own port variable: one environment (a shell, a compose file) that runs a
# model and a catalog must not have both bind MODELWIRE_PORT
ENV_CATALOG_PORT = "MODELWIRE_CATALOG_PORT"

DEFAULT_MAX_MESSAGE_MB = 256
DEFAULT_RESTART_BACKOFF = 0.5
DEFAULT_MAX_RESTARTS = 5
DEFAULT_LIVENESS = 3.0


def _check_port(name: str, value: int | None, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not isinstance(value, int) or not 0 <= value <= 65535:
        raise ConfigError(name, value, "expected a port number from 0 to 65535")


def _check_supervision(backoff: float, max_restarts: int, liveness: float) -> None:
    if backoff < 0:
        raise ConfigError("restart_backoff", backoff, "must not be negative")
    if not isinstance(max_restarts, int) or not 0 <= max_restarts <= 1000:
        raise ConfigError("max_restarts", max_restarts, "expected an integer from 0 to 1000")
    if liveness <= 0:
        raise ConfigError("liveness_seconds", liveness, "must be positive")


def _check_ports(port: int, http_port: int | None, metrics_port: int | None) -> None:
    """The ports given, and no fixed port twice (0 picks a free one, so 0 may repeat)."""
    _check_port("port", port)
    _check_port("http_port", http_port, allow_none=True)
    _check_port("metrics_port", metrics_port, allow_none=True)
    if http_port and http_port == port:
        raise ConfigError("http_port", http_port, "is the gRPC port too; choose another one")
    if metrics_port and metrics_port == port:
        raise ConfigError("metrics_port", metrics_port, "is the gRPC port too; choose another one")
    if metrics_port and metrics_port == http_port:
        raise ConfigError("metrics_port", metrics_port, "is the HTTP port too; choose another one")


@dataclass(frozen=True, slots=True)
class RuntimeConfig:
    """How `modelwire serve` runs a bundle.

    Attributes:
        host: address to bind; ``0.0.0.0`` in containers, ``127.0.0.1`` for local use.
        port: port to bind; 0 picks a free one.
        http_port: port of the HTTP face (Connect, the Acumos contract, /docs);
            0 picks a free one, None serves no HTTP.
        workers: processes serving the same ports (SO_REUSEPORT), for CPU-bound models.
        threads: request threads per worker (sync server).
        server: ``sync`` (thread pool; lowest latency) or ``aio`` (asyncio; the model
            runs on the event loop, best throughput for fast models).
        max_message_mb: largest request or response, in MiB.
        metrics_port: port for Prometheus metrics over HTTP; None turns them off.
        grace_seconds: how long SIGTERM waits for in-flight calls.
        access_log: log one line per call.
        restart_backoff: with several workers, seconds before the second restart of a
            worker in a row (the first after a good run is at once), doubled each time.
        max_restarts: failed restarts of a worker in a row before `serve` gives up on
            it; 0 never restarts a worker.
        liveness_seconds: how long a worker may leave its health checks unanswered
            before it is killed and replaced.
        tls: the certificate both faces (and metrics) present; None: plaintext.
    """

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    http_port: int | None = DEFAULT_HTTP_PORT
    workers: int = 1
    threads: int = 8
    server: str = "sync"
    max_message_mb: int = DEFAULT_MAX_MESSAGE_MB
    metrics_port: int | None = None
    grace_seconds: float = 10.0
    access_log: bool = False
    restart_backoff: float = DEFAULT_RESTART_BACKOFF
    max_restarts: int = DEFAULT_MAX_RESTARTS
    liveness_seconds: float = DEFAULT_LIVENESS
    tls: ServerTls | None = None

    def __post_init__(self) -> None:
        # a worker gets its config as JSON (dataclasses.asdict): the TLS table is a dict
        object.__setattr__(self, "tls", ServerTls.coerce(self.tls))
        _check_ports(self.port, self.http_port, self.metrics_port)
        if not isinstance(self.workers, int) or not 1 <= self.workers <= 256:
            raise ConfigError("workers", self.workers, "expected an integer from 1 to 256")
        if not isinstance(self.threads, int) or not 1 <= self.threads <= 1024:
            raise ConfigError("threads", self.threads, "expected an integer from 1 to 1024")
        if self.server not in ("sync", "aio"):
            raise ConfigError("server", self.server, "expected 'sync' or 'aio'")
        if not isinstance(self.max_message_mb, int) or not 1 <= self.max_message_mb <= 2047:
            raise ConfigError(
                "max_message_mb", self.max_message_mb, "expected an integer from 1 to 2047"
            )
        if self.grace_seconds < 0:
            raise ConfigError("grace_seconds", self.grace_seconds, "must not be negative")
        _check_supervision(self.restart_backoff, self.max_restarts, self.liveness_seconds)

    @property
    def max_message_bytes(self) -> int:
        return self.max_message_mb * 1024 * 1024

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class BrokerConfig:
    """How `modelwire run` serves a solution.

    Attributes:
        host: address the solution binds.
        port: the solution's port; 0 picks a free one.
        http_port: the solution's HTTP port; 0 picks a free one, None serves no HTTP.
        max_message_mb: largest message to or from the solution and its models, in MiB.
        metrics_port: port for Prometheus metrics over HTTP; None turns them off.
        grace_seconds: how long SIGTERM waits for in-flight calls.
        startup_seconds: how long to wait for the models to report SERVING.
        docker: start bundle models as containers instead of local processes.
        fuse: run every bundle model that can be fused inside the broker (`run --fuse`),
            as a blueprint's `fuse: true` does.
        restart_backoff: seconds before the second restart of a model in a row (the
            first after a good run is at once), doubled for each further one.
        max_restarts: failed restarts of a model in a row before it is reported failed;
            0 never restarts a model.
        liveness_seconds: how long a model may leave its health checks unanswered
            before it is killed and restarted.
        failure_log_seconds: a failure that repeats is logged once per this interval,
            with its count.
        tls: the certificate the solution's faces present; None: plaintext.
    """

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    http_port: int | None = DEFAULT_HTTP_PORT
    max_message_mb: int = DEFAULT_MAX_MESSAGE_MB
    metrics_port: int | None = None
    grace_seconds: float = 10.0
    startup_seconds: float = 120.0
    docker: bool = False
    restart_backoff: float = DEFAULT_RESTART_BACKOFF
    max_restarts: int = DEFAULT_MAX_RESTARTS
    liveness_seconds: float = DEFAULT_LIVENESS
    failure_log_seconds: float = 10.0
    fuse: bool = False
    tls: ServerTls | None = None

    def __post_init__(self) -> None:
        _check_ports(self.port, self.http_port, self.metrics_port)
        if not isinstance(self.max_message_mb, int) or not 1 <= self.max_message_mb <= 2047:
            raise ConfigError(
                "max_message_mb", self.max_message_mb, "expected an integer from 1 to 2047"
            )
        if self.grace_seconds < 0:
            raise ConfigError("grace_seconds", self.grace_seconds, "must not be negative")
        if self.startup_seconds <= 0:
            raise ConfigError("startup_seconds", self.startup_seconds, "must be positive")
        _check_supervision(self.restart_backoff, self.max_restarts, self.liveness_seconds)
        if self.failure_log_seconds <= 0:
            raise ConfigError("failure_log_seconds", self.failure_log_seconds, "must be positive")

    @property
    def max_message_bytes(self) -> int:
        return self.max_message_mb * 1024 * 1024


# how the catalog validates pushed versions; `auto`: docker when an engine answers, else off
VALIDATION_MODES = ("auto", "docker", "venv", "off")


@dataclass(frozen=True, slots=True)
class ValidationConfig:
    """How the catalog validates every pushed version (`catalog serve --validate`).

    Attributes:
        mode: ``docker`` (the bundle's image as a sandbox), ``venv`` (a fresh venv on this
            machine: less isolated), ``off``, or ``auto`` (docker when an engine answers,
            else off: venv runs pushed code unconfined, so only an operator turns it on).
        memory: the model's memory limit, in bytes.
        cpus: CPUs the container may use (docker).
        load_timeout: seconds the model has to report SERVING.
        call_timeout: seconds each example call may take.
        run_timeout: seconds loading and calling may take together.
        job_timeout: seconds one validation may take in all, building its environment
            included; then it is stopped and fails.
        repeat: times each example is sent.
        image_prefix: the prefix of the validation images (docker); the catalog removes
            all but the `keep_images` newest.
        keep_images: validation images kept for reuse (their layers speed up the next
            build of a similar bundle).
    """

    mode: str = "off"
    memory: int = 2 << 30
    cpus: float = 1.0
    load_timeout: float = 120.0
    call_timeout: float = 30.0
    run_timeout: float = 600.0
    job_timeout: float = 1800.0
    repeat: int = 3
    image_prefix: str = "modelwire-validation"
    keep_images: int = 3

    def __post_init__(self) -> None:
        if self.mode not in VALIDATION_MODES:
            raise ConfigError(
                "validate", self.mode, f"expected one of {', '.join(VALIDATION_MODES)}"
            )
        if not isinstance(self.memory, int) or self.memory < 64 << 20:
            raise ConfigError("validate_memory", self.memory, "expected at least 64 MiB, in bytes")
        for name in ("cpus", "load_timeout", "call_timeout", "run_timeout", "job_timeout"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"validate_{name}", getattr(self, name), "must be positive")
        if self.job_timeout <= self.run_timeout:
            raise ConfigError(
                "validate_job_timeout",
                self.job_timeout,
                f"must be longer than the run's timeout ({self.run_timeout:g} s): it includes it",
            )
        if not isinstance(self.repeat, int) or not 1 <= self.repeat <= 10000:
            raise ConfigError("validate_repeat", self.repeat, "expected an integer from 1 to 10000")
        if not self.image_prefix or self.image_prefix != self.image_prefix.strip():
            raise ConfigError("image_prefix", self.image_prefix, "expected a non-empty name")
        if not isinstance(self.keep_images, int) or self.keep_images < 0:
            raise ConfigError("keep_images", self.keep_images, "expected 0 or more")


@dataclass(frozen=True, slots=True)
class CatalogConfig:
    """How `modelwire catalog serve` runs.

    Attributes:
        data: the data directory (SQLite database and blobs).
        host, port: where to listen; port 0 picks a free one.
        max_upload_mb: the largest bundle a push may upload, in MiB.
        threads: request threads.
        grace_seconds: how long SIGTERM waits for in-flight calls.
        init: create a new catalog in `data` if it holds none (else that is an error).
        validation: how pushed versions are validated (off unless told).
        tls: the certificate the catalog presents; None: plaintext.
    """

    data: str
    host: str = "127.0.0.1"
    port: int = DEFAULT_CATALOG_PORT
    max_upload_mb: int = 4096
    threads: int = 16
    grace_seconds: float = 10.0
    init: bool = False
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    tls: ServerTls | None = None

    def __post_init__(self) -> None:
        _check_port("port", self.port)
        if not isinstance(self.max_upload_mb, int) or self.max_upload_mb < 1:
            raise ConfigError("max_upload_mb", self.max_upload_mb, "expected a positive integer")
        if not isinstance(self.threads, int) or not 1 <= self.threads <= 1024:
            raise ConfigError("threads", self.threads, "expected an integer from 1 to 1024")
