"""The project's own protos: rendered from the IR the code uses, and clean under `buf lint`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from modelwire.codegen.lowering import lower
from modelwire.codegen.proto import render_file
from modelwire.hosting.info import INFO_FILE, INFO_SCHEMA

ROOT = Path(__file__).resolve().parent.parent
HEADER = (
    "The model-info service every modelwire runtime serves beside the model.\n"
    "Rendered from modelwire.hosting.info.INFO_SCHEMA; tests/test_protos.py keeps the two equal."
)


def test_info_proto_is_the_rendering_of_the_schema_the_runtime_serves():
    on_disk = (ROOT / "proto" / INFO_FILE).read_text()
    assert on_disk == render_file(lower(INFO_SCHEMA), header=HEADER)


def test_catalog_proto_is_the_rendering_of_the_schema_the_catalog_serves():
    from modelwire.catalog.api import CATALOG_FILE, CATALOG_SCHEMA

    header = (
        "The catalog service: push, pull, publish, search model bundles.\n"
        "Rendered from modelwire.catalog.api.CATALOG_SCHEMA; tests/test_protos.py keeps the two "
        "equal."
    )
    on_disk = (ROOT / "proto" / CATALOG_FILE).read_text()
    assert on_disk == render_file(lower(CATALOG_SCHEMA), header=header)


def test_buf_lint_passes_on_the_projects_protos_with_the_root_buf_yaml():
    buf = shutil.which("buf", path=str(Path(sys.executable).parent)) or shutil.which("buf")
    assert buf is not None, "buf comes with the dev extras (buf-bin)"
    proc = subprocess.run([buf, "lint"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == ""
