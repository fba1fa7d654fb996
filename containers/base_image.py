"""The base image of a build: pulled if missing, probed once per image id for its Python
minor version, libc and machine (so the wheels fit the image rather than this machine),
and checked against the bundle's Python before anything is downloaded or built.

The probe runs the image's own python3 in a throwaway container with no network; its
answer is cached under ~/.cache/modelwire/bases by image id.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from modelwire.bundle import Bundle
from modelwire.containers.wheelhouse import Target, cache_root, platforms
from modelwire.errors import ConfigError

__all__ = ["DEFAULT_BASE", "BaseImage", "check_python", "inspect_base"]

DEFAULT_BASE = "python:3.11-slim"
Progress = Callable[[str], None]

# what the base image's python3 prints: "3.11 x86_64 glibc 2.36" ("3.11 x86_64" on musl)
_PROBE = (
    "import platform, sys; "
    "print('%d.%d' % sys.version_info[:2], platform.machine(), *platform.libc_ver())"
)


def _quiet(line: str) -> None:
    pass


@dataclass(frozen=True)
class BaseImage:
    """What a base image offers, as its own python3 reports it."""

    name: str
    id: str  # sha256:...
    python: str  # "3.11"
    machine: str  # "x86_64", "aarch64"
    libc: str = ""  # "glibc", or "" (musl or unknown)
    libc_version: str = ""  # "2.36"

    @property
    def target(self) -> Target:
        """What its wheels must fit."""
        return Target(self.python, platforms(self.machine, self.libc, self.libc_version))


def inspect_base(client: Any, base: str, *, progress: Progress = _quiet) -> BaseImage:
    """The base image, pulled if it is not here yet, and probed (once per image id).

    Raises:
        ConfigError: the image is not here and cannot be pulled, or has no working python3.
    """
    import docker.errors

    try:
        image = client.images.get(base)
    except docker.errors.ImageNotFound:
        progress(f"pulling {base}")
        try:
            image = client.images.pull(base)
        except docker.errors.APIError as exc:
            raise ConfigError(
                "base",
                base,
                f"no such image here, and it cannot be pulled ({exc.explanation or exc}); "
                "create it (scripts/docker-setup.sh makes python:3.11-slim) or choose "
                "another with --base",
            ) from None
    cached = cache_root() / "bases" / f"{image.id.replace(':', '-')}.json"
    try:
        words = json.loads(cached.read_text())
    except (OSError, ValueError):
        words = _probe(client, image.id, base)
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_text(json.dumps(words))
    libc = words[2:4] if len(words) >= 4 else ["", ""]
    return BaseImage(base, image.id, words[0], words[1], libc[0], libc[1])


def _probe(client: Any, image_id: str, base: str) -> list[str]:
    import docker.errors

    try:
        out = client.containers.run(
            image_id, ["-c", _PROBE], entrypoint=["python3"], network_disabled=True, remove=True
        )
    except docker.errors.DockerException as exc:
        raise ConfigError(
            "base", base, f"cannot run python3 in it ({exc}); use an image with Python"
        ) from None
    text: str = out.decode(errors="replace")
    words = text.split()
    if len(words) < 2 or not re.fullmatch(r"\d+\.\d+", words[0]):
        raise ConfigError("base", base, f"its python3 reports {text!r}, not a version")
    return words


def check_python(base: BaseImage, bundle: Bundle) -> None:
    """ConfigError unless the base image runs the bundle's Python minor version."""
    want = bundle.manifest.python
    if base.python != want:
        raise ConfigError(
            "base",
            base.name,
            f"has Python {base.python}, but bundle {bundle.path} was dumped with Python "
            f"{want} and its pickled code loads only there; choose a base image with "
            f"Python {want} (--base)",
        )
