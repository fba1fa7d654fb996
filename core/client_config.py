"""What a client reads to reach a server: the catalog's address and token, from flags,
`MODELWIRE_*` environment variables and the config file (re-exported by
`modelwire.config`)."""

from __future__ import annotations

from dataclasses import dataclass

from modelwire.addresses import DEFAULT_CATALOG_PORT, parse_address
from modelwire.config_file import ENV_CONFIG, config_path, config_table
from modelwire.errors import ConfigError
from modelwire.tls_config import ClientTls

__all__ = ["ENV_CATALOG", "ENV_CATALOG_INSECURE", "ENV_CONFIG", "ENV_TOKEN", "CatalogSettings"]

ENV_CATALOG = "MODELWIRE_CATALOG"
ENV_TOKEN = "MODELWIRE_TOKEN"
ENV_CATALOG_INSECURE = "MODELWIRE_CATALOG_INSECURE"


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
    tls: ClientTls | None = None
    insecure: bool = False

    @classmethod
    def resolve(
        cls,
        address: str | None = None,
        token: str | None = None,
        environ: dict[str, str] | None = None,
        *,
        tls: ClientTls | None = None,
        insecure: bool = False,
    ) -> CatalogSettings:
        """Fill what was not given from the environment, then the config file.

        TLS: `tls` if given, else `ClientTls.resolve()` (MODELWIRE_TLS_*, the config
        file's [tls]). `insecure` (or MODELWIRE_CATALOG_INSECURE=1) allows the token to
        go in plaintext to an address that is not loopback.

        Raises:
            ConfigError: no catalog address or no token could be found, or the
                config file is not valid TOML.
        """
        import os

        env = os.environ if environ is None else environ
        source = "flag" if address else ""
        address = address or env.get(ENV_CATALOG) or None
        if address and not source:
            source = "env"
        token = token or env.get(ENV_TOKEN) or None
        path = config_path(env)
        if not address or not token:
            section = config_table(env, "catalog")
            if section:
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
        if tls is None:
            tls = ClientTls.resolve(environ=env)
        insecure = insecure or env.get(ENV_CATALOG_INSECURE, "").lower() in ("1", "true", "yes")
        return cls(str(address), str(token), source or "default", tls, insecure)


def _check_address(address: str, key: str, source: str) -> None:
    """The catalog's address: HOST:PORT, the catalog's port in the example."""
    parse_address(address, key, source, example_port=DEFAULT_CATALOG_PORT)
