"""TLS on every face and every channel: credentials from the settings of
`modelwire.config` (`ServerTls`, `ClientTls`), files read again when they change, and a
failed handshake said by its cause.

Servers: `server_certs(tls)` reads and checks the files once per process (a missing
file, PEM that is not PEM, a key that is not the certificate's: each a ConfigError
naming the option). The gRPC face gets `grpc_credentials()` (grpcio asks before every
new connection's handshake whether the files changed), the HTTP face and the metrics
endpoint `ssl_context()` (its SNI callback asks the same, and hands the connection the
new context). A changed file that does not load is logged and the old files serve on.

Clients: `open_channel(address, tls)` (plaintext when `tls` is None) and `explain()`,
which turns grpcio's "failed to connect to all addresses; ... Socket closed" into the
cause: plaintext to a TLS server, a server certificate of another CA, expired or for
another name, TLS to a plaintext server, a server that wants a client certificate.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import os
import socket
import ssl
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc

from modelwire.config import ClientTls, ServerTls, parse_address
from modelwire.errors import ConfigError

__all__ = [
    "ServerCerts",
    "channel_credentials",
    "client_ssl_context",
    "explain",
    "is_loopback",
    "open_aio_channel",
    "open_channel",
    "server_certs",
    "tls_note",
]

logger = logging.getLogger(__name__)


def _read(option: str, path: str) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(option, path, f"cannot read it ({exc.strerror or exc})") from None
    if b"-----BEGIN " not in data:
        raise ConfigError(option, path, "is not a PEM file (no -----BEGIN line)")
    return data


class ServerCerts:
    """The files of one `ServerTls`, read, checked, and read again when one changes."""

    def __init__(self, tls: ServerTls) -> None:
        self.tls = tls
        self._lock = threading.Lock()
        self._signature = self._stat()
        self._load()
        self._base: ssl.SSLContext | None = None

    def _files(self) -> list[tuple[str, str]]:
        files = [("tls_cert", self.tls.cert), ("tls_key", self.tls.key)]
        if self.tls.client_ca:
            files.append(("tls_client_ca", self.tls.client_ca))
        return files

    def _stat(self) -> tuple[tuple[int, int, int], ...]:
        sig = []
        for _, path in self._files():
            try:
                st = os.stat(path)
            except OSError:
                sig.append((0, 0, 0))
            else:
                sig.append((st.st_mtime_ns, st.st_size, st.st_ino))
        return tuple(sig)

    def _load(self) -> None:
        """Read every file and check they make a server context; then use them."""
        cert = _read("tls_cert", self.tls.cert)
        key = _read("tls_key", self.tls.key)
        ca = _read("tls_client_ca", self.tls.client_ca) if self.tls.client_ca else None
        context = self._context_of(self.tls.cert, self.tls.key, self.tls.client_ca)
        self.cert, self.key, self.client_ca, self.context = cert, key, ca, context

    def _context_of(self, cert: str, key: str, ca: str | None) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            ctx.load_cert_chain(cert, key)
        except ssl.SSLError as exc:
            if "KEY_VALUES_MISMATCH" in str(exc):
                raise ConfigError(
                    "tls_key", key, f"is not the key of the certificate {cert}"
                ) from None
            raise ConfigError(
                "tls_cert", cert, f"the certificate and key do not load ({exc.reason or exc})"
            ) from None
        if ca:
            try:
                ctx.load_verify_locations(cafile=ca)
            except ssl.SSLError as exc:
                raise ConfigError(
                    "tls_client_ca", ca, f"holds no CA certificate ({exc.reason or exc})"
                ) from None
            ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx

    def refresh(self) -> bool:
        """Read the files again if any changed since last read; True if they were."""
        signature = self._stat()
        if signature == self._signature:
            return False
        with self._lock:
            if signature == self._signature:
                return False
            self._signature = signature
            try:
                self._load()
            except ConfigError as exc:
                logger.warning("the TLS files changed but do not load; the old serve on: %s", exc)
                return False
        logger.info("TLS certificate reloaded from %s", self.tls.cert)
        return True

    def _fetch(self) -> Any:
        # grpcio asks before each new connection's handshake: None keeps what it has
        return self._grpc_config() if self.refresh() else None

    def _grpc_config(self) -> Any:
        return grpc.ssl_server_certificate_configuration(
            [(self.key, self.cert)], root_certificates=self.client_ca
        )

    def grpc_credentials(self) -> grpc.ServerCredentials:
        """Credentials for `add_secure_port`; new files serve the connections after them."""
        return grpc.dynamic_ssl_server_credentials(
            self._grpc_config(),
            self._fetch,
            require_client_authentication=self.client_ca is not None,
        )

    def ssl_context(self) -> ssl.SSLContext:
        """A server context for the HTTP faces; each handshake gets the newest files."""
        if self._base is None:
            base = self._context_of(self.tls.cert, self.tls.key, self.tls.client_ca)

            def pick(sslobj: Any, _name: str | None, _ctx: ssl.SSLContext) -> None:
                self.refresh()
                if sslobj.context is not self.context:
                    sslobj.context = self.context

            base.sni_callback = pick
            self._base = base
        return self._base


def tls_note(tls: ServerTls | None) -> str:
    """What a server's start-up line adds about TLS: '', ', TLS' or ', mutual TLS'."""
    if tls is None:
        return ""
    return ", mutual TLS" if tls.client_ca else ", TLS"


@functools.lru_cache(maxsize=16)
def server_certs(tls: ServerTls) -> ServerCerts:
    """The one `ServerCerts` of these settings in this process (every face shares it)."""
    return ServerCerts(tls)


def channel_credentials(tls: ClientTls) -> grpc.ChannelCredentials:
    """The client's gRPC credentials (ConfigError naming the flag of a file that fails)."""
    return grpc.ssl_channel_credentials(
        root_certificates=_read("ca", tls.ca) if tls.ca else None,
        private_key=_read("key", tls.key) if tls.key else None,
        certificate_chain=_read("cert", tls.cert) if tls.cert else None,
    )


def client_ssl_context(tls: ClientTls) -> ssl.SSLContext:
    """A client context for the HTTP faces (HTTPS), trusting and presenting as `tls` says."""
    try:
        ctx = ssl.create_default_context(cafile=tls.ca)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError("ca", tls.ca, f"holds no CA certificate ({exc})") from None
    if tls.cert and tls.key:
        try:
            ctx.load_cert_chain(tls.cert, tls.key)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                "cert", tls.cert, f"the certificate and key do not load ({exc})"
            ) from None
    return ctx


def open_channel(
    address: str, tls: ClientTls | None, options: Sequence[tuple[str, Any]] = ()
) -> grpc.Channel:
    """A sync channel to `address`: TLS as `tls` says, plaintext when it is None."""
    if tls is None:
        return grpc.insecure_channel(address, options=list(options))
    return grpc.secure_channel(address, channel_credentials(tls), options=_options(tls, options))


def open_aio_channel(
    address: str, tls: ClientTls | None, options: Sequence[tuple[str, Any]] = ()
) -> grpc.aio.Channel:
    """`open_channel` for grpc.aio."""
    if tls is None:
        return grpc.aio.insecure_channel(address, options=list(options))
    return grpc.aio.secure_channel(
        address, channel_credentials(tls), options=_options(tls, options)
    )


def _options(tls: ClientTls, options: Sequence[tuple[str, Any]]) -> list[tuple[str, Any]]:
    opts = list(options)
    if tls.server_name:
        opts.append(("grpc.ssl_target_name_override", tls.server_name))
    return opts


# what grpcio's handshake errors say, and what that means
_CAUSES = (
    ("certificate has expired", "the server's certificate has expired"),
    ("certificate is not yet valid", "the server's certificate is not valid yet (check the clock)"),
    ("Hostname Verification Check failed", "host"),
    ("unable to get local issuer certificate", "ca"),
    ("self signed certificate", "ca"),
    ("self-signed certificate", "ca"),
    ("WRONG_VERSION_NUMBER", "plaintext"),
)


def explain(address: str, tls: ClientTls | None, details: str, *, probe: bool = True) -> str | None:
    """Why a connection to `address` failed, if TLS is why: from grpcio's `details`, else
    (with `probe`, for "Socket closed") from a handshake of our own. None otherwise."""
    for needle, cause in _CAUSES:
        if needle in details:
            if cause == "host":
                name = (tls.server_name if tls else None) or _host(address) or address
                return (
                    f"the server's certificate is not for {name!r}: dial a name it carries, "
                    "or give that name with --server-name"
                )
            if cause == "ca":
                trusted = f"the CA in {tls.ca}" if tls and tls.ca else "the system's CAs"
                return (
                    f"the server's certificate is not signed by {trusted}: give the CA that "
                    "signed it with --ca FILE"
                )
            return _PLAINTEXT if cause == "plaintext" else cause
    if probe and ("Socket closed" in details or "Connection reset" in details):
        return _probe(address, tls)
    return None


def is_loopback(address: str) -> bool:
    """Whether `address` (HOST:PORT or a gRPC target) stays on this machine: localhost,
    127.0.0.0/8, ::1, or a unix socket."""
    if address.startswith(("unix:", "unix-abstract:")):
        return True
    host = _host(address)
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _host(address: str) -> str | None:
    try:
        return parse_address(address).host
    except ConfigError:
        return None


_ASKS_FOR_CERT = (
    "the server asks for a client certificate (mutual TLS): give one with --cert FILE --key FILE"
)
_REFUSES_CERT = (
    "the server does not accept this client's certificate (it is not signed by a CA the "
    "server trusts)"
)
_PLAINTEXT = "the server does not speak TLS (it serves plaintext): drop --tls"


def _probe(address: str, tls: ClientTls | None, timeout: float = 2.0) -> str | None:
    """A TLS handshake of our own with `address`, to say why grpcio's connection closed:
    without `tls`, whether the server speaks TLS at all; with it, how the server judged
    this client (grpcio's own checks of the server's certificate already passed)."""
    try:
        target = parse_address(address)
    except ConfigError:
        return None
    if target.host is None or target.port is None:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    if tls is not None and tls.cert and tls.key:
        try:
            ctx.load_cert_chain(tls.cert, tls.key)
        except (OSError, ssl.SSLError) as exc:
            return f"the client's certificate does not load: {exc}"
    name = (tls.server_name if tls else None) or target.host
    try:
        with (
            socket.create_connection((target.host, target.port), timeout=timeout) as raw,
            ctx.wrap_socket(raw, server_hostname=name) as conn,
        ):
            # TLS 1.3: the server judges the client's certificate after the handshake, then
            # sends an alert or just closes; a gRPC server that accepts sends SETTINGS
            closed = tls is not None and conn.recv(1) == b""
    except ssl.SSLError as exc:
        if tls is None:
            return None
        text = str(exc)
        if "CERTIFICATE_REQUIRED" in text or ("HANDSHAKE_FAILURE" in text and not tls.cert):
            return _ASKS_FOR_CERT
        if "UNKNOWN_CA" in text or "BAD_CERTIFICATE" in text or "DECRYPT_ERROR" in text:
            return _REFUSES_CERT
        if "CERTIFICATE_EXPIRED" in text:
            return "the server says this client's certificate has expired"
        if "WRONG_VERSION_NUMBER" in text:
            return _PLAINTEXT
        return f"the TLS handshake failed: {exc.reason or text}"
    except OSError:
        return None
    if tls is None:  # the handshake worked: it speaks TLS to a client that does not
        return (
            "the server speaks TLS and this client plaintext: connect with TLS (--tls, and "
            "--ca FILE for a private CA)"
        )
    if not closed:
        return None
    return _REFUSES_CERT if tls.cert else _ASKS_FOR_CERT
