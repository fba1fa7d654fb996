"""Options several commands share, each declared once: flags, type, default, env var, help.

`serve`, `run`, `catalog serve` and `export` (and `dump`/`build` for logging) take
these from here (`run` and `serve` also share the supervision options), so an option
means the same, reads the same environment variable and says the same in `--help` (the
variable included) wherever it appears.
tests/cli/test_options.py walks every command and fails on a copy written by hand.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from modelwire.cli._kit import reports_errors
from modelwire.config import (
    DEFAULT_CATALOG_PORT,
    DEFAULT_HTTP_PORT,
    DEFAULT_LIVENESS,
    DEFAULT_MAX_MESSAGE_MB,
    DEFAULT_MAX_RESTARTS,
    DEFAULT_PORT,
    DEFAULT_RESTART_BACKOFF,
    ENV_CATALOG_PORT,
    ENV_GRACE,
    ENV_HOST,
    ENV_HTTP_PORT,
    ENV_LIVENESS_TIMEOUT,
    ENV_LOG_FORMAT,
    ENV_LOG_LEVEL,
    ENV_MAX_MESSAGE_MB,
    ENV_MAX_RESTARTS,
    ENV_METRICS_PORT,
    ENV_NO_HTTP,
    ENV_PORT,
    ENV_RESTART_BACKOFF,
    ENV_STARTUP_TIMEOUT,
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
    "CATALOG_PORT",
    "GRACE",
    "HOST",
    "HTTP_PORT",
    "LIVENESS_TIMEOUT",
    "LOG_FORMAT",
    "LOG_LEVEL",
    "MAX_MESSAGE_MB",
    "MAX_RESTARTS",
    "METRICS_PORT",
    "NO_HTTP",
    "PORT",
    "RESTART_BACKOFF",
    "SHARED",
    "STARTUP_TIMEOUT",
    "TLS_CERT",
    "TLS_CLIENT_CA",
    "TLS_KEY",
    "EnvOption",
    "SharedOption",
    "SharedOptionSpec",
    "http_options",
    "http_port_of",
    "logging_options",
    "tls_client_options",
    "tls_server_options",
]

F = TypeVar("F", bound=Callable[..., Any])


class EnvOption(click.Option):
    """A click option whose usage errors name its environment variable only when the bad
    value came from it (click's `show_envvar` names it for a bad flag value too)."""

    def get_error_hint(self, ctx: click.Context | None) -> str:
        hint = click.Parameter.get_error_hint(self, ctx)
        source = ctx.get_parameter_source(self.name) if ctx and self.name else None
        if source is ParameterSource.ENVIRONMENT and isinstance(self.envvar, str):
            hint += f" (env var: '{self.envvar}')"
        return hint


class SharedOption(EnvOption):
    """A click option made from a SharedOptionSpec; `concept` names the spec."""

    def __init__(self, *args: Any, concept: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.concept = concept


@dataclass(frozen=True)
class SharedOptionSpec:
    """One option's declaration; calling it decorates a command with the option.

    Attributes:
        concept: what the option sets, unique among the specs (two concepts may share a
            flag: `--port` is the service's port, or the catalog's).
        flags: the option's flags, e.g. ``("--port",)``.
        envvar: the environment variable read when the flag is not given.
        type: the click type (ranges included).
        default: the value when neither flag nor variable is given.
        help: the help text; click appends the variable and the default.
        is_flag: a flag that takes no value (its variable: 1/true/yes or 0/false/no).
    """

    concept: str
    flags: tuple[str, ...]
    envvar: str
    type: click.ParamType[Any]
    default: object
    help: str
    is_flag: bool = False

    def _attrs(self) -> dict[str, Any]:
        attrs: dict[str, Any] = {
            "concept": self.concept,
            "envvar": self.envvar,
            "show_envvar": True,
            "type": self.type,
            "default": self.default,
            "show_default": self.default is not None and not self.is_flag,
            "help": self.help,
        }
        if self.is_flag:
            attrs["is_flag"] = True
        return attrs

    def option(self) -> SharedOption:
        """A fresh click option of this declaration (what a command's option must equal)."""
        return SharedOption(self.flags, **self._attrs())

    def __call__(self, fn: F) -> F:
        return click.option(*self.flags, cls=SharedOption, **self._attrs())(fn)


HOST = SharedOptionSpec(
    "host",
    ("--host",),
    ENV_HOST,
    click.STRING,
    "127.0.0.1",
    "Address to bind (0.0.0.0 for all interfaces).",
)
PORT = SharedOptionSpec(
    "port",
    ("--port",),
    ENV_PORT,
    click.IntRange(0, 65535),
    DEFAULT_PORT,
    "The gRPC port to bind or publish; 0 picks a free one when binding.",
)
HTTP_PORT = SharedOptionSpec(
    "http-port",
    ("--http-port",),
    ENV_HTTP_PORT,
    click.IntRange(0, 65535),
    DEFAULT_HTTP_PORT,
    "The HTTP port (Connect, the Acumos REST contract, /docs) to bind or publish; 0 picks "
    "a free one when binding.",
)
NO_HTTP = SharedOptionSpec(
    "no-http",
    ("--no-http",),
    ENV_NO_HTTP,
    click.BOOL,
    False,
    "Serve gRPC only: no HTTP face (whatever --http-port says).",
    is_flag=True,
)
CATALOG_PORT = SharedOptionSpec(
    "catalog-port",
    ("--port",),
    ENV_CATALOG_PORT,
    click.IntRange(0, 65535),
    DEFAULT_CATALOG_PORT,
    "The catalog's gRPC port; 0 picks a free one.",
)
MAX_MESSAGE_MB = SharedOptionSpec(
    "max-message-mb",
    ("--max-message-mb",),
    ENV_MAX_MESSAGE_MB,
    click.IntRange(1, 2047),
    DEFAULT_MAX_MESSAGE_MB,
    "Largest request or response, in MiB.",
)
METRICS_PORT = SharedOptionSpec(
    "metrics-port",
    ("--metrics-port",),
    ENV_METRICS_PORT,
    click.IntRange(0, 65535),
    None,
    "Serve Prometheus metrics at http://HOST:PORT/metrics.",
)
GRACE = SharedOptionSpec(
    "grace",
    ("--grace",),
    ENV_GRACE,
    click.FloatRange(0),
    10.0,
    "Seconds SIGTERM waits for in-flight calls.",
)
STARTUP_TIMEOUT = SharedOptionSpec(
    "startup-timeout",
    ("--startup-timeout",),
    ENV_STARTUP_TIMEOUT,
    click.FloatRange(0, min_open=True),
    120.0,
    "Seconds to wait for the models to serve (and for address: models to answer).",
)
RESTART_BACKOFF = SharedOptionSpec(
    "restart-backoff",
    ("--restart-backoff",),
    ENV_RESTART_BACKOFF,
    click.FloatRange(0),
    DEFAULT_RESTART_BACKOFF,
    "Seconds before the second restart in a row of a model or worker that ended (the "
    "first after a good run is at once); doubled for each further one, up to 30.",
)
MAX_RESTARTS = SharedOptionSpec(
    "max-restarts",
    ("--max-restarts",),
    ENV_MAX_RESTARTS,
    click.IntRange(0, 1000),
    DEFAULT_MAX_RESTARTS,
    "Failed restarts in a row before a model or worker is reported failed; 0 never restarts.",
)
LIVENESS_TIMEOUT = SharedOptionSpec(
    "liveness-timeout",
    ("--liveness-timeout",),
    ENV_LIVENESS_TIMEOUT,
    click.FloatRange(0, min_open=True),
    DEFAULT_LIVENESS,
    "Seconds a model or worker may leave its health checks unanswered before it is "
    "killed and restarted.",
)
LOG_LEVEL = SharedOptionSpec(
    "log-level",
    ("--log-level",),
    ENV_LOG_LEVEL,
    click.Choice(["debug", "info", "warning", "error"]),
    "info",
    "Log level.",
)
LOG_FORMAT = SharedOptionSpec(
    "log-format",
    ("--log-format",),
    ENV_LOG_FORMAT,
    click.Choice(["json", "console"]),
    None,
    "Log format [default: console on a terminal, else json].",
)
_PEM = click.Path(exists=True, dir_okay=False, path_type=str)
TLS_CERT = SharedOptionSpec(
    "tls-cert",
    ("--tls-cert",),
    ENV_TLS_CERT,
    _PEM,
    None,
    "Serve TLS on every port with this PEM certificate chain (with --tls-key); a changed "
    "file serves new connections without a restart.",
)
TLS_KEY = SharedOptionSpec(
    "tls-key",
    ("--tls-key",),
    ENV_TLS_KEY,
    _PEM,
    None,
    "The PEM private key of --tls-cert.",
)
TLS_CLIENT_CA = SharedOptionSpec(
    "tls-client-ca",
    ("--tls-client-ca",),
    ENV_TLS_CLIENT_CA,
    _PEM,
    None,
    "Mutual TLS: every client must present a certificate signed by a CA in this PEM file.",
)

SHARED: tuple[SharedOptionSpec, ...] = (
    HOST,
    PORT,
    HTTP_PORT,
    NO_HTTP,
    CATALOG_PORT,
    MAX_MESSAGE_MB,
    METRICS_PORT,
    GRACE,
    STARTUP_TIMEOUT,
    RESTART_BACKOFF,
    MAX_RESTARTS,
    LIVENESS_TIMEOUT,
    LOG_LEVEL,
    LOG_FORMAT,
    TLS_CERT,
    TLS_KEY,
    TLS_CLIENT_CA,
)
"""Every shared declaration."""


def http_options(fn: F) -> F:
    """`--http-port` and `--no-http`, as every command that serves takes them."""
    return HTTP_PORT(NO_HTTP(fn))


def http_port_of(http_port: int, no_http: bool) -> int | None:
    """The HTTP port a server binds: None (no HTTP face) with --no-http."""
    return None if no_http else http_port


def logging_options(fn: F) -> F:
    """`--log-level` and `--log-format`, as every command that logs takes them."""
    return LOG_LEVEL(LOG_FORMAT(fn))


def tls_server_options(fn: F) -> F:
    """`--tls-cert`, `--tls-key` and `--tls-client-ca`, as every command that serves takes
    them; the command gets them as one `tls` argument (a `ServerTls`, None: plaintext)."""

    @functools.wraps(fn)
    def command(
        *args: Any, tls_cert: str | None, tls_key: str | None, tls_client_ca: str | None, **kw: Any
    ) -> Any:
        return fn(*args, tls=ServerTls.from_options(tls_cert, tls_key, tls_client_ca), **kw)

    return TLS_CERT(TLS_KEY(TLS_CLIENT_CA(reports_errors(command))))  # type: ignore[return-value]


def tls_client_options(fn: F) -> F:
    """`--tls`, `--ca`, `--cert`, `--key` and `--server-name`, as every client command
    takes them; the command gets them as one `tls` argument (a `ClientTls`, None:
    plaintext): these flags, else MODELWIRE_TLS_*, else the config file's `[tls]` table."""

    @functools.wraps(fn)
    def command(
        *args: Any,
        tls: bool,
        ca: str | None,
        cert: str | None,
        key: str | None,
        server_name: str | None,
        **kw: Any,
    ) -> Any:
        settings = ClientTls.resolve(tls, ca=ca, cert=cert, key=key, server_name=server_name)
        return fn(*args, tls=settings, **kw)

    options = [
        click.option(
            "--tls",
            is_flag=True,
            help=f"Connect with TLS, trusting the system's CAs unless --ca says [env {ENV_TLS}].",
        ),
        click.option(
            "--ca",
            type=_PEM,
            default=None,
            help=f"Trust the CAs in this PEM file (implies --tls) [env {ENV_TLS_CA}].",
        ),
        click.option(
            "--cert",
            type=_PEM,
            default=None,
            help="Present this PEM certificate, for a server that asks for one (mutual TLS) "
            f"[env {ENV_TLS_CLIENT_CERT}].",
        ),
        click.option(
            "--key",
            type=_PEM,
            default=None,
            help=f"The PEM private key of --cert [env {ENV_TLS_CLIENT_KEY}].",
        ),
        click.option(
            "--server-name",
            default=None,
            help="The name the server's certificate must carry, when it is not the host "
            f"dialled [env {ENV_TLS_SERVER_NAME}].",
        ),
    ]
    wrapped: Any = reports_errors(command)
    for option in reversed(options):
        wrapped = option(wrapped)
    return wrapped  # type: ignore[no-any-return]
