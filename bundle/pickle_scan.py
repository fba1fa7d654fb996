"""What a bundle's pickle reaches, read with `pickletools` and never loaded.

`scan_pickle(data)` walks the opcodes of `model.pkl` and lists:

- the globals it references (`GLOBAL`, `STACK_GLOBAL`, `INST`), by module and name;
- the modules that code pickled by value imports (cloudpickle's `subimport(name)`);
- the names of modules that reach the process, the file system or the network
  which appear as string constants (mostly `co_names` of pickled code: an
  `import socket` inside a function shows only there).

`scan_sources(files)` adds what the source the bundle ships in code/ imports (read
with `ast`): a function the pickle names by reference runs that code.

Each is flagged with what it reaches: ``process`` (os, subprocess, signal, ctypes,
...), ``filesystem`` (os, shutil, pathlib, open, ...), ``network`` (socket, ssl, http,
urllib, ...) or ``code`` (exec, eval, compile, __import__, importlib, marshal, ...).
This is information, not a verdict: cloudpickle ships code by value, so a model's
pickle can do whatever its code does, and scanners are known to be bypassed. The
protection is the sandbox validation runs it in; the report only says what to look at.
"""

from __future__ import annotations

import io
import pickletools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

__all__ = ["PickleReach", "PickleReference", "reaches", "scan_pickle", "scan_sources"]

# top-level module -> what it reaches
_MODULES: dict[str, tuple[str, ...]] = {
    "os": ("process", "filesystem"),
    "posix": ("process", "filesystem"),
    "nt": ("process", "filesystem"),
    "subprocess": ("process",),
    "_posixsubprocess": ("process",),
    "pty": ("process",),
    "signal": ("process",),
    "multiprocessing": ("process",),
    "ctypes": ("process",),
    "_ctypes": ("process",),
    "resource": ("process",),
    "shutil": ("filesystem",),
    "pathlib": ("filesystem",),
    "tempfile": ("filesystem",),
    "glob": ("filesystem",),
    "io": ("filesystem",),
    "_io": ("filesystem",),
    "fileinput": ("filesystem",),
    "socket": ("network",),
    "_socket": ("network",),
    "ssl": ("network",),
    "select": ("network",),
    "selectors": ("network",),
    "socketserver": ("network",),
    "http": ("network",),
    "urllib": ("network",),
    "urllib3": ("network",),
    "requests": ("network",),
    "httpx": ("network",),
    "aiohttp": ("network",),
    "ftplib": ("network",),
    "smtplib": ("network",),
    "telnetlib": ("network",),
    "xmlrpc": ("network",),
    "webbrowser": ("network", "process"),
    "asyncio": ("network", "process"),
    "importlib": ("code",),
    "runpy": ("code",),
    "marshal": ("code",),
    "pickle": ("code",),
    "_pickle": ("code",),
    "code": ("code",),
    "codeop": ("code",),
}
# builtins that do more than compute
_BUILTINS: dict[str, tuple[str, ...]] = {
    "exec": ("code",),
    "eval": ("code",),
    "compile": ("code",),
    "__import__": ("code",),
    "breakpoint": ("code",),
    "open": ("filesystem",),
    "input": ("process",),
}
_STRINGS = frozenset(
    {
        "SHORT_BINUNICODE",
        "BINUNICODE",
        "BINUNICODE8",
        "UNICODE",
        "SHORT_BINSTRING",
        "BINSTRING",
        "STRING",
    }
)
# opcodes that push nothing (the memo and framing)
_NO_PUSH = frozenset({"MEMOIZE", "PUT", "BINPUT", "LONG_BINPUT", "FRAME", "PROTO"})
_GETS = frozenset({"GET", "BINGET", "LONG_BINGET"})
_SUBIMPORTS = frozenset({"subimport", "dynamic_subimport"})


@dataclass(frozen=True, order=True)
class PickleReference:
    """One thing the pickle references.

    Attributes:
        module: the module, e.g. ``os`` or ``sklearn.ensemble._forest``.
        name: the global's name ("" for a whole module).
        kind: ``global`` (a global the pickle loads), ``import`` (a module that code
            pickled by value imports), ``mention`` (a string constant naming a module
            or builtin that reaches something, e.g. in a pickled function's `co_names`)
            or ``source`` (a module that a source file of code/ imports).
        reaches: what it reaches (``process``, ``filesystem``, ``network``, ``code``);
            empty for a plain computation.
        where: the source file, for ``source``.
    """

    module: str
    name: str
    kind: str = "global"
    reaches: tuple[str, ...] = ()
    where: str = ""

    def __str__(self) -> str:
        dotted = f"{self.module}.{self.name}" if self.name else self.module
        text = {
            "import": f"import {dotted}",
            "mention": f"'{self.name or self.module}' in code",
            "source": f"import {dotted} in {self.where}",
        }
        shown = text.get(self.kind, dotted)
        return f"{shown} ({', '.join(self.reaches)})" if self.reaches else shown


@dataclass(frozen=True)
class PickleReach:
    """Everything `scan_pickle` found.

    Attributes:
        references: globals, imports and mentions, sorted, each once.
        opaque: globals whose module or name is computed, so not readable here.
        error: why the scan stopped early (a truncated or garbled pickle), or "".
    """

    references: tuple[PickleReference, ...]
    opaque: int = 0
    error: str = ""

    @property
    def flagged(self) -> tuple[PickleReference, ...]:
        """The references that reach the process, the file system or the network."""
        return tuple(r for r in self.references if r.reaches)

    @property
    def modules(self) -> tuple[str, ...]:
        """Every module the pickle references (globals and imports), sorted."""
        return tuple(sorted({r.module for r in self.references if r.kind in ("global", "import")}))


def reaches(module: str, name: str = "") -> tuple[str, ...]:
    """What a reference to `module.name` reaches (empty: a plain computation)."""
    top = module.split(".", 1)[0]
    if top == "builtins":
        return _BUILTINS.get(name, ())
    return _MODULES.get(top, ())


def _ops(data: bytes) -> Iterator[tuple[str, object]]:
    for op, arg, _ in pickletools.genops(io.BytesIO(data)):
        yield op.name, arg


def _mention(word: str) -> PickleReference | None:
    """A string constant that names a module or builtin reaching something."""
    if word in _MODULES:
        return PickleReference(word, "", "mention", _MODULES[word])
    if word in _BUILTINS and word != "open":  # 'open' is every file-like's method too
        return PickleReference("builtins", word, "mention", _BUILTINS[word])
    return None


def scan_pickle(data: bytes) -> PickleReach:
    """The modules and globals a pickle references, from its opcodes alone."""
    found: set[PickleReference] = set()
    memo: dict[int, object] = {}
    # what each pushing opcode pushed: a string, a _Global, or None for anything else
    pushed: list[object] = []
    opaque = 0
    pending_import = False  # the last push was cloudpickle's subimport: a module name next
    error = ""

    def add(module: str, name: str) -> _Global:
        # protocols 0-2 name builtins as Python 2 did; the unpickler maps it back
        module = "builtins" if module == "__builtin__" else module
        found.add(PickleReference(module, name, "global", reaches(module, name)))
        return _Global(module, name)

    try:
        for op, arg in _ops(data):
            value: object = None
            if op in _STRINGS:
                value = arg.decode("latin-1") if isinstance(arg, bytes) else arg
                mention = _mention(value) if isinstance(value, str) else None
                if mention is not None and not pending_import:
                    found.add(mention)
            elif op in ("GLOBAL", "INST"):
                module, _, name = str(arg).partition(" ")
                value = add(module, name)
            elif op == "STACK_GLOBAL":
                first, second = (pushed[-2], pushed[-1]) if len(pushed) >= 2 else (None, None)
                if isinstance(first, str) and isinstance(second, str):
                    value = add(first, second)
                else:
                    opaque += 1
            elif op == "MEMOIZE":
                memo[len(memo)] = pushed[-1] if pushed else None
                continue
            elif op in ("PUT", "BINPUT", "LONG_BINPUT"):
                memo[int(str(arg))] = pushed[-1] if pushed else None
                continue
            elif op in _GETS:
                value = memo.get(int(str(arg)))
            elif op in _NO_PUSH:
                continue
            if pending_import and isinstance(value, str):
                found.add(PickleReference(value, "", "import", reaches(value)))
            pending_import = isinstance(value, _Global) and value.name in _SUBIMPORTS
            pushed.append(value)
            del pushed[:-2]  # STACK_GLOBAL needs the last two only
    except (ValueError, EOFError) as exc:  # genops: a truncated or garbled pickle
        error = f"the pickle cannot be read to its end ({exc})"
    # a module loaded as a global or imported says more than the same word as a mention
    named = {r.module.split(".", 1)[0] for r in found if r.kind != "mention"}
    named |= {f"{r.module}.{r.name}" for r in found if r.kind != "mention"}
    refs = sorted(
        r
        for r in found
        if r.kind != "mention" or (f"{r.module}.{r.name}" if r.name else r.module) not in named
    )
    return PickleReach(tuple(refs), opaque, error)


def scan_sources(reach: PickleReach, files: Iterable[tuple[str, bytes]]) -> PickleReach:
    """`reach` with the imports of the Python sources in `files` ((path, bytes)) added."""
    from modelwire.bundle.requirements import imports_in_source

    found = set(reach.references)
    for path, data in files:
        if not path.endswith(".py"):
            continue
        try:
            modules = imports_in_source(data.decode("utf-8", errors="replace"))
        except SyntaxError:
            continue  # it cannot run either; the load says so
        found.update(PickleReference(m, "", "source", reaches(m), path) for m in modules)
    return PickleReach(tuple(sorted(found)), reach.opaque, reach.error)


@dataclass(frozen=True)
class _Global:
    module: str
    name: str
