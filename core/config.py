"""Settings of each component, as frozen dataclasses validated on creation, and the one
parser of the gRPC addresses they and the clients name (`parse_address`).

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
    "ENV_LIVENESS_TIMEOUT",
    "ENV_LOG_FORMAT",
    "ENV_LOG_LEVEL",
    "ENV_MAX_MESSAGE_MB",
    "ENV_MAX_RESTARTS",
    "ENV_METRICS_PORT",
    "ENV_PORT",
    "ENV_RESTART_BACKOFF",
    "ENV_SERVER",
    "ENV_STARTUP_TIMEOUT",
    "ENV_WORKERS",
    "Address",
    "BrokerConfig",
    "RuntimeConfig",
    "address_problem",
    "parse_address",
]

ENV_HOST = "MODELWIRE_HOST"
ENV_PORT = "MODELWIRE_PORT"
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

DEFAULT_PORT = 50051
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


@dataclass(frozen=True, slots=True)
class RuntimeConfig:
    """How `modelwire serve` runs a bundle.

    Attributes:
        host: address to bind; ``0.0.0.0`` in containers, ``127.0.0.1`` for local use.
        port: port to bind; 0 picks a free one.
        workers: processes serving the same port (SO_REUSEPORT), for CPU-bound models.
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
    """

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
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

    def __post_init__(self) -> None:
        _check_port("port", self.port)
        _check_port("metrics_port", self.metrics_port, allow_none=True)
        if self.metrics_port and self.metrics_port == self.port:
            raise ConfigError(
                "metrics_port", self.metrics_port, "is the gRPC port too; choose another one"
            )
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
    """

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
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

    def __post_init__(self) -> None:
        _check_port("port", self.port)
        _check_port("metrics_port", self.metrics_port, allow_none=True)
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
        init: create a new catalog in `data` if it holds none (else that is an error).
    """

    data: str
    host: str = "127.0.0.1"
    port: int = DEFAULT_CATALOG_PORT
    max_upload_mb: int = 4096
    threads: int = 16
    grace_seconds: float = 10.0
    init: bool = False

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


# gRPC target URIs that name no HOST:PORT modelwire could check (grpc parses them itself)
_GRPC_SCHEMES = frozenset({"dns", "unix", "unix-abstract", "ipv4", "ipv6", "vsock"})


@dataclass(frozen=True, slots=True)
class Address:
    """A gRPC address as given, and its host and port (None for a target URI such as unix:)."""

    text: str
    host: str | None = None
    port: int | None = None


def address_problem(address: str, *, example_port: int = DEFAULT_PORT) -> str | None:
    """Why `address` is not a gRPC address to dial, with the right example; None if it is one.

    HOST:PORT (`[IPV6]:PORT`) with a port from 1 to 65535, or a gRPC target URI
    (`dns:`, `unix:`, `ipv4:`, ...). A URL scheme (`http://`), a missing host or
    port, a space or a bare IPv6 address is a problem; so is a port grpc would
    wrap silently.
    """
    text = address
    scheme, sep, rest = text.partition("://")
    if sep and scheme.lower() not in _GRPC_SCHEMES:
        hostport = rest.split("/", 1)[0] or "localhost"
        if address_problem(hostport) is not None:
            hostport = f"{hostport.rsplit(':', 1)[0] or 'localhost'}:{example_port}"
        return f"expected HOST:PORT, e.g. {hostport} (a gRPC address has no {scheme}:// scheme)"
    if text.partition(":")[0].lower() in _GRPC_SCHEMES:
        return None
    if not text.strip():
        return f"expected HOST:PORT, e.g. localhost:{example_port}"
    if any(c.isspace() for c in text):
        return f"expected HOST:PORT without spaces, e.g. {''.join(text.split())}"
    if text.count(":") > 1 and not text.startswith("["):
        return f"expected [IPV6]:PORT for an IPv6 address, e.g. [::1]:{example_port}"
    host, sep, port = text.rpartition(":")
    if not sep or "]" in port:  # no port at all, or `[::1]`
        if text.isdigit():
            return f"expected HOST:PORT, e.g. localhost:{text}"
        return f"expected HOST:PORT, e.g. {text}:{example_port}"
    if not host:
        return f"expected HOST:PORT, e.g. localhost{text}"
    if not port:
        return f"expected HOST:PORT, e.g. {text}{example_port}"
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        return f"port {port!r} is not 1-65535"
    return None


def parse_address(
    address: str, key: str = "address", source: str = "", *, example_port: int = DEFAULT_PORT
) -> Address:
    """`address` checked (`address_problem`) and split into host and port.

    The one parser of gRPC addresses: `modelwire call` and `health`, `connect()`,
    blueprint `address:` models and the catalog's `--catalog` use it.

    Raises:
        ConfigError: `address` is not one, naming `key` and giving the right example.
    """
    problem = address_problem(address, example_port=example_port)
    if problem is not None:
        raise ConfigError(key, address, problem, source=source)
    host, sep, port = address.rpartition(":")
    if not sep or address.partition(":")[0].lower() in _GRPC_SCHEMES:
        return Address(address)
    return Address(address, host.removeprefix("[").removesuffix("]"), int(port))


def _check_address(address: str, key: str, source: str) -> None:
    """The catalog's address: HOST:PORT, the catalog's port in the example."""
    parse_address(address, key, source, example_port=DEFAULT_CATALOG_PORT)
