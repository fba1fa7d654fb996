"""A bundle's image run as a sandbox: one container, confined, that replays the examples.

The container runs `python -m modelwire.runtime.replay` (which serves the bundle inside
and calls it over loopback, so it needs no network at all) with the limits of
`SandboxLimits`: no network, a read-only root with a small tmpfs at /tmp (its HOME and
work dir), a non-root user, no capabilities and no privilege gain, memory (swap
included), CPU and process-count limits, and a wall-clock time limit after which it is
killed. The container is removed when it ends; its stdout carries the trial, its stderr
the server's log.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Any

from modelwire.errors import ConfigError

__all__ = [
    "SANDBOX_LABEL",
    "SandboxLimits",
    "SandboxRun",
    "memory_bytes",
    "remove_strays",
    "run_sandbox",
]

# every sandbox container carries it (with the validator's pid and host), to find strays
SANDBOX_LABEL = "io.modelwire.validation"
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def memory_bytes(text: str) -> int:
    """`512m`, `2g`, `1048576` -> bytes (ConfigError for anything else)."""
    value = text.strip().lower()
    unit = value[-1:] if value[-1:] in _UNITS and not value[-1:].isdigit() else ""
    number = value[: len(value) - len(unit)]
    if not number.isdigit() or int(number) <= 0:
        raise ConfigError("memory", text, "expected a size such as 512m or 2g")
    size = int(number) * _UNITS[unit]
    if size < 64 << 20:
        raise ConfigError("memory", text, "at least 64m: a Python server needs that much")
    return size


@dataclass(frozen=True)
class SandboxLimits:
    """What confines the model.

    Attributes:
        network: whether the container has a network (False: `network_mode=none`).
        read_only: a read-only root file system (a tmpfs at /tmp stays writable).
        memory: bytes of memory, swap included.
        cpus: CPUs it may use (fractions allowed).
        timeout: seconds the whole run may take; then it is killed.
        user: the user it runs as (`uid[:gid]`); "" for the image's own, non-root, user.
        pids: how many processes and threads it may have.
    """

    network: bool = False
    read_only: bool = True
    memory: int = 2 << 30
    cpus: float = 1.0
    timeout: float = 600.0
    user: str = ""
    pids: int = 512

    def describe(self) -> tuple[str, ...]:
        """The limits as the report lists them."""
        return (
            "network" if self.network else "no network",
            "read-only root" if self.read_only else "writable root",
            f"user {self.user}" if self.user else "the image's non-root user",
            f"memory {self.memory >> 20}m",
            f"cpus {self.cpus:g}",
            f"time {self.timeout:g} s",
            f"{self.pids} processes",
            "no capabilities",
        )


@dataclass(frozen=True)
class SandboxRun:
    """How the container ended.

    Attributes:
        exit_status: its exit status (None if killed at the time limit).
        oom_killed: the kernel killed a process of it for its memory use.
        stdout: what it printed (the trial).
        log_tail: the last lines of its stderr.
        seconds: how long it ran.
    """

    exit_status: int | None
    oom_killed: bool
    stdout: str
    log_tail: tuple[str, ...]
    seconds: float


def _alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        pass
    return True


def remove_strays(client: Any) -> int:
    """Remove the sandboxes of validators on this host that died without removing them
    (SIGKILL, a crash); returns how many."""
    import docker.errors

    filters = {"label": [SANDBOX_LABEL, f"io.modelwire.host={socket.gethostname()}"]}
    removed = 0
    for c in client.containers.list(all=True, filters=filters, ignore_removed=True):
        if not _alive(c.labels.get("io.modelwire.pid", "")):
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                c.remove(force=True)
                removed += 1
    return removed


def run_sandbox(
    client: Any, image: str, argv: list[str], limits: SandboxLimits, *, tail: int = 40
) -> SandboxRun:
    """Run `argv` (after `python -m`) in a confined container of `image`, to its end."""
    import docker.errors

    if limits.cpus <= 0:
        raise ConfigError("cpus", limits.cpus, "must be more than 0")
    labels = {
        SANDBOX_LABEL: uuid.uuid4().hex[:12],
        "io.modelwire.pid": str(os.getpid()),
        "io.modelwire.host": socket.gethostname(),
    }
    options: dict[str, Any] = {
        "entrypoint": ["python", "-m"],
        "command": argv,
        "detach": True,
        "init": True,
        "labels": labels,
        "network_mode": "bridge" if limits.network else "none",
        "read_only": limits.read_only,
        "tmpfs": {"/tmp": "rw,nosuid,nodev,size=256m,mode=1777"},
        "working_dir": "/tmp",
        "environment": {"HOME": "/tmp", "TMPDIR": "/tmp"},
        "mem_limit": limits.memory,
        "memswap_limit": limits.memory,
        "nano_cpus": int(limits.cpus * 1e9),
        "pids_limit": limits.pids,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
    }
    if limits.user:
        options["user"] = limits.user
    remove_strays(client)
    t0 = time.monotonic()
    container = client.containers.run(image, **options)
    try:
        try:
            status: int | None = int(container.wait(timeout=limits.timeout)["StatusCode"])
        except OSError:  # requests' ReadTimeout (an OSError): the time limit passed
            container.kill()
            container.wait(timeout=60)
            status = None
        seconds = time.monotonic() - t0
        container.reload()
        oom = bool(container.attrs["State"].get("OOMKilled"))
        stdout = container.logs(stdout=True, stderr=False).decode(errors="replace")
        err = container.logs(stdout=False, stderr=True, tail=tail).decode(errors="replace")
    finally:
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            container.remove(force=True)
    return SandboxRun(status, oom, stdout, tuple(err.splitlines()), seconds)
