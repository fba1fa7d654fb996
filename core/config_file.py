"""The client config file: `MODELWIRE_CONFIG`, else ~/.config/modelwire/config.toml, read one
table at a time (`[catalog]`, `[tls]`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modelwire.errors import ConfigError

__all__ = ["ENV_CONFIG", "config_path", "config_table"]

ENV_CONFIG = "MODELWIRE_CONFIG"


def config_path(env: Mapping[str, str]) -> Path:
    """Where the config file is (it need not exist)."""
    return Path(env.get(ENV_CONFIG) or Path.home() / ".config" / "modelwire" / "config.toml")


def config_table(env: Mapping[str, str], name: str) -> dict[str, Any]:
    """Table `[name]` of the config file; {} without the file or the table.

    Raises:
        ConfigError: the file is not valid TOML, or `name` is not a table in it.
    """
    import tomllib

    path = config_path(env)
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, OSError) as exc:
        raise ConfigError(
            str(path), None, f"not a valid config file ({exc})", source="file"
        ) from exc
    table = data.get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(
            str(path), None, f"{name} must be a [{name}] table, got {table!r}", source="file"
        )
    return table
