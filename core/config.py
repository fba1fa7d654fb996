"""Settings of each component, as frozen dataclasses validated on creation.

Only the CLI reads flags, `MODELWIRE_*` environment variables and files; library
code receives these objects. Precedence: flag > environment > file > default.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelwire.errors import ConfigError

__all__ = [
    "ENV_CATALOG_PORT",
    "ENV_GRACE",
    "ENV_HOST",
    "ENV_HTTP_PORT",
    "ENV_LOG_FORMAT",
    "ENV_LOG_LEVEL",
    "ENV_MAX_MESSAGE_MB",
    "ENV_METRICS_PORT",
    "ENV_NO_HTTP",
    "ENV_PORT",
    "ENV_SERVER",
    "ENV_STARTUP_TIMEOUT",
    "ENV_WORKERS",
    "BrokerConfig",
    "RuntimeConfig",
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
# the catalog's own port variable: one environment (a shell, a compose file) that runs a
# model and a catalog must not have both bind MODELWIRE_PORT
ENV_CATALOG_PORT = "MODELWIRE_CATALOG_PORT"

DEFAULT_PORT = 50051
DEFAULT_HTTP_PORT = 8080
DEFAULT_MAX_MESSAGE_MB = 256


def _check_port(name: str, value: int | None, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not isinstance(value, int) or not 0 <= value <= 65535:
        raise ConfigError(name, value, "expected a port number from 0 to 65535")


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

    def __post_init__(self) -> None:
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
    """

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    http_port: int | None = DEFAULT_HTTP_PORT
    max_message_mb: int = DEFAULT_MAX_MESSAGE_MB
    metrics_port: int | None = None
    grace_seconds: float = 10.0
    startup_seconds: float = 120.0
    docker: bool = False

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

    @property
    def max_message_bytes(self) -> int:
        return self.max_message_mb * 1024 * 1024


ENV_CATALOG = "MODELWIRE_CATALOG"
ENV_TOKEN = "MODELWIRE_TOKEN"
ENV_CONFIG = "MODELWIRE_CONFIG"
DEFAULT_CATALOG_PORT = 50060


@dataclass(frozen=True, slots=True)
class CatalogConfig:
    """How `modelwire catalog serve` runs.

    Attributes:
        data: the data directory (SQLite database and blobs).
        host, port: where to listen; port 0 picks a free one.
        max_upload_mb: the largest bundle a push may upload, in MiB.
        threads: request threads.
        grace_seconds: how long SIGTERM waits for in-flight calls.
    """

    data: str
    host: str = "127.0.0.1"
    port: int = DEFAULT_CATALOG_PORT
    max_upload_mb: int = 4096
    threads: int = 16
    grace_seconds: float = 10.0

    def __post_init__(self) -> None:
        _check_port("port", self.port)
        if not isinstance(self.max_upload_mb, int) or self.max_upload_mb < 1:
            raise ConfigError("max_upload_mb", self.max_upload_mb, "expected a positive integer")
        if not isinstance(self.threads, int) or not 1 <= self.threads <= 1024:
            raise ConfigError("threads", self.threads, "expected an integer from 1 to 1024")


@dataclass(frozen=True, slots=True)
class CatalogSettings:
    """Where a client finds the catalog, and its token.

    Precedence: explicit values (flags, arguments) > MODELWIRE_CATALOG /
    MODELWIRE_TOKEN > the config file (MODELWIRE_CONFIG, else
    ~/.config/modelwire/config.toml, section [catalog] with `address` and `token`).
    """

    address: str
    token: str
    source: str = "default"

    @classmethod
    def resolve(
        cls,
        address: str | None = None,
        token: str | None = None,
        environ: dict[str, str] | None = None,
    ) -> CatalogSettings:
        """Fill what was not given from the environment, then the config file.

        Raises:
            ConfigError: no catalog address or no token could be found, or the
                config file is not valid TOML.
        """
        import os
        from pathlib import Path

        import tomllib

        env = os.environ if environ is None else environ
        source = "flag" if address else ""
        address = address or env.get(ENV_CATALOG) or None
        if address and not source:
            source = "env"
        token = token or env.get(ENV_TOKEN) or None
        if not address or not token:
            path = Path(
                env.get(ENV_CONFIG) or Path.home() / ".config" / "modelwire" / "config.toml"
            )
            if path.is_file():
                try:
                    data = tomllib.loads(path.read_text())
                except (tomllib.TOMLDecodeError, OSError) as exc:
                    raise ConfigError(
                        str(path), None, f"not a valid config file ({exc})", source="file"
                    ) from exc
                section = data.get("catalog", {})
                if not isinstance(section, dict):
                    raise ConfigError(
                        str(path),
                        None,
                        f"catalog must be a [catalog] table, got {section!r}",
                        source="file",
                    )
                for key in ("address", "token"):
                    if not isinstance(section.get(key, ""), str):
                        raise ConfigError(
                            str(path),
                            None,
                            f"[catalog] {key} must be a string, got {section[key]!r}",
                            source="file",
                        )
                address = address or section.get("address")
                token = token or section.get("token")
                source = source or "file"
        if not address:
            raise ConfigError(
                ENV_CATALOG,
                None,
                f"no catalog address: pass --catalog HOST:PORT, set {ENV_CATALOG}, or put "
                f"it in {path} ([catalog] address = ...)",
                source="default",
            )
        if not token:
            raise ConfigError(
                ENV_TOKEN,
                None,
                f"no catalog token: pass --token, set {ENV_TOKEN}, or put it in {path} "
                "([catalog] token = ...); modelwire catalog user add NAME prints one",
                source="default",
            )
        key = {"flag": "--catalog", "env": ENV_CATALOG}.get(source, "[catalog] address")
        _check_address(str(address), key, source)
        return cls(str(address), str(token), source or "default")


def _check_address(address: str, key: str, source: str) -> None:
    """HOST:PORT with a port from 1 to 65535 (grpc would wrap a larger one silently)."""
    if "://" in address or address.startswith("unix:"):
        return  # a gRPC target URI: grpc checks it
    host, sep, port = address.rpartition(":")
    if not sep or not host or "]" in port:
        raise ConfigError(key, address, "expected HOST:PORT, e.g. localhost:50060", source=source)
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ConfigError(key, address, f"port {port!r} is not 1-65535", source=source)
