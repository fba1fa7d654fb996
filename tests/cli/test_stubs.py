"""`modelwire stubs BUNDLE -o DIR`: stubs an application imports with only grpcio and
protobuf installed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import pytest

from tests.cli.conftest import usage
from tests.servers import ServeProcess

FILES = ("model_pb2.py", "model_pb2.pyi", "model_pb2_grpc.py")


def test_stubs_writes_three_modules(cli, bundles, tmp_path):
    out = tmp_path / "stubs"
    result = cli("stubs", str(bundles["echo"]), "-o", str(out))
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == "".join(f"wrote {out / name}\n" for name in sorted(FILES))
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    pyi = (out / "model_pb2.pyi").read_text()
    assert "class AddRequest(_message.Message):" in pyi


def test_stubs_module_option_names_the_modules(cli, bundles, tmp_path):
    result = cli("stubs", str(bundles["echo"]), "-o", str(tmp_path), "--module", "echo")
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "echo_pb2.py",
        "echo_pb2.pyi",
        "echo_pb2_grpc.py",
    ]
    grpc_module = (tmp_path / "echo_pb2_grpc.py").read_text()
    assert "import echo_pb2 as echo__pb2" in grpc_module


def test_generated_stubs_import_and_build_messages(cli, bundles, tmp_path):
    """In a separate interpreter: the test process's descriptor pool stays untouched."""
    assert cli("stubs", str(bundles["echo"]), "-o", str(tmp_path)).exit_code == 0
    code = textwrap.dedent("""
        import model_pb2, model_pb2_grpc
        request = model_pb2.EchoRecordRequest(name="a", color=model_pb2.COLOR_GREEN)
        request.where.x = 1.5
        print(model_pb2.EchoRecordRequest.FromString(request.SerializeToString()).where.x)
        print(sorted(n for n in dir(model_pb2_grpc) if n.startswith("Echo")))
    """)
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "1.5\n['EchoService', 'EchoServiceServicer', 'EchoServiceStub']\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param([], "Missing argument 'BUNDLE'.", id="no-bundle"),
        pytest.param(["{bundle}"], "Missing option '-o' / '--output'.", id="no-output"),
        pytest.param(
            ["{bundle}", "-o", "{out}", "--module", "my-model"],
            "Invalid value for '--module': module name 'my-model' must be a Python identifier",
            id="module-not-an-identifier",
        ),
        pytest.param(
            ["{bundle}", "-o", "{out}", "--format", "go"],
            "No such option '--format'.",
            id="unknown-option",
        ),
    ],
)
def test_bad_arguments_are_usage_errors(cli, bundles, tmp_path, args, message):
    fill = {"{bundle}": str(bundles["echo"]), "{out}": str(tmp_path / "out")}
    result = cli("stubs", *(fill.get(a, a) for a in args))
    assert (result.exit_code, result.stdout, result.stderr) == (
        2,
        "",
        usage("stubs", "BUNDLE", message),
    )
    assert not (tmp_path / "out").exists()


def test_missing_bundle_is_one_error_line(cli, tmp_path):
    result = cli("stubs", str(tmp_path / "nope"), "-o", str(tmp_path / "out"))
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        f"error: bundle {tmp_path / 'nope'}: no such file or directory\n",
    )
    assert not (tmp_path / "out").exists()


def test_tampered_bundle_is_one_error_line(cli, bundles, tmp_path):
    tampered = tmp_path / "tampered"
    shutil.copytree(bundles["echo"], tampered)
    proto = tampered / "model.proto"
    proto.write_text(proto.read_text().replace("double b = 2;", "string b = 2;"))
    result = cli("stubs", str(tampered), "-o", str(tmp_path / "out"))
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        f"error: bundle {tampered}: file model.proto does not match its sha256 in "
        "modelwire.json; the bundle was modified after it was written\n",
    )


def test_an_output_path_that_cannot_be_a_directory_is_one_error_line(cli, bundles, tmp_path):
    in_the_way = tmp_path / "notes.txt"
    in_the_way.write_text("precious")
    result = cli("stubs", str(bundles["echo"]), "-o", str(in_the_way))
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        f"error: cannot write the stubs to {in_the_way} (File exists: {in_the_way})\n",
    )
    assert in_the_way.read_text() == "precious"


def test_an_output_directory_ending_in_zip_is_a_directory(cli, bundles, tmp_path):
    """protoc writes an archive to an output path ending in .zip; -o is a directory."""
    out = tmp_path / "stubs.zip"
    result = cli("stubs", str(bundles["echo"]), "-o", str(out))
    assert (result.exit_code, result.stderr) == (0, "")
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)


# ---------------------------------------------------------------- an application's venv

CLIENT = """
import sys

import grpc

import model_pb2
import model_pb2_grpc

with grpc.insecure_channel(sys.argv[1]) as channel:
    stub = model_pb2_grpc.EchoServiceStub(channel)
    print(stub.Add(model_pb2.AddRequest(a=1.25, b=2), timeout=30).value)
    reply = stub.EchoRecord(
        model_pb2.EchoRecordRequest(
            name="ada", scores=[1.0, 2.0], color=model_pb2.COLOR_RED,
            where=model_pb2.Point(x=3, y=4),
        ),
        timeout=30,
    )
    print(reply.name, list(reply.scores), model_pb2.Color.Name(reply.color), reply.where.y,
          reply.HasField("note"))
    try:
        stub.Reject(model_pb2.RejectRequest(x=-1), timeout=30)
    except grpc.RpcError as exc:
        print(exc.code().name)
try:
    import modelwire
except ImportError:
    print("no modelwire here")
"""


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_stubs_serve_an_app_that_has_only_grpcio_and_protobuf(cli, bundles, tmp_path):
    env_dir = tmp_path / "app-venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    pip = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "grpcio", "protobuf"],
        capture_output=True,
        text=True,
        env=clean,
        check=False,
        timeout=240,
    )
    assert pip.returncode == 0, pip.stderr
    app = tmp_path / "app"
    assert cli("stubs", str(bundles["echo"]), "-o", str(app)).exit_code == 0
    (app / "client.py").write_text(CLIENT)
    server = ServeProcess(str(bundles["echo"]))
    try:
        run = subprocess.run(
            [str(python), "client.py", server.address],
            cwd=app,
            capture_output=True,
            text=True,
            env=clean,
            check=False,
            timeout=60,
        )
    finally:
        code = server.terminate()
        for stream in (server.proc.stdout, server.proc.stderr):
            stream.close()
    assert run.returncode == 0, run.stderr
    assert run.stdout == (
        "3.25\nada [1.0, 2.0] COLOR_RED 4.0 False\nINVALID_ARGUMENT\nno modelwire here\n"
    )
    assert code == 0, server.stderr
    listed = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=freeze"],
        capture_output=True,
        text=True,
        env=clean,
        check=True,
    ).stdout
    names = sorted(line.split("==")[0].lower() for line in listed.splitlines())
    assert "modelwire" not in names and "numpy" not in names, names
    assert Path(app / "model_pb2.py").is_file()
