"""Push and pull: `modelwire.push()` and the CLI, directories and zips, immutable versions,
breaking changes, and the progress bar (on a terminal only)."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from tqdm import tqdm

import modelwire
from modelwire.bundle import load
from modelwire.errors import ServiceError
from tests.catalog.helpers import ROOT, Catalog, contents, integrity_problems, sha256
from tests.fixtures.models import tokenizer
from tests.servers import clean_env

pytestmark = pytest.mark.timeout(60)


def _env(catalog: Catalog, token: str) -> dict[str, str]:
    return {"MODELWIRE_CATALOG": catalog.address, "MODELWIRE_TOKEN": token}


def _zip_bytes(bundles: dict[str, Path]) -> bytes:
    return bundles["tokenizer.zip"].read_bytes()


def test_python_push_then_pull_as_a_directory_and_as_a_zip(
    catalog: Catalog, bundles: dict[str, Path], tmp_path: Path
):
    token = catalog.user("alice")
    info = modelwire.push(
        tokenizer.model(), "tokenizer", version="1.0.0", catalog=catalog.address, token=token
    )
    expected = _zip_bytes(bundles)  # the same model dumps to the same bytes
    assert (info.name, info.version, info.owner, info.published) == (
        "tokenizer",
        "1.0.0",
        "alice",
        False,
    )
    assert (info.sha256, info.size) == (sha256(expected), len(expected))
    assert info.methods == (
        {
            "name": "tokenize",
            "rpc": "Tokenize",
            "request": "TokenizeRequest",
            "response": "TokenizeResponse",
            "doc": "Split `text` on white space, keeping at most `limit` tokens.",
            "input": "text: string, limit: int32",
            "output": "tokens: repeated string, length: int32",
        },
    )
    with catalog.client(token) as client:
        pulled = client.pull("tokenizer", tmp_path / "pulled")
        client.pull("tokenizer:1.0.0", tmp_path / "pulled.zip")
    assert pulled == info
    assert (tmp_path / "pulled.zip").read_bytes() == expected
    loaded = load(tmp_path / "pulled")
    assert loaded.tokenize("a b c", 2) == (["a", "b"], 2)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []


def test_cli_push_of_a_directory_then_of_the_same_zip_is_a_no_op(
    catalog: Catalog, bundles: dict[str, Path], cli: Callable[..., Result]
):
    token = catalog.user("alice")
    env = _env(catalog, token)
    data = _zip_bytes(bundles)
    first = cli("push", str(bundles["tokenizer"]), env=env)
    assert (first.exit_code, first.stdout, first.stderr) == (
        0,
        f"pushed tokenizer:1.0.0 (sha256 {sha256(data)[:12]}, {len(data)} bytes, "
        "private until published)\n",
        "",
    )
    again = cli("push", str(bundles["tokenizer.zip"]), env=env)
    assert (again.exit_code, again.stdout) == (
        0,
        f"already there: tokenizer:1.0.0 (sha256 {sha256(data)[:12]}, {len(data)} bytes, "
        "private until published)\n",
    )
    assert contents(catalog.data).rows == [("tokenizer", "1.0.0", sha256(data), len(data))]
    assert contents(catalog.data).blobs == [sha256(data)]


def test_different_bytes_under_an_existing_version_are_refused(
    catalog: Catalog, bundles: dict[str, Path], cli: Callable[..., Result]
):
    token = catalog.user("alice")
    env = _env(catalog, token)
    first = bundles["contested-0"].read_bytes()
    assert cli("push", str(bundles["contested-0"]), env=env).exit_code == 0
    result = cli("push", str(bundles["contested-1"]), env=env)
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        f"error: {catalog.address} PushBundle: ALREADY_EXISTS: contested:1.0.0 already exists "
        f"with different bytes (sha256 {sha256(first)[:12]}); versions are immutable: "
        "push a new version\n",
    )
    with pytest.raises(ServiceError) as info:
        modelwire.push(
            tokenizer.model(),
            "contested",
            description="variant 2",
            catalog=catalog.address,
            token=token,
        )
    assert info.value.status == "ALREADY_EXISTS"
    assert contents(catalog.data).rows == [("contested", "1.0.0", sha256(first), len(first))]
    assert contents(catalog.data).blobs == [sha256(first)]
    assert contents(catalog.data).uploads == []


def test_a_version_whose_types_break_the_previous_one_needs_allow_breaking(
    catalog: Catalog, bundles: dict[str, Path], cli: Callable[..., Result]
):
    env = _env(catalog, catalog.user("alice"))
    assert cli("push", str(bundles["tokenizer"]), env=env).exit_code == 0
    widened = cli("push", str(bundles["tokenizer-1.1.0"]), env=env)  # int32 -> int64: fine
    assert widened.exit_code == 0, widened.stderr
    refused = cli("push", str(bundles["tokenizer-2.0.0"]), env=env)
    assert (refused.exit_code, refused.stderr) == (
        1,
        f"error: {catalog.address} PushBundle: FAILED_PRECONDITION: tokenizer:2.0.0 breaks "
        "clients of tokenizer:1.1.0: tokenize: request field 'language' is new and required "
        "(old clients do not send it); tokenize: response field 'length' changed from int32 "
        "to int64; push with --allow-breaking (allow_breaking=True) to accept it\n",
    )
    assert [r[1] for r in contents(catalog.data).rows] == ["1.0.0", "1.1.0"]
    assert len(contents(catalog.data).blobs) == 2
    assert contents(catalog.data).uploads == []

    accepted = cli("push", str(bundles["tokenizer-2.0.0"]), "--allow-breaking", env=env)
    assert accepted.exit_code == 0, accepted.stderr
    assert accepted.stdout.startswith("pushed tokenizer:2.0.0 ")
    # pushing the stored bytes again is a no-op, not a new compatibility check
    again = cli("push", str(bundles["tokenizer-2.0.0"]), env=env)
    assert (again.exit_code, again.stdout[:35]) == (0, "already there: tokenizer:2.0.0 (sha")


def test_python_push_refuses_a_breaking_version_unless_allowed(catalog: Catalog):
    token = catalog.user("alice")
    where = catalog.address
    modelwire.push(tokenizer.model(), "tokenizer", version="1.0.0", catalog=where, token=token)
    with pytest.raises(ServiceError) as info:
        modelwire.push(
            tokenizer.breaking(), "tokenizer", version="2.0.0", catalog=where, token=token
        )
    assert info.value.status == "FAILED_PRECONDITION"
    assert info.value.details.startswith("tokenizer:2.0.0 breaks clients of tokenizer:1.0.0: ")
    accepted = modelwire.push(
        tokenizer.breaking(),
        "tokenizer",
        version="2.0.0",
        catalog=where,
        token=token,
        allow_breaking=True,
    )
    assert accepted.version == "2.0.0"


def test_cli_pull_writes_a_directory_or_a_zip_and_never_overwrites_other_files(
    catalog: Catalog, bundles: dict[str, Path], cli: Callable[..., Result], tmp_path: Path
):
    env = _env(catalog, catalog.user("alice"))
    cli("push", str(bundles["tokenizer"]), env=env)
    cli("push", str(bundles["tokenizer-1.1.0"]), env=env)
    latest = cli("pull", "tokenizer", "-o", str(tmp_path / "latest"), env=env)
    assert (latest.exit_code, latest.stdout) == (
        0,
        f"pulled tokenizer:1.1.0 to {tmp_path / 'latest'}\n",
    )
    assert load(tmp_path / "latest").version == "1.1.0"
    older = cli("pull", "tokenizer:1.0.0", "-o", str(tmp_path / "old.zip"), env=env)
    assert older.exit_code == 0, older.stderr
    assert (tmp_path / "old.zip").read_bytes() == _zip_bytes(bundles)

    (tmp_path / "notes.zip").write_text("mine")
    refused = cli("pull", "tokenizer", "-o", str(tmp_path / "notes.zip"), env=env)
    assert (refused.exit_code, refused.stderr) == (
        1,
        f"error: bundle {tmp_path / 'notes.zip'}: the path exists and is not a bundle zip; "
        "refusing to overwrite it (choose another path or remove it)\n",
    )
    assert (tmp_path / "notes.zip").read_text() == "mine"
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("mine")
    refused = cli("pull", "tokenizer", "-o", str(tmp_path / "docs"), env=env)
    assert (refused.exit_code, refused.stderr) == (
        1,
        f"error: bundle {tmp_path / 'docs'}: the directory exists and is not a bundle; "
        "refusing to overwrite it (choose another path or remove it)\n",
    )
    missing = cli("pull", "tokenizer:9.9.9", "-o", str(tmp_path / "x"), env=env)
    assert (missing.exit_code, missing.stderr) == (
        1,
        f"error: {catalog.address} PullBundle: NOT_FOUND: no version '9.9.9' of model "
        "'tokenizer'; its versions: 1.0.0, 1.1.0\n",
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "data",
        "docs",
        "home",
        "latest",
        "notes.zip",
        "old.zip",
    ]


@pytest.mark.parametrize("name", ["out", "out.zip"])
def test_cli_pull_to_a_path_that_cannot_be_written_is_one_error_line(
    catalog: Catalog,
    bundles: dict[str, Path],
    cli: Callable[..., Result],
    tmp_path: Path,
    name: str,
):
    env = _env(catalog, catalog.user("alice"))
    cli("push", str(bundles["tokenizer"]), env=env)
    in_the_way = tmp_path / "notes.txt"
    in_the_way.write_text("mine")
    out = in_the_way / name
    result = cli("pull", "tokenizer", "-o", str(out), env=env)
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        f"error: bundle {out}: cannot write it (File exists: {in_the_way})\n",
    )
    assert in_the_way.read_text() == "mine"


@pytest.mark.parametrize(
    ("args", "hint", "message"),
    [
        (["pull", ":1.0.0", "-o", "x"], "NAME[:VERSION]", "':1.0.0' is not NAME or NAME:VERSION"),
        (["show", ""], "NAME[:VERSION]", "'' is not NAME or NAME:VERSION"),
        (["publish", "tokenizer:", "--description", "d", "--category", "c"],
         "NAME:VERSION", "'tokenizer:' is not NAME:VERSION"),
        (["publish", ":1.0.0", "--description", "d", "--category", "c"],
         "NAME:VERSION", "':1.0.0' is not NAME or NAME:VERSION"),
    ],
    ids=["pull-no-name", "show-empty", "publish-no-version", "publish-no-name"],
)  # fmt: skip
def test_a_malformed_model_reference_is_a_usage_error(
    cli: Callable[..., Result], args: list[str], hint: str, message: str
):
    """Checked before any catalog is asked (none is configured here)."""
    result = cli(*args)
    command = args[0]
    arguments = {"pull": "NAME[:VERSION]", "show": "NAME[:VERSION]", "publish": "NAME:VERSION"}
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        f"Usage: modelwire {command} [OPTIONS] {arguments[command]}\n"
        f"Try 'modelwire {command} --help' for help.\n\n"
        f"Error: Invalid value for '{hint}': {message}\n"
    )


def test_an_unreachable_catalog_is_one_clear_error(
    bundles: dict[str, Path], cli: Callable[..., Result]
):
    env = {"MODELWIRE_CATALOG": "127.0.0.1:1", "MODELWIRE_TOKEN": "mwt_x"}
    result = cli("search", env=env)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot reach the catalog at 127.0.0.1:1 (")
    assert result.stderr.endswith("); is 'modelwire catalog serve' running there?\n")


def _run_on_a_terminal(argv: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    """Run `argv` with stderr on a pseudo-terminal; (exit status, stdout, terminal output)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=slave, env=env, cwd=ROOT, text=True
    )
    os.close(slave)
    seen = b""
    while True:
        ready, _, _ = select.select([master], [], [], 30)
        if not ready:
            break
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO: the terminal's last writer is gone
            break
        if not data:
            break
        seen += data
    os.close(master)
    assert proc.stdout is not None
    out = proc.stdout.read()
    proc.stdout.close()
    return proc.wait(30), out, seen.decode(errors="replace")


@pytest.mark.timeout(90)
def test_push_and_pull_draw_a_progress_bar_on_a_terminal_only(
    catalog: Catalog, big_bundle: Path, tmp_path: Path
):
    token = catalog.user("alice")
    env = clean_env(MODELWIRE_CATALOG=catalog.address, MODELWIRE_TOKEN=token)
    cmd = [sys.executable, "-m", "modelwire"]
    size = big_bundle.stat().st_size

    code, out, terminal = _run_on_a_terminal([*cmd, "push", str(big_bundle)], env)
    assert code == 0, terminal
    assert out.startswith("pushed weights:1.0.0 (sha256 ")
    assert terminal.startswith("\rpushing weights:1.0.0: ")
    last = terminal.rstrip("\r\n").rsplit("\r", 1)[-1]
    # tqdm's bar: sizes in SI units (5.24M), the rate, and the bar itself filled
    sized = tqdm.format_sizeof(size)
    assert last.startswith("pushing weights:1.0.0: 100%|█"), last
    assert f"| {sized}/{sized} [" in last
    assert last.endswith("B/s]")

    code, out, terminal = _run_on_a_terminal(
        [*cmd, "pull", "weights", "-o", str(tmp_path / "w.zip")], env
    )
    assert code == 0, terminal
    assert terminal.rstrip("\r\n").rsplit("\r", 1)[-1].startswith("pulling weights: 100%|█")

    piped = subprocess.run(
        [*cmd, "pull", "weights", "-o", str(tmp_path / "w2.zip")],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )
    assert (piped.returncode, piped.stdout, piped.stderr) == (
        0,
        f"pulled weights:1.0.0 to {tmp_path / 'w2.zip'}\n",
        "",
    )
    assert integrity_problems(catalog.data) == []
