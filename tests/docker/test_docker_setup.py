"""scripts/docker-setup.sh, the parts that can be tried without stopping this machine's
engine: what a dead daemon leaves behind is cleared (its functions, sourced, on a scratch
run directory), a running one's files are kept, and the fast path is quiet."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.docker.engine import docker_reachable

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "docker-setup.sh"


def source(function: str, run_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", f'source "{SCRIPT}"; {function}'],
        env={**os.environ, "DOCKER_SETUP_RUN_DIR": str(run_dir)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_dead_daemons_pid_files_and_a_socket_directory_are_cleared(tmp_path):
    (tmp_path / "docker" / "containerd").mkdir(parents=True)
    (tmp_path / "docker.pid").write_text(f"{dead_pid()}\n")
    (tmp_path / "docker" / "containerd" / "containerd.pid").write_text(str(dead_pid()))
    (tmp_path / "docker.sock").mkdir()  # what a bind mount of a missing socket leaves
    proc = source("clear_stale", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "docker.pid").exists()
    assert not (tmp_path / "docker" / "containerd" / "containerd.pid").exists()
    assert not (tmp_path / "docker.sock").exists()
    assert proc.stderr.count("docker-setup: removing stale ") == 3


def test_a_live_daemons_pid_file_is_kept(tmp_path):
    (tmp_path / "docker.pid").write_text(str(os.getpid()))
    proc = source("clear_stale", tmp_path)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert (tmp_path / "docker.pid").exists()


def test_the_script_parses():
    assert subprocess.run(["bash", "-n", str(SCRIPT)], check=False).returncode == 0


@pytest.mark.docker
def test_with_everything_there_it_is_quiet(tmp_path):
    assert docker_reachable()
    proc = subprocess.run([str(SCRIPT)], capture_output=True, text=True, timeout=120, check=False)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")


def test_the_daemon_it_starts_holds_neither_the_lock_nor_the_callers_pipes(tmp_path):
    """dockerd once inherited the lock's fd: the next docker-setup.sh (make test runs it
    again) then waited on the lock for as long as dockerd lived, and CI timed out."""
    lock = tmp_path / "lock"
    script = (
        f'source "{SCRIPT}"; DOCKERD_LOG="{tmp_path}/log"; '
        f'exec 9>>"{lock}"; flock 9; detached sleep 60; echo $!'
    )
    proc = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, timeout=30, check=False
    )
    assert proc.returncode == 0, proc.stderr
    pid = int(proc.stdout.split()[-1])
    try:
        # the caller's pipes were closed: subprocess.run returned, the daemon lives on
        assert Path(f"/proc/{pid}").exists()
        # `$!` is the subshell, still closing fds (its glob of /proc/self/fd holds one
        # open for a moment) until it execs the command: look once it is `sleep`
        deadline = time.monotonic() + 10
        while Path(f"/proc/{pid}/comm").read_text().strip() != "sleep":
            assert time.monotonic() < deadline, "the detached command never started"
            time.sleep(0.01)
        held = sorted(int(fd) for fd in os.listdir(f"/proc/{pid}/fd"))
        assert held == [0, 1, 2]
        again = subprocess.run(["flock", "-n", str(lock), "true"], check=False)
        assert again.returncode == 0, "the lock is still held by the detached daemon"
    finally:
        os.kill(pid, 9)
