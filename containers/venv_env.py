"""Fresh venvs for validation: an interpreter of the bundle's Python, a venv holding only
the bundle's requirements and modelwire, and a command run there as another user.

The wheels come from the wheelhouse the image builds use (`write_wheelhouse`: cached
under ~/.cache/modelwire/wheels, hard-linked, modelwire's own wheel included), and pip
installs them with no index and no byte-compiling (a venv used once is faster to fill
than to compile). The venv is made without pip; the pip of this process installs into it
(`pip --python`), which saves the seconds `ensurepip` takes.

This is less isolated than a container: the model runs as a subprocess of this machine,
with its network and file system; `run_as` can make it another, unprivileged user (this
process must be root for that) and limit its address space.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from modelwire import __version__
from modelwire.containers.wheelhouse import Target, write_wheelhouse
from modelwire.errors import ConfigError, ToolError

__all__ = [
    "Account",
    "Finished",
    "account",
    "create_venv",
    "find_python",
    "install",
    "run_as",
    "wheelhouse",
]

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Account:
    """The user a command runs as."""

    name: str
    uid: int
    gid: int


def account(user: str | int) -> Account:
    """A user by name or uid (ConfigError if there is none, or if this process is not root)."""
    try:
        entry = pwd.getpwuid(user) if isinstance(user, int) else pwd.getpwnam(user)
    except KeyError:
        raise ConfigError("user", user, "no such user on this machine") from None
    if os.geteuid() != 0:
        raise ConfigError(
            "user", user, "running the model as another user needs root; leave --user out"
        )
    return Account(entry.pw_name, entry.pw_uid, entry.pw_gid)


def _reachable_by_others(path: Path) -> bool:
    """Whether any user may run `path`: the file and each directory above it are o+x."""
    try:
        resolved = path.resolve(strict=True)
        return all(p.stat().st_mode & stat.S_IXOTH for p in (resolved, *resolved.parents))
    except OSError:
        return False


def _version_of(python: Path) -> str | None:
    try:
        proc = subprocess.run(
            [str(python), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def find_python(minor: str, *, for_others: bool = False) -> Path | None:
    """An interpreter of Python `minor` ("3.11"): this one, or one on PATH or in /usr.

    Args:
        minor: the bundle's Python minor version.
        for_others: it must be runnable by any user (for `run_as`).
    """
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    candidates: list[Path] = []
    if here == minor:
        base = getattr(sys, "_base_executable", None) or sys.executable
        candidates += [Path(base), Path(sys.executable)]
    found = shutil.which(f"python{minor}")
    if found:
        candidates.append(Path(found))
    candidates += [Path(f"/usr/bin/python{minor}"), Path(f"/usr/local/bin/python{minor}")]
    for candidate in candidates:
        if not candidate.is_file() or (for_others and not _reachable_by_others(candidate)):
            continue
        if candidate == Path(sys.executable) or _version_of(candidate) == minor:
            return candidate
    return None


def wheelhouse(
    folder: Path, target: Target, requirements: Sequence[str], progress: Progress
) -> tuple[Path, ToolError | None]:
    """The wheels of modelwire (and its dependencies) and of `requirements` in `folder`.

    Returns:
        The wheels folder, and the error of downloading the model's requirements (None if
        they came): that one is the bundle's fault, the validator's own wheels are not.

    Raises:
        ToolError: modelwire's own wheels cannot be had.
    """
    write_wheelhouse(folder, target, None, progress)
    try:
        write_wheelhouse(folder, target, list(requirements), progress)
    except ToolError as exc:
        return folder / "wheels", exc
    return folder / "wheels", None


def _has_pip() -> bool:
    probe = [sys.executable, "-m", "pip", "--version"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


def create_venv(python: Path, venv: Path, progress: Progress) -> Path:
    """An empty venv of `python` at `venv` (without pip when this process has one); its
    python.

    Raises:
        ToolError: the venv cannot be made.
    """
    progress(f"creating a venv with {python}")
    without_pip = ["--without-pip"] if _has_pip() else []
    _run([str(python), "-m", "venv", *without_pip, str(venv)], "create the venv")
    return venv / "bin" / "python"


def install(venv_python: Path, wheels: Path, progress: Progress) -> None:
    """Install the wheelhouse's model requirements and modelwire into a venv, in the
    order and with the options of the image's Dockerfile.

    Raises:
        ToolError: pip cannot install them, e.g. a requirement has no wheel for this
            Python.
    """
    pip = (
        [sys.executable, "-m", "pip", "--python", str(venv_python)]
        if _has_pip()
        else [str(venv_python), "-m", "pip"]
    )
    progress("installing the bundle's requirements and modelwire into the venv")
    quiet = ["install", "-q", "--no-index", "--no-compile", "--no-cache-dir"]
    quiet.append("--disable-pip-version-check")
    # as the image's Dockerfile does: modelwire's third-party dependencies, the model's
    # requirements, then modelwire itself without its dependencies (they are in, all but
    # grpcio-tools, which only `modelwire stubs` needs)
    links = {name: ["--find-links", str(wheels / name)] for name in ("model", "runtime")}
    steps = (
        [*links["runtime"], "-r", str(wheels / "runtime" / "requirements.txt")],
        [*links["model"], *links["runtime"], "-r", str(wheels / "model" / "requirements.txt")],
        ["--no-deps", "--find-links", str(wheels / "modelwire"), f"modelwire=={__version__}"],
    )
    for step in steps:
        _run([*pip, *quiet, *step], "install the bundle's requirements and modelwire")


def _run(argv: list[str], what: str) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        lines = [x for x in proc.stderr.strip().splitlines() if x.strip()]
        raise ToolError(
            f"could not {what}",
            argv=argv,
            returncode=proc.returncode,
            stderr_tail="\n".join(lines[-10:]),
        )


@dataclass(frozen=True)
class Finished:
    """A command's end: its exit status (None if stopped at the time limit), its stdout."""

    returncode: int | None
    stdout: str
    seconds: float


def run_as(
    argv: Sequence[str],
    *,
    cwd: Path,
    log: Path,
    timeout: float,
    user: Account | None = None,
) -> Finished:
    """Run `argv` in a session of its own, stdout captured and stderr into `log`.

    The environment holds only PATH, a HOME and TMPDIR in `cwd`, and the locale: nothing
    of this process's settings or secrets. After `timeout` seconds the whole session is
    killed (the command and whatever it started).
    """
    home = cwd / "home"
    tmp = cwd / "tmp"
    for d in (cwd, home, tmp):
        d.mkdir(parents=True, exist_ok=True)
        if user is not None:
            os.chown(d, user.uid, user.gid)
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "TMPDIR": str(tmp),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
    }
    t0 = time.monotonic()
    with log.open("wb") as err:
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
            start_new_session=True,
            user=user.uid if user else None,
            group=user.gid if user else None,
            extra_groups=[] if user else None,
        )
        try:
            out, _ = proc.communicate(timeout=timeout)
            code: int | None = proc.returncode
        except subprocess.TimeoutExpired:
            _kill_session(proc.pid)
            out, _ = proc.communicate()
            code = None
        finally:
            _kill_session(proc.pid)  # whatever the model started and left behind
    return Finished(code, out.decode(errors="replace"), time.monotonic() - t0)


def _kill_session(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
