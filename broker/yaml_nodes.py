"""Reading YAML nodes with their locations: the loader's primitives and its diagnostics.

What every part of a blueprint is read with (`modelwire.broker.loader`): mappings with
duplicate keys found, single values, whole numbers in a range, durations, TLS settings;
each problem
becomes a `Diagnostic` at the node's line and column (yaml marks are 0-based, printed
1-based). Nothing here knows what a blueprint is.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import yaml

from modelwire.config import ClientTls
from modelwire.diagnostics import Diagnostic, Location
from modelwire.errors import ConfigError

__all__ = ["NodeReader"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$")


class NodeReader:
    """Reads nodes of one file, collecting the problems found in `diags`."""

    def __init__(self, file: str, base: Path) -> None:
        self.file = file
        self.base = base
        self.diags: list[Diagnostic] = []

    def loc(self, node: yaml.Node) -> Location:
        return Location(self.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def error(
        self, node: yaml.Node | Location, message: str, help: str | None = None, code: str = "MW002"
    ) -> None:
        loc = node if isinstance(node, Location) else self.loc(node)
        self.diags.append(Diagnostic(code, message, loc, help=help))

    def mapping(self, node: yaml.Node, what: str) -> list[tuple[str, yaml.Node, yaml.Node]] | None:
        if not isinstance(node, yaml.MappingNode):
            self.error(node, f"{what} must be a mapping")
            return None
        out: list[tuple[str, yaml.Node, yaml.Node]] = []
        seen: dict[str, yaml.Node] = {}
        for k, v in node.value:
            if not isinstance(k, yaml.ScalarNode):
                self.error(k, f"keys of {what} must be plain names")
                continue
            if k.value in seen:
                first = self.loc(seen[k.value])
                self.error(k, f"duplicate key {k.value!r} in {what} (first at line {first.line})")
                continue
            seen[k.value] = k
            out.append((k.value, k, v))
        return out

    def scalar(self, node: yaml.Node, what: str) -> str | None:
        if not isinstance(node, yaml.ScalarNode):
            self.error(node, f"{what} must be a single value")
            return None
        return str(node.value)

    def count(self, node: yaml.Node, what: str, low: int, high: int | None = None) -> int | None:
        text = self.scalar(node, what)
        if text is None:
            return None
        if not text.isdigit() or int(text) < low or (high is not None and int(text) > high):
            upto = f" to {high}" if high is not None else ""
            self.error(node, f"{what} must be a whole number from {low}{upto}, not {text!r}")
            return None
        return int(text)

    def duration(self, node: yaml.Node, what: str) -> float | None:
        text = self.scalar(node, what)
        if text is None:
            return None
        m = _DURATION.match(text)
        if not m or float(m.group(1)) <= 0:
            self.error(
                node, f"{what} must be a positive duration like 500ms, 2s or 1.5, not {text!r}"
            )
            return None
        scale = {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}[m.group(2)]
        return float(m.group(1)) * scale

    def tls(self, node: yaml.Node, what: str) -> ClientTls | Literal[False] | None:
        """`tls: true` (the system's CAs) or `tls: {ca, cert, key, server_name}` (files
        relative to the blueprint's folder); False after a problem."""
        if isinstance(node, yaml.ScalarNode):
            if node.value.lower() == "true":
                return ClientTls()
            if node.value.lower() == "false":
                return None
        items = self.mapping(node, f"{what} (true, or a mapping of ca, cert, key, server_name)")
        if items is None:
            return False
        got: dict[str, str] = {}
        for k, kn, v in items:
            if k not in ("ca", "cert", "key", "server_name"):
                self.error(
                    kn,
                    f"unknown key {k!r} in {what}",
                    help="it has 'ca', 'cert', 'key', 'server_name'",
                )
                return False
            text = self.scalar(v, f"{k!r} of {what}")
            if not text:
                if text == "":
                    self.error(v, f"{k!r} of {what} is empty")
                return False
            if k == "server_name":
                got[k] = text
                continue
            path = Path(text) if Path(text).is_absolute() else self.base / text
            if not path.is_file():
                self.error(v, f"{k!r} of {what}: no file {text!r} (from {self.base})")
                return False
            got[k] = str(path)
        try:
            return ClientTls(**got)
        except ConfigError as exc:
            self.error(node, f"{what}: {exc}")
            return False
