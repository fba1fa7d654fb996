"""The wheelhouse of a build context, prepared on the host with pip (for `images`).

Three folders, each cached under ~/.cache/modelwire/wheels and hard-linked into
the context, so that the image build itself needs no network:

- wheels/runtime: modelwire's third-party dependencies at the versions installed
  here (and `requirements.txt` pinning them),
- wheels/model: the bundle's pinned requirements (and `requirements.txt`), minus
  wheels that wheels/runtime already has,
- wheels/modelwire: modelwire's own wheel, made from the running install
  (`modelwire.containers.own_wheel`: modelwire is on no index to download it from).

modelwire goes in without its dependencies (`pip install --no-deps`): wheels/runtime has
them all but grpcio-tools, which only `modelwire stubs` needs (protoc) and an image, that
only serves, leaves out.

Wheels are chosen for the image, not for this machine: `Target` carries the
image's Python minor version and wheel platforms, passed to `pip download` as
`--python-version`, `--platform` and `--abi`.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from modelwire.containers.own_wheel import own_wheel
from modelwire.errors import ToolError

__all__ = [
    "NOT_IN_IMAGES",
    "Target",
    "cache_root",
    "cached_dir",
    "platforms",
    "runtime_pins",
    "write_wheelhouse",
]

Progress = Callable[[str], None]


def cache_root() -> Path:
    """~/.cache/modelwire (or under $XDG_CACHE_HOME)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "modelwire"


def platforms(machine: str, libc: str, version: str) -> tuple[str, ...]:
    """Wheel platform tags an image can install, most specific first.

    Args:
        machine: `x86_64`, `aarch64`, ... as the image's `platform.machine()` says.
        libc: `glibc`, or anything else for musl (Alpine).
        version: the glibc version, e.g. `2.36`.
    """
    if libc != "glibc":
        return (*(f"musllinux_1_{n}_{machine}" for n in (2, 1, 0)), f"linux_{machine}")
    found = re.match(r"2\.(\d+)", version)
    minor = int(found.group(1)) if found else 17
    tags = [f"manylinux_2_{n}_{machine}" for n in range(minor, 4, -1)]
    # the legacy names of 2_17, 2_12 and 2_5: pip matches them only when named
    # (protobuf's binary wheel, for one, is tagged manylinux2014 alone)
    tags += [
        f"{name}_{machine}"
        for name, needs in (("manylinux2014", 17), ("manylinux2010", 12), ("manylinux1", 5))
        if minor >= needs
    ]
    return (*tags, f"linux_{machine}")


@dataclass(frozen=True)
class Target:
    """The interpreter and platforms a wheelhouse is for."""

    python: str  # "3.11"
    platforms: tuple[str, ...]

    @classmethod
    def host(cls, python: str) -> Target:
        """For an image that cannot be probed here: this machine's platform on Linux;
        elsewhere (macOS, Windows), the default base's: Debian bookworm, glibc 2.36."""
        machine = {"arm64": "aarch64", "amd64": "x86_64"}.get(
            platform.machine().lower(), platform.machine()
        )
        if platform.system() != "Linux":
            return cls(python, platforms(machine, "glibc", "2.36"))
        libc, version = platform.libc_ver()
        return cls(python, platforms(machine, libc, version))

    def pip_args(self) -> list[str]:
        abi = "cp" + self.python.replace(".", "")
        args = ["--only-binary=:all:", "--python-version", self.python, "--implementation", "cp"]
        args += ["--abi", abi, "--abi", "abi3", "--abi", "none"]
        for p in self.platforms:
            args += ["--platform", p]
        return args


def _pip(args: list[str], what: str) -> None:
    argv = [sys.executable, "-m", "pip", *args]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        lines = [x for x in proc.stderr.strip().splitlines() if "is ignored" not in x]
        raise ToolError(
            f"pip could not {what}",
            argv=argv,
            returncode=proc.returncode,
            stderr_tail="\n".join(lines[-15:]),
        )


def cached_dir(name: str, fill: Callable[[Path], None]) -> Path:
    """~/.cache/modelwire/wheels/NAME, made by `fill(tmp)` once (atomically)."""
    root = cache_root() / "wheels"
    dest = root / name
    if (dest / ".complete").is_file():
        return dest
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
    try:
        fill(tmp)
        (tmp / ".complete").touch()
        if (dest / ".complete").is_file():  # another build made it meanwhile
            return dest
        if dest.exists():  # an interrupted attempt
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _key(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


# modelwire's requirements that its images leave out: protoc, for `modelwire stubs` only
NOT_IN_IMAGES = frozenset({"grpcio-tools"})


def runtime_pins() -> list[str]:
    """modelwire's run-time requirements (no extras, none of NOT_IN_IMAGES), pinned to the
    versions installed here."""
    pins = []
    for requirement in md.requires("modelwire") or []:
        if re.search(r"\bextra\s*==", requirement):
            continue
        found = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
        if found is None or re.sub(r"[-_.]+", "-", found.group(0)).lower() in NOT_IN_IMAGES:
            continue
        try:
            pins.append(f"{found.group(0)}=={md.version(found.group(0))}")
        except md.PackageNotFoundError:
            continue
    return sorted(pins)


def _download(kind: str, requirements: list[str], target: Target, progress: Progress) -> Path:
    """A cached folder with the wheels of `requirements` (and their dependencies)."""

    def fill(tmp: Path) -> None:
        if requirements:
            progress(f"downloading wheels for Python {target.python}: {', '.join(requirements)}")
            what = f"download the {kind} wheels for Python {target.python} (the image build "
            what += "has no network, so every requirement must come as a wheel)"
            _pip(["download", "-q", "-d", str(tmp), *target.pip_args(), *requirements], what)

    return cached_dir(f"{kind}-{_key(target.python, *target.platforms, *requirements)}", fill)


def _link_wheels(src: Path, dest: Path, skip: Collection[str] = ()) -> set[str]:
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    names = set()
    for whl in sorted(src.glob("*.whl")):
        if whl.name in skip:
            continue
        names.add(whl.name)
        try:
            os.link(whl, dest / whl.name)  # hard links: no copy of big wheels
        except OSError:
            shutil.copy2(whl, dest / whl.name)
    return names


def _pin_file(path: Path, requirements: list[str]) -> None:
    path.write_text("".join(r + "\n" for r in requirements))


def write_wheelhouse(
    context: Path, target: Target, requirements: list[str] | None, progress: Progress
) -> None:
    """Write `context`/wheels: runtime, modelwire, and (unless None) the model's requirements."""
    wheels = context / "wheels"
    pins = runtime_pins()
    runtime = _link_wheels(_download("runtime", pins, target, progress), wheels / "runtime")
    _pin_file(wheels / "runtime" / "requirements.txt", pins)
    _link_wheels(own_wheel(cached_dir, progress), wheels / "modelwire")
    if requirements is not None:
        model = _download("model", requirements, target, progress)
        _link_wheels(model, wheels / "model", skip=runtime)
        _pin_file(wheels / "model" / "requirements.txt", requirements)
