"""A new user's install: the project's wheel in a fresh venv (no extra but `docker`), and
every way modelwire is used, typed as the user types it.

The venv's `modelwire` runs with an empty modelwire cache (XDG_CACHE_HOME is a fresh
folder: a modelwire wheel that an earlier build on this machine cached would hide a build
that works only from a checkout); pip keeps its usual download cache for third-party
wheels. It runs `dump` on a small model file, `stubs`, `serve` + `call`, `check` and
`run` of a blueprint, `catalog serve` + `push` and `pull`, and `build` of the image +
`docker run` of it + a call to it (on the session's base image).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

from tests.docker.conftest import wait_serving
from tests.source_tree import copy_source_tree

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(1500)]

MODEL = '''\
from typing import NamedTuple

from modelwire import Model


class Words(NamedTuple):
    text: str
    times: int


class Shout(NamedTuple):
    text: str


class Size(NamedTuple):
    count: int


def shout(words: Words) -> Shout:
    """The text in capitals with a '!', `times` times."""
    return Shout((words.text.upper() + "!") * words.times)


def measure(loud: Shout) -> Size:
    return Size(len(loud.text))


model = Model(shout=shout, measure=measure)
'''

BLUEPRINT = """\
name: loud
models:
  words: {bundle: build/shouter}
methods:
  loudness:
    steps:
      loud: {call: words.shout, with: $input}
      size: {call: words.measure, with: loud}
    output: size
"""

REQUEST = '{"text": "hi", "times": 2}'


@dataclass
class User:
    """A shell in a fresh venv: `run` and `start` take a command line as the user types it."""

    venv: Path
    home: Path  # the working directory
    cache: Path  # XDG_CACHE_HOME
    env: dict[str, str]

    def run(self, *argv: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv,
            cwd=self.home,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def ok(self, *argv: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        proc = self.run(*argv, timeout=timeout)
        assert proc.returncode == 0, f"{argv}\n{proc.stdout}\n{proc.stderr}"
        return proc

    def start(self, *argv: str, listening: str) -> Started:
        log = (self.home / f"{argv[1]}-{len(list(self.home.glob('*.log')))}.log").open("w+")
        proc = subprocess.Popen(
            argv, cwd=self.home, env=self.env, stdout=subprocess.PIPE, stderr=log, text=True
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith(listening):
                started = Started(proc, line[len(listening) :].strip(), log)
                wait_serving(started.address, 120, started.stderr)
                return started
        proc.wait(30)
        proc.stdout.close()
        raise AssertionError(f"{argv} exited with {proc.returncode}:\n{Started.read(log)}")


@dataclass
class Started:
    proc: subprocess.Popen[str]
    address: str
    log: IO[str]

    @staticmethod
    def read(log: IO[str]) -> str:
        log.flush()
        log.seek(0)
        return log.read()

    def stderr(self) -> str:
        return self.read(self.log)

    def stop(self) -> int:
        self.proc.terminate()
        code = self.proc.wait(60)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        self.log.close()
        return code


def _pip_cache() -> dict[str, str]:
    """pip's usual download cache, kept for the venv's pip although XDG_CACHE_HOME moves."""
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "cache", "dir"], capture_output=True, text=True, check=False
    )
    return {"PIP_CACHE_DIR": proc.stdout.strip()} if proc.returncode == 0 else {}


@pytest.fixture(scope="module")
def user(tmp_path_factory: pytest.TempPathFactory) -> User:
    """The project's wheel (built from a clean copy of the tree) installed with its
    `docker` extra into a fresh venv, and a working directory with the model file."""
    base = tmp_path_factory.mktemp("fresh-install")
    tree = copy_source_tree(base / "clone")
    pip = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    built = subprocess.run(
        [*pip, "-w", str(base / "dist"), str(tree)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    home = base / "home"
    home.mkdir()
    (home / "shouter.py").write_text(MODEL)
    # the user's own shell: no test settings, nothing pointing into the dev venv
    left_out = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("MODELWIRE_") and k not in left_out
    }
    env.update(_pip_cache())
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["XDG_CACHE_HOME"] = str(base / "empty-cache")
    env["MODELWIRE_CONFIG"] = str(base / "no-config.toml")
    you = User(venv, home, base / "empty-cache", env)
    wheel = base / "dist" / "modelwire-0.1.0-py3-none-any.whl"
    you.ok("pip", "install", "-q", f"{wheel}[docker]", timeout=900)
    return you


@pytest.fixture(scope="module")
def dumped(user: User) -> subprocess.CompletedProcess[str]:
    return user.ok("modelwire", "dump", "shouter.py:model", "shouter", "-o", "build/shouter")


def test_the_venv_runs_the_installed_wheel_not_a_checkout(user):
    where = user.ok("python", "-c", "import modelwire; print(modelwire.__file__)").stdout
    site = user.venv / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    assert where == f"{site / 'site-packages' / 'modelwire' / '__init__.py'}\n"
    assert user.ok("modelwire", "--version").stdout == "modelwire, version 0.1.0\n"
    assert not user.cache.exists()


def test_dump_writes_the_bundle(user, dumped):
    assert dumped.stdout == (
        "wrote build/shouter\n"
        "  service   modelwire.models.shouter.v1.ShouterService\n"
        "  rpc       Shout(ShoutRequest) returns (ShoutResponse)\n"
        "  rpc       Measure(MeasureRequest) returns (MeasureResponse)\n"
        "  requires  (nothing)\n"
    )
    assert (user.home / "build" / "shouter" / "modelwire.json").is_file()


def test_stubs_work_after_a_plain_install(user, dumped):
    out = user.ok("modelwire", "stubs", "build/shouter", "-o", "stubs")
    assert out.stdout == (
        "wrote stubs/model_pb2.py\nwrote stubs/model_pb2.pyi\nwrote stubs/model_pb2_grpc.py\n"
    )
    script = (
        "import sys; sys.path.insert(0, 'stubs'); import model_pb2, model_pb2_grpc; "
        "print(model_pb2.ShoutRequest(text='hi', times=2), model_pb2_grpc.ShouterServiceStub)"
    )
    assert user.ok("python", "-c", script).stdout == (
        "text: \"hi\"\ntimes: 2\n <class 'model_pb2_grpc.ShouterServiceStub'>\n"
    )


@pytest.fixture
def started(user: User) -> Iterator[list[Started]]:
    """What a test started; stopped (SIGTERM) after it."""
    running: list[Started] = []
    yield running
    for server in running:
        if server.proc.poll() is None:
            server.stop()


def test_serve_and_call(user, dumped, started):
    served = user.start(
        "modelwire", "serve", "build/shouter", "--port", "0",
        listening="modelwire runtime listening on ",
    )  # fmt: skip
    started.append(served)
    reply = user.ok("modelwire", "call", served.address, "shout", REQUEST)
    assert json.loads(reply.stdout) == {"text": "HI!HI!"}
    assert served.stop() == 0


def test_check_and_run_a_blueprint(user, dumped, started):
    (user.home / "loud.yaml").write_text(BLUEPRINT)
    checked = user.ok("modelwire", "check", "loud.yaml")
    assert "Loudness" in checked.stdout and "count" in checked.stdout, checked.stdout
    solution = user.start(
        "modelwire", "run", "loud.yaml", "--port", "0", listening="modelwire broker listening on "
    )
    started.append(solution)
    reply = user.ok("modelwire", "call", solution.address, "loudness", REQUEST)
    assert json.loads(reply.stdout) == {"count": 6}
    assert solution.stop() == 0


def test_catalog_serve_push_and_pull(user, dumped, started):
    added = user.ok("modelwire", "catalog", "user", "add", "alice", "--data", "catalog-data")
    token = added.stdout.splitlines()[-1]
    assert token.startswith("mwt_"), added.stdout
    catalog = user.start(
        "modelwire", "catalog", "serve", "--data", "catalog-data", "--port", "0",
        "--validate", "off",  # about the install: validation has tests of its own
        listening="modelwire catalog listening on ",
    )  # fmt: skip
    started.append(catalog)
    auth = ("--catalog", catalog.address, "--token", token)
    pushed = user.ok("modelwire", "push", "build/shouter", *auth)
    assert "shouter:1.0.0" in pushed.stdout, pushed.stdout
    user.ok("modelwire", "pull", "shouter:1.0.0", "-o", "pulled", *auth)
    for name in ("modelwire.json", "model.proto", "model.pkl"):
        assert (user.home / "pulled" / name).read_bytes() == (
            user.home / "build" / "shouter" / name
        ).read_bytes()
    assert catalog.stop() == 0


def test_build_then_docker_run_then_call(user, dumped, test_images, run_container):
    """With no cached modelwire wheel: the wheel is packed from the installed files."""
    tag = f"{test_images}/shouter:1.0.0"
    built = user.ok("modelwire", "build", "build/shouter", "-t", tag, timeout=1200)
    site = user.venv / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    assert (
        f"  packing the modelwire 0.1.0 wheel from its installed files ({site / 'site-packages'})\n"
    ) in built.stderr
    assert built.stdout.startswith(f"built {tag} ("), built.stdout
    cached = sorted((user.cache / "modelwire" / "wheels").glob("modelwire-*/*.whl"))
    assert [p.name for p in cached] == ["modelwire-0.1.0-py3-none-any.whl"]

    running = run_container(tag)
    reply = user.ok("modelwire", "call", running.address, "shout", REQUEST)
    assert json.loads(reply.stdout) == {"text": "HI!HI!"}
    # the image only serves: no grpcio-tools (nor the setuptools it needs) inside
    stubs = running.container.exec_run(
        ["modelwire", "stubs", "/opt/modelwire/bundle", "-o", "/tmp/s"]
    )
    assert (stubs.exit_code, stubs.output.decode()) == (
        1,
        "error: stub generation needs grpcio-tools, a dependency of modelwire that this "
        "environment lacks (modelwire's images leave it out); pip install grpcio-tools\n",
    )
