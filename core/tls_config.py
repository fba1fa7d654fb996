"""Transport security settings: the files a server presents (`ServerTls`) and what a
client trusts and presents (`ClientTls`), from flags, `MODELWIRE_*` variables and the
config file (re-exported by `modelwire.config`).

These only name files and say which go together; `modelwire.hosting.tls` reads them
(a missing file, a key that is not the certificate's, PEM that is not PEM are each a
`ConfigError` naming the option and the file) and makes the credentials.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelwire.config_file import config_table
from modelwire.errors import ConfigError

__all__ = [
    "ENV_TLS",
    "ENV_TLS_CA",
    "ENV_TLS_CERT",
    "ENV_TLS_CLIENT_CA",
    "ENV_TLS_CLIENT_CERT",
    "ENV_TLS_CLIENT_KEY",
    "ENV_TLS_KEY",
    "ENV_TLS_SERVER_NAME",
    "ClientTls",
    "ServerTls",
]

# a server's own certificate, and the CA its clients' certificates must be signed by
ENV_TLS_CERT = "MODELWIRE_TLS_CERT"
ENV_TLS_KEY = "MODELWIRE_TLS_KEY"
ENV_TLS_CLIENT_CA = "MODELWIRE_TLS_CLIENT_CA"
# a client's: TLS on, the CA it trusts, its own certificate (mutual TLS), the name it checks
ENV_TLS = "MODELWIRE_TLS"
ENV_TLS_CA = "MODELWIRE_TLS_CA"
ENV_TLS_CLIENT_CERT = "MODELWIRE_TLS_CLIENT_CERT"
ENV_TLS_CLIENT_KEY = "MODELWIRE_TLS_CLIENT_KEY"
ENV_TLS_SERVER_NAME = "MODELWIRE_TLS_SERVER_NAME"


@dataclass(frozen=True, slots=True)
class ServerTls:
    """What a TLS server presents: `serve`, `run` and `catalog serve` with `--tls-cert`.

    Attributes:
        cert: the PEM certificate chain file (the server's certificate first).
        key: the PEM private key file of that certificate.
        client_ca: a PEM file of the CAs that sign client certificates; given, every
            client must present one (mutual TLS), on every face.

    The files are read again when they change (a new certificate serves new
    connections without a restart).
    """

    cert: str
    key: str
    client_ca: str | None = None

    @classmethod
    def from_options(
        cls, cert: str | None, key: str | None, client_ca: str | None = None
    ) -> ServerTls | None:
        """The settings of `--tls-cert`, `--tls-key` and `--tls-client-ca`; None for none.

        Raises:
            ConfigError: a key without a certificate or the other way round, or a client
                CA without a certificate of the server's own.
        """
        if not cert and not key:
            if client_ca:
                raise ConfigError(
                    "tls_client_ca",
                    client_ca,
                    "mutual TLS needs the server's own certificate: add --tls-cert and --tls-key",
                )
            return None
        if not cert:
            raise ConfigError("tls_key", key, "needs --tls-cert FILE, the certificate it is for")
        if not key:
            raise ConfigError("tls_cert", cert, "needs --tls-key FILE, its private key")
        return cls(str(cert), str(key), str(client_ca) if client_ca else None)

    @classmethod
    def coerce(cls, value: ServerTls | Mapping[str, Any] | None) -> ServerTls | None:
        """From a settings object as JSON gives it back (`dataclasses.asdict`)."""
        if value is None or isinstance(value, ServerTls):
            return value
        return cls(**dict(value))


@dataclass(frozen=True, slots=True)
class ClientTls:
    """What a TLS client trusts and presents (`connect(tls=...)`, `--tls`, `--ca` ...).

    Attributes:
        ca: a PEM file of the CAs to trust; None trusts the system's roots.
        cert: the client's PEM certificate chain, for servers that ask for one (mutual
            TLS); `key` must be given with it.
        key: the private key of `cert`.
        server_name: the name the server's certificate must carry, when it is not the
            host dialled (an IP address, a tunnel, a name inside a cluster).
    """

    ca: str | None = None
    cert: str | None = None
    key: str | None = None
    server_name: str | None = None

    def __post_init__(self) -> None:
        if bool(self.cert) != bool(self.key):
            given, missing = ("cert", "key") if self.cert else ("key", "cert")
            raise ConfigError(
                given,
                self.cert or self.key,
                f"a client certificate needs its key and the other way round: add --{missing}",
            )

    @classmethod
    def resolve(
        cls,
        tls: bool = False,
        *,
        ca: str | None = None,
        cert: str | None = None,
        key: str | None = None,
        server_name: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> ClientTls | None:
        """The client's TLS settings, None for plaintext.

        Each of `ca`, `cert`, `key`, `server_name` comes from its argument (a flag),
        else its variable (`MODELWIRE_TLS_CA`, `MODELWIRE_TLS_CLIENT_CERT`,
        `MODELWIRE_TLS_CLIENT_KEY`, `MODELWIRE_TLS_SERVER_NAME`), else the config
        file's `[tls]` table (`ca`, `cert`, `key`, `server_name`). TLS is on when `tls`
        is true, `MODELWIRE_TLS` is 1/true/yes, `[tls] enabled = true`, or any file or
        name is given at all.

        Raises:
            ConfigError: a bad value or config file.
        """
        env = os.environ if environ is None else environ
        flag = env.get(ENV_TLS, "").strip().lower()
        if flag not in ("", "0", "1", "true", "false", "yes", "no"):
            raise ConfigError(ENV_TLS, flag, "expected 1/true/yes or 0/false/no", source="env")
        values = {
            "ca": ca or env.get(ENV_TLS_CA) or None,
            "cert": cert or env.get(ENV_TLS_CLIENT_CERT) or None,
            "key": key or env.get(ENV_TLS_CLIENT_KEY) or None,
            "server_name": server_name or env.get(ENV_TLS_SERVER_NAME) or None,
        }
        on = tls or flag in ("1", "true", "yes")
        table = config_table(env, "tls")
        for name, value in values.items():
            if value is None and name in table:
                values[name] = _string(table, name)
        if "enabled" in table:
            if not isinstance(table["enabled"], bool):
                raise ConfigError("[tls] enabled", table["enabled"], "expected true or false")
            on = on or table["enabled"]
        if not on and not any(values.values()):
            return None
        return cls(**values)


def _string(table: Mapping[str, Any], key: str) -> str:
    value = table[key]
    if not isinstance(value, str) or not value:
        raise ConfigError(f"[tls] {key}", value, "expected a file name or a host name, as text")
    return value
