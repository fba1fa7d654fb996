"""The reference tools generated protos are held against: protoc, its Python stubs, and buf.

Nothing here imports modelwire's codec: these are the independent side of every comparison.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from google.protobuf import descriptor_pb2

from modelwire.codegen.stubs import compile_stubs

REPO = Path(__file__).resolve().parents[2]


def protoc_descriptor(
    proto: str, file_name: str, workdir: Path
) -> descriptor_pb2.FileDescriptorProto:
    """What protoc makes of `proto` placed at `file_name`, without source info."""
    from grpc_tools import protoc

    src = workdir / "src"
    path = src / file_name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(proto, encoding="utf-8")
    out = workdir / "descriptor_set.pb"
    argv = [
        "grpc_tools.protoc",
        f"-I{src}",
        f"--descriptor_set_out={out}",
        "--include_imports",
        file_name,
    ]
    assert protoc.main(argv) == 0, f"protoc rejected {file_name}:\n{proto}"
    descriptor_set = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    (fdp,) = [f for f in descriptor_set.file if f.name == file_name]
    fdp.ClearField("source_code_info")
    return fdp


class StubCache:
    """Python stubs compiled by grpcio-tools, one module per distinct proto text.

    Each module gets a name derived from the proto's digest, so its file registers in the
    default descriptor pool under a unique name; the protos themselves must use distinct
    packages (the pool rejects a symbol defined by two files).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._modules: dict[str, ModuleType] = {}

    def module(self, proto: str) -> ModuleType:
        mod = self._modules.get(proto)
        if mod is None:
            name = "mw_" + hashlib.sha256(proto.encode()).hexdigest()[:20]
            out = self.root / name
            compile_stubs(proto, out, module=name)
            spec = importlib.util.spec_from_file_location(f"{name}_pb2", out / f"{name}_pb2.py")
            assert spec is not None and spec.loader is not None
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            self._modules[proto] = mod
        return mod


def buf_executable() -> str | None:
    """The `buf` binary of the buf-bin package in this venv, else one on PATH."""
    beside = Path(sys.executable).parent / "buf"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("buf")


def buf_lint(buf: str, protos: dict[str, str], root: Path) -> dict[str, list[str]]:
    """Run `buf lint` with the repository's buf.yaml over {path under proto/: text}.

    Returns:
        The findings per file (path relative to the module root), empty lists included.
    """
    shutil.copy(REPO / "buf.yaml", root / "buf.yaml")
    for rel, text in protos.items():
        path = root / "proto" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    env = {**os.environ, "BUF_CACHE_DIR": str(root / ".cache")}
    proc = subprocess.run(
        [buf, "lint", "--error-format", "text"],
        cwd=root,
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )
    # buf exits 100 when it has findings, 0 when it has none: anything else is a failed run
    assert proc.returncode in (0, 100), f"buf lint failed to run:\n{proc.stderr}"
    assert (proc.returncode == 100) == bool(proc.stdout.strip()), (proc.returncode, proc.stdout)
    findings: dict[str, list[str]] = {rel: [] for rel in protos}
    for line in proc.stdout.splitlines():
        path = line.split(":", 1)[0].removeprefix("proto/")
        findings.setdefault(path, []).append(line)
    return findings
