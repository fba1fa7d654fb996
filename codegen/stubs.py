"""`.proto` -> importable Python stubs, with protoc from grpcio-tools.

The only module that runs protoc. The stubs need nothing but grpcio and
protobuf at run time: `<module>_pb2.py`, `<module>_pb2.pyi` and
`<module>_pb2_grpc.py`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from modelwire.errors import ToolError

__all__ = ["compile_stubs"]

_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _include_dir() -> str:
    try:
        import grpc_tools
    except ImportError as exc:
        # a dependency of modelwire, so missing only where it was left out on purpose
        # (modelwire's images, `pip install --no-deps`) or removed
        raise ToolError(
            "stub generation needs grpcio-tools, a dependency of modelwire that this "
            "environment lacks (modelwire's images leave it out); pip install grpcio-tools"
        ) from exc
    return str(Path(grpc_tools.__file__).parent / "_proto")


def compile_stubs(proto: str, out_dir: Path, *, module: str = "model") -> list[Path]:
    """Compile proto text into Python stubs in `out_dir`.

    Args:
        proto: proto3 source text.
        out_dir: where to write the stubs (created if missing).
        module: base name of the modules; apps importing stubs of several models
            in one process need a different name per model.

    Returns:
        The files written, sorted.

    Raises:
        ToolError: protoc rejected the proto or cannot run.
        ValueError: `module` is not a Python identifier.
        OSError: `out_dir` cannot be created.
    """
    if not _MODULE.match(module):
        raise ValueError(f"module name {module!r} must be a Python identifier")
    include = _include_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="modelwire-stubs-") as tmp:
        src = Path(tmp) / f"{module}.proto"
        src.write_text(proto, encoding="utf-8")
        argv = [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{tmp}",
            f"-I{include}",
            # the trailing separator: protoc writes an archive to a path ending in .zip
            f"--python_out={out_dir}{os.sep}",
            f"--pyi_out={out_dir}{os.sep}",
            f"--grpc_python_out={out_dir}{os.sep}",
            src.name,
        ]
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            tail = "\n".join(proc.stderr.strip().splitlines()[-20:])
            raise ToolError(
                "protoc failed", argv=argv, returncode=proc.returncode, stderr_tail=tail
            )
    return sorted(
        out_dir / f"{module}{suffix}" for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")
    )
