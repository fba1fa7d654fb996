"""Read rendered proto text in tests: one definition's block, the names defined."""

from __future__ import annotations

import re


def block(proto: str, header: str) -> str:
    """The definition that starts with `header` (e.g. 'message FRequest'), braces included."""
    start = proto.index(header + " {")
    return proto[start : proto.index("\n}\n", start) + 2]


def definitions(proto: str) -> list[str]:
    return re.findall(r"^(?:message|enum) (\w+)", proto, flags=re.MULTILINE)


def definition_name(text: str) -> str:
    return re.findall(r"^(?:message|enum) (\w+)", text, flags=re.MULTILINE)[0]
