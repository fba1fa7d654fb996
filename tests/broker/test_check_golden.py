"""`modelwire check FILE`: one golden case per diagnostic, run through the real CLI.

Each case is `tests/fixtures/blueprints/<case>/blueprint.yaml` and `expected.txt`, the exact
output (stderr for errors, stdout for a blueprint that checks). A case runs from a copy next
to the fixture models' bundles (`../_bundles/<model>`), with the blueprint as the working
directory, so the locations read `blueprint.yaml:LINE:COL`; `$CASE` in `expected.txt` stands
for the copy's absolute path. Run with UPDATE_GOLDEN=1 to rewrite the expected files, then
read the diff.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent.parent / "fixtures" / "blueprints"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"

# (case, exit status); every directory under FIXTURES is listed here, and every listed
# case must exist: a case that is listed but missing fails, it is never skipped
CASES = [
    pytest.param("ok", 0, id="ok"),
    pytest.param("bad-yaml", 1, id="bad-yaml"),
    pytest.param("structure", 1, id="structure"),
    pytest.param("missing-field", 1, id="missing-field"),
    pytest.param("scalar-mismatch", 1, id="scalar-mismatch"),
    pytest.param("cardinality", 1, id="cardinality"),
    pytest.param("nested-mismatch", 1, id="nested-mismatch"),
    pytest.param("tensor-dtype", 1, id="tensor-dtype"),
    pytest.param("unknown-model", 1, id="unknown-model"),
    pytest.param("unknown-method", 1, id="unknown-method"),
    pytest.param("unknown-step", 1, id="unknown-step"),
    pytest.param("unknown-field", 1, id="unknown-field"),
    pytest.param("cycle", 1, id="cycle"),
    pytest.param("unused-step", 1, id="unused-step"),
    pytest.param("input-conflict", 1, id="input-conflict"),
    pytest.param("fan-in-missing-field", 1, id="fan-in-missing-field"),
    pytest.param("output-not-a-step", 1, id="output-not-a-step"),
    pytest.param("missing-bundle", 1, id="missing-bundle"),
    pytest.param("bad-call-and-reference", 1, id="bad-call-and-reference"),
    pytest.param("typo-is-not-unused", 1, id="typo-is-not-unused"),
    pytest.param("several-methods", 1, id="several-methods"),
    pytest.param("load-and-type-errors", 1, id="load-and-type-errors"),
    pytest.param("replicas", 1, id="replicas"),
]


def _listed() -> list[str]:
    return [str(p.values[0]) for p in CASES]


def test_every_listed_case_exists():
    missing = [c for c in _listed() if not (FIXTURES / c / "blueprint.yaml").is_file()]
    assert missing == [], f"golden cases listed in CASES but missing under {FIXTURES}"


def test_every_case_directory_is_listed():
    on_disk = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())
    assert sorted(_listed()) == on_disk


@pytest.mark.parametrize(("case", "status"), CASES)
def test_check_output(case, status, cli, bundles_root, monkeypatch):
    source = FIXTURES / case
    if not (source / "blueprint.yaml").is_file():
        pytest.fail(f"golden case {case!r} is listed but {source}/blueprint.yaml is missing")
    copy = bundles_root / case
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(source, copy)
    monkeypatch.chdir(copy)

    result = cli("check", "blueprint.yaml")

    shown = result.stdout if status == 0 else result.stderr
    other = result.stderr if status == 0 else result.stdout
    shown = shown.replace(str(copy), "$CASE")
    expected_file = source / "expected.txt"
    if UPDATE:
        expected_file.write_text(shown)
    if not expected_file.is_file():
        pytest.fail(f"golden case {case!r} has no expected.txt (write it with UPDATE_GOLDEN=1)")
    assert (result.exit_code, shown, other) == (status, expected_file.read_text(), "")
