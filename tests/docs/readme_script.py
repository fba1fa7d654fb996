"""README.md as one bash script: every code block, in order, as a user would run them.

`script(markdown)` turns the document into a script that runs in a scratch copy of the
repository (a fresh clone's files). What each fenced block becomes:

- ``sh``: its commands, one after another (`set -e`: the first failure stops the run).
  A command that serves until stopped (``modelwire serve``, ``run``, ``catalog serve``,
  an attached ``docker run``) is what the README tells the user to leave running in a
  second terminal: it starts in the background, and the next command waits until its
  output says it is listening. Everything started is stopped when the script ends.
- ``python``: run by the environment's ``python`` (the venv the README activates), as a
  user pastes it into ``python -`` — each block on its own, so each must be complete.
- a block after ``<!-- readme-test: file NAME -->``: the file the README asks the user to
  save, written as is.
- a block after ``<!-- readme-test: output -->``: what the previous command printed; the
  script fails if it printed anything else.
- a block after ``<!-- readme-test: skip REASON -->``: not run (the set-up commands that
  run these tests, benchmarks that take many minutes); the reason is required.
- any other block (``yaml``, ``proto``, ``json``, plain): text to read, not run.

Before each command the script echoes ``@@readme:LINE``, so a failure names its README line.
"""

from __future__ import annotations

import itertools
import re
import shlex
from dataclasses import dataclass

__all__ = ["Block", "blocks", "script", "server_ports"]

_FENCE = re.compile(r"^```(\S*)\s*$")
_MARKER = re.compile(r"^<!--\s*readme-test:\s*(\w+)\s*(.*?)\s*-->\s*$")
_RUN = {"sh", "bash", "shell", "python"}

# commands that serve until stopped, and what their output says once they listen
_SERVERS = (
    (re.compile(r"(^|/)modelwire (serve|run) "), "listening on"),
    (re.compile(r"(^|/)modelwire catalog serve "), "listening on"),
    (re.compile(r"^docker run(?!.*\s(-d|--detach)\b)\s"), "listening on"),
)


@dataclass(frozen=True)
class Block:
    """A fenced block of the README: its info string, first line (1-based), text, and
    the readme-test marker above it (kind, argument) if any."""

    language: str
    line: int
    text: str
    marker: tuple[str, str] | None = None


def blocks(markdown: str) -> list[Block]:
    """Every fenced block, with the marker on the last non-blank line before it."""
    found: list[Block] = []
    lines = markdown.splitlines()
    i = 0
    marker: tuple[str, str] | None = None
    while i < len(lines):
        line = lines[i]
        m = _MARKER.match(line)
        if m:
            kind, argument = m.group(1), m.group(2)
            if kind not in ("skip", "file", "output"):
                raise ValueError(f"README line {i + 1}: unknown readme-test marker {kind!r}")
            if kind in ("skip", "file") and not argument:
                raise ValueError(f"README line {i + 1}: readme-test {kind} needs an argument")
            marker = (kind, argument)
            i += 1
            continue
        fence = _FENCE.match(line)
        if fence:
            start = i + 1
            j = start
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            if j == len(lines):
                raise ValueError(f"README line {i + 1}: the block is never closed")
            text = "\n".join(lines[start:j]) + "\n"
            found.append(Block(fence.group(1), start + 1, text, marker))
            marker = None
            i = j + 1
            continue
        if line.strip():
            marker = None  # a marker applies to the very next block only
        i += 1
    return found


def _commands(block: Block) -> list[tuple[int, str]]:
    """(README line, command) of a shell block: continuation lines joined, comments kept
    as the shell reads them (a trailing `# ...` is a comment)."""
    out: list[tuple[int, str]] = []
    pending = ""
    first = 0
    for offset, raw in enumerate(block.text.splitlines()):
        if not pending:
            first = block.line + offset
        line = raw.rstrip()
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        command = (pending + line).strip()
        pending = ""
        if command and not command.startswith("#"):
            out.append((first, command))
    return out


def _strip_comment(command: str) -> str:
    """The command without a trailing `# comment` (a `#` outside quotes, after a blank)."""
    quote = ""
    for i, ch in enumerate(command):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or command[i - 1].isspace()):
            return command[:i].rstrip()
    return command


def server_ports(markdown: str) -> list[tuple[int, int]]:
    """(README line, port) of every port the README's servers listen on: their `--port`,
    `--http-port` and `--metrics-port` (the defaults where not given: 50051 and 8080 of
    `serve` and `run`, 50060 of `catalog serve`), a `docker run`'s `-p HOST:...`. The walk
    keeps every server running to its end, so no two may share one."""
    found: list[tuple[int, int]] = []
    for block in blocks(markdown):
        if block.language not in ("sh", "bash", "shell") or block.marker is not None:
            continue
        for line, command in _commands(block):
            if _server(command) is None:
                continue
            words = shlex.split(command, comments=True)
            given = {w: words[i + 1] for i, w in enumerate(words[:-1]) if w.startswith("--")}
            ports = [int(p.split(":")[0]) for w, p in itertools.pairwise(words) if w == "-p"]
            if words[0] != "docker":
                catalog = "catalog" in words[:3]
                ports.append(int(given.get("--port", 50060 if catalog else 50051)))
                if not catalog and "--no-http" not in words:
                    ports.append(int(given.get("--http-port", 8080)))
                if "--metrics-port" in given:
                    ports.append(int(given["--metrics-port"]))
            found += [(line, port) for port in ports if port != 0]
    return found


def _server(command: str) -> str | None:
    """What a serving command prints once it listens, or None for a command that ends."""
    words = shlex.split(command, comments=True)
    while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):
        words = words[1:]  # VAR=value before the command
    text = " ".join(words) + " "
    for pattern, ready in _SERVERS:
        if pattern.search(text):
            return ready
    return None


_PRELUDE = r"""set -euo pipefail
__servers=()
__stop() {
  local pid
  for pid in "${__servers[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${__servers[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap __stop EXIT
__wait_for() {  # LOG PID TEXT: until LOG says TEXT; fail if PID exits first or after 300 s
  local i
  for i in $(seq 3000); do
    grep -q "$3" "$1" 2>/dev/null && return 0
    if ! kill -0 "$2" 2>/dev/null; then
      echo "the server exited before it listened:" >&2; cat "$1" >&2; return 1
    fi
    sleep 0.1
  done
  echo "the server did not listen within 300 s:" >&2; cat "$1" >&2; return 1
}
__n=0
"""


def _heredoc(text: str) -> str:
    tag = "README_BLOCK_END"
    assert tag not in text
    return f"<<'{tag}'\n{text}{tag}\n"


def script(markdown: str) -> str:
    """The bash script that runs every block of `markdown` in order (see the module)."""
    parts = [_PRELUDE]
    for block in blocks(markdown):
        kind, argument = block.marker or ("", "")
        if kind == "skip":
            continue
        if kind == "file":
            parts.append(f"echo '@@readme:{block.line}'\n")
            target = shlex.quote(argument)
            parts.append(f'mkdir -p "$(dirname {target})"\ncat > {target} {_heredoc(block.text)}')
            continue
        if kind == "output":
            parts.append(f"echo '@@readme:{block.line}'\n")
            parts.append(
                f"diff -u --label printed --label README .readme-last.out - {_heredoc(block.text)}"
            )
            continue
        if block.language == "python":
            parts.append(f"echo '@@readme:{block.line}'\n")
            parts.append(f"python - {_heredoc(block.text)}")
            continue
        if block.language not in _RUN:
            continue
        for line, text in _commands(block):
            parts.append(f"echo '@@readme:{line}'\n")
            command = _strip_comment(text)
            ready = _server(command)
            if ready is None:
                # in this shell (`source`, `export` last), its output kept for an output block
                parts.append(
                    f"__rc=0; {command} > .readme-last.out || __rc=$?\n"
                    'cat .readme-last.out; [ "$__rc" = 0 ] || exit "$__rc"\n'
                )
            else:
                parts.append(
                    "__n=$((__n + 1))\n"
                    f"{command} > .readme-server-$__n.log 2>&1 &\n"
                    "__servers+=($!)\n"
                    f"__wait_for .readme-server-$__n.log $! {shlex.quote(ready)}\n"
                )
    return "".join(parts)
