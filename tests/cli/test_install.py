"""What a plain `pip install modelwire` gives the CLI: grpcio-tools comes with it, so
`modelwire stubs` works; where it was left out (modelwire's images, `--no-deps`), stubs
says so in one line and writes nothing. (tests/docker/test_fresh_install.py runs every
command in a fresh venv.)"""

from __future__ import annotations

import importlib.metadata as md
import subprocess
import sys

from tests.servers import clean_env


def test_grpcio_tools_is_a_dependency_of_every_install_not_an_extra():
    requires = md.requires("modelwire") or []
    assert [r for r in requires if r.startswith("grpcio-tools")] == ["grpcio-tools>=1.60"]
    # `[build]` stays as an empty alias, for old install lines
    assert "build" in (md.metadata("modelwire").get_all("Provides-Extra") or [])
    assert not [r for r in requires if 'extra == "build"' in r]


# the CLI in an interpreter where grpc_tools cannot be imported, as in an image
WITHOUT_GRPC_TOOLS = (
    "import sys\nsys.modules['grpc_tools'] = None\nfrom modelwire.cli import main\nmain()"
)


def test_stubs_without_grpcio_tools_is_one_error_line_saying_what_to_install(bundles, tmp_path):
    out = tmp_path / "stubs"
    proc = subprocess.run(
        [sys.executable, "-c", WITHOUT_GRPC_TOOLS, "stubs", str(bundles["echo"]), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=clean_env(),
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (
        1,
        "",
        "error: stub generation needs grpcio-tools, a dependency of modelwire that this "
        "environment lacks (modelwire's images leave it out); pip install grpcio-tools\n",
    )
    assert not out.exists()
