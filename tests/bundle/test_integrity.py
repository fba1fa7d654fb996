"""Loading checks a bundle before unpickling it and says what is wrong; dump never clobbers."""

from __future__ import annotations

import json
import shutil
import sys
import zipfile
from pathlib import Path

import pytest

from modelwire.bundle import dump, load, read_manifest
from modelwire.errors import BundleError, BundleNotFound
from tests.fixtures.models import acumos_namedtuple

CODE = "code/tests/fixtures/models/acumos_namedtuple.py"
PY = f"{sys.version_info.major}.{sys.version_info.minor}"


@pytest.fixture(params=["dir", "zip"])
def bundle(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A fresh bundle of the scorer model, as a directory or as a zip."""
    name = "scorer.zip" if request.param == "zip" else "scorer"
    return dump(acumos_namedtuple.model, "scorer", tmp_path / name)


def read(bundle: Path, rel: str) -> bytes:
    if bundle.is_dir():
        return (bundle / rel).read_bytes()
    with zipfile.ZipFile(bundle) as zf:
        return zf.read(rel)


def change(bundle: Path, rel: str, data: bytes | None) -> None:
    """Replace (or with None remove) one file of a bundle, in either form."""
    if bundle.is_dir():
        if data is None:
            (bundle / rel).unlink()
        else:
            (bundle / rel).parent.mkdir(parents=True, exist_ok=True)
            (bundle / rel).write_bytes(data)
        return
    with zipfile.ZipFile(bundle) as zf:
        files = {n: zf.read(n) for n in zf.namelist()}
    if data is None:
        del files[rel]
    else:
        files[rel] = data
    with zipfile.ZipFile(bundle, "w") as zf:
        for n, d in files.items():
            zf.writestr(n, d)


def edit_manifest(bundle: Path, **changes: object) -> None:
    doc = json.loads(read(bundle, "modelwire.json"))
    doc.update(changes)
    change(bundle, "modelwire.json", json.dumps(doc).encode())


def load_error(path: Path) -> str:
    with pytest.raises(BundleError) as info:
        load(path)
    assert info.value.bundle == str(path)
    return str(info.value)


def test_an_intact_bundle_loads_in_both_forms(bundle):
    assert load(bundle).score(acumos_namedtuple.ScoreInput([1.0, 2.0], 2.0)) == (6.0, 2)


@pytest.mark.parametrize("rel", ["model.pkl", "model.proto", "requirements.txt", CODE])
def test_a_tampered_file_is_named(bundle, rel):
    change(bundle, rel, b"# changed\n")
    assert load_error(bundle) == (
        f"bundle {bundle}: file {rel} does not match its sha256 in modelwire.json; "
        "the bundle was modified after it was written"
    )


def test_a_byte_appended_to_the_pickle_is_caught_before_unpickling(bundle):
    change(bundle, "model.pkl", read(bundle, "model.pkl") + b"\0")
    assert load_error(bundle) == (
        f"bundle {bundle}: file model.pkl does not match its sha256 in modelwire.json; "
        "the bundle was modified after it was written"
    )


def test_a_missing_file_is_named(bundle):
    change(bundle, "model.pkl", None)
    assert load_error(bundle) == (
        f"bundle {bundle}: file model.pkl is missing; the bundle is incomplete, "
        "copy it again or dump the model again"
    )


@pytest.mark.parametrize("rel", ["notes.txt", "code/numpy.py"])
def test_an_extra_file_is_named(bundle, rel):
    """An unlisted file could shadow a module once code/ is on sys.path, so it is refused."""
    change(bundle, rel, b"garbage")
    assert load_error(bundle) == (
        f"bundle {bundle}: file {rel} is not listed in modelwire.json; the bundle was "
        "modified after it was written (remove the file or dump the model again)"
    )


def test_bytecode_that_importing_code_leaves_in_a_bundle_directory_is_allowed(tmp_path):
    path = dump(acumos_namedtuple.model, "scorer", tmp_path / "scorer")
    cache = path / "code/tests/fixtures/models/__pycache__/acumos_namedtuple.cpython-311.pyc"
    cache.parent.mkdir()
    cache.write_bytes(b"bytecode")
    assert load(path).score(acumos_namedtuple.ScoreInput([1.0], 1.0)) == (1.0, 1)


def test_a_future_format_asks_for_a_newer_modelwire(bundle):
    edit_manifest(bundle, format=2)
    assert load_error(bundle) == (
        f"bundle {bundle}: modelwire.json has format 2; this modelwire 0.1.0 reads format 1; "
        "upgrade modelwire to load it"
    )


@pytest.mark.parametrize("fmt", [None, "1", 0])
def test_an_unknown_format_asks_for_a_new_dump(bundle, fmt):
    edit_manifest(bundle, format=fmt)
    assert load_error(bundle) == (
        f"bundle {bundle}: modelwire.json has format {fmt!r}; this modelwire 0.1.0 reads "
        "format 1; dump the model again"
    )


def test_malformed_json_is_reported_with_the_parser_position(bundle):
    change(bundle, "modelwire.json", b"{nope")
    assert load_error(bundle) == (
        f"bundle {bundle}: modelwire.json is not valid JSON (Expecting property name enclosed "
        "in double quotes: line 1 column 2 (char 1)); dump the model again"
    )


def test_a_manifest_that_is_not_an_object_is_refused(bundle):
    change(bundle, "modelwire.json", b"[]")
    assert load_error(bundle) == f"bundle {bundle}: modelwire.json must hold a JSON object"


@pytest.mark.parametrize("key", ["name", "version", "python", "files", "schema"])
def test_a_missing_manifest_entry_is_named(bundle, key):
    doc = json.loads(read(bundle, "modelwire.json"))
    del doc[key]
    change(bundle, "modelwire.json", json.dumps(doc).encode())
    assert load_error(bundle) == (
        f"bundle {bundle}: modelwire.json has no {key!r} entry; dump the model again"
    )


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        # a number would be compared with "3.11" and read "dumped with 3.11, this is 3.11"
        ({"python": 3.11}, "'python' entry: expected a string, got 3.11"),
        # a string would become one requirement per character
        ({"requirements": "numpy"},
         "'requirements' entry: expected a list of strings, got 'numpy'"),
        ({"tags": [1, 2]}, "'tags' entry: expected a list of strings, got [1, 2]"),
        ({"name": 5}, "'name' entry: expected a string, got 5"),
        ({"files": []}, "'files' entry: expected an object, got []"),
        ({"files": {"model.pkl": 5}},
         "'files' entry: the sha256 of 'model.pkl' must be a string, got 5"),
        ({"schema": {"methods": []}}, "'schema' entry (KeyError('name'))"),
    ],
    ids=["python-number", "requirements-string", "tags-numbers", "name-number", "files-list",
         "digest-number", "schema-incomplete"],
)  # fmt: skip
def test_a_malformed_manifest_entry_is_named(bundle, changes, problem):
    edit_manifest(bundle, **changes)
    assert load_error(bundle) == (
        f"bundle {bundle}: modelwire.json has a malformed {problem}; dump the model again"
    )


def test_a_manifest_listing_a_path_outside_the_bundle_is_refused(bundle):
    edit_manifest(bundle, files={"model.pkl": "0" * 64, "../x.py": "0" * 64})
    assert load_error(bundle) == f"bundle {bundle}: modelwire.json lists an invalid path '../x.py'"


@pytest.mark.parametrize(
    "other", [f"3.{sys.version_info.minor - 1}", f"3.{sys.version_info.minor + 1}"]
)
def test_a_bundle_from_another_python_minor_version_says_which_python_to_use(bundle, other):
    """The manifest is not itself hashed, so editing its "python" passes the digest check."""
    edit_manifest(bundle, python=other)
    assert read_manifest(bundle).python == other
    assert load_error(bundle) == (
        f"bundle {bundle}: it was dumped with Python {other} and this is Python {PY}; pickled "
        f"code only loads on the same minor version, so serve it with Python {other} "
        "(for example in its Docker image)"
    )


def test_a_directory_without_a_manifest_is_not_a_bundle(tmp_path):
    (tmp_path / "model.pkl").write_bytes(b"x")
    assert load_error(tmp_path) == (
        f"bundle {tmp_path}: not a bundle: modelwire.json is missing "
        "(write one with modelwire.dump)"
    )


@pytest.mark.parametrize("data", [b"PK\x03\x04garbage", b"not a zip at all", b""])
def test_a_corrupt_zip_is_not_a_bundle(tmp_path, data):
    path = tmp_path / "broken.zip"
    path.write_bytes(data)
    assert load_error(path) == f"bundle {path}: not a bundle: neither a directory nor a zip file"


def test_a_truncated_zip_is_not_a_bundle(tmp_path):
    good = dump(acumos_namedtuple.model, "scorer", tmp_path / "good.zip").read_bytes()
    path = tmp_path / "cut.zip"
    path.write_bytes(good[: len(good) // 2])
    assert load_error(path) == f"bundle {path}: not a bundle: neither a directory nor a zip file"


def test_garbled_compressed_data_in_a_zip_is_named(tmp_path):
    path = dump(acumos_namedtuple.model, "scorer", tmp_path / "scorer.zip")
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("model.pkl")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start : start + 8] = b"\xff" * 8  # not valid deflate data: zlib fails, not the CRC
    path.write_bytes(bytes(data))
    # block type 0b11 (the first byte's bits 1-2) is reserved: zlib's "invalid block type"
    assert load_error(path) == (
        f"bundle {path}: file model.pkl is corrupt in the zip (Error -3 while decompressing "
        "data: invalid block type); copy the bundle again or dump the model again"
    )


def test_a_zip_without_a_manifest_is_not_a_bundle(tmp_path):
    path = tmp_path / "other.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "hello")
    assert load_error(path) == (
        f"bundle {path}: not a bundle: the zip holds no modelwire.json "
        "(write one with modelwire.dump)"
    )


def test_a_missing_path_raises_bundle_not_found(tmp_path):
    with pytest.raises(BundleNotFound) as info:
        load(tmp_path / "nothing")
    assert str(info.value) == f"bundle {tmp_path / 'nothing'}: no such file or directory"


# ---------------------------------------------------------------- dump refuses to clobber


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_dump_refuses_a_directory_that_is_not_a_bundle_and_loses_nothing(tmp_path):
    target = tmp_path / "work"
    (target / "sub").mkdir(parents=True)
    (target / "notes.txt").write_text("precious")
    (target / "sub" / "data.csv").write_text("1,2\n")
    before = snapshot(tmp_path)
    with pytest.raises(BundleError) as info:
        dump(acumos_namedtuple.model, "scorer", target)
    assert str(info.value) == (
        f"bundle {target}: the directory exists and is not a bundle; refusing to overwrite it "
        "(choose another path or remove it)"
    )
    assert snapshot(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]  # no temp dir left behind


def test_dump_refuses_to_overwrite_a_file(tmp_path):
    target = tmp_path / "model"
    target.write_text("precious")
    with pytest.raises(BundleError) as info:
        dump(acumos_namedtuple.model, "scorer", target)
    assert str(info.value) == (
        f"bundle {target}: a file exists at this path; refusing to overwrite it "
        "(choose another path, or end it in .zip for the single-file form)"
    )
    assert target.read_text() == "precious"


@pytest.mark.parametrize("kind", ["file", "directory"])
def test_dump_refuses_a_zip_path_that_is_not_a_bundle_zip(tmp_path, kind):
    target = tmp_path / "data.zip"
    if kind == "file":
        target.write_text("precious")
    else:
        target.mkdir()
    with pytest.raises(BundleError) as info:
        dump(acumos_namedtuple.model, "scorer", target)
    assert str(info.value) == (
        f"bundle {target}: the path exists and is not a bundle zip; refusing to overwrite it "
        "(choose another path or remove it)"
    )
    assert (target.read_text() == "precious") if kind == "file" else target.is_dir()


def test_dump_into_an_empty_directory_or_over_a_bundle_zip_succeeds(tmp_path):
    (tmp_path / "empty").mkdir()
    assert read_manifest(dump(acumos_namedtuple.model, "a", tmp_path / "empty")).name == "a"
    dump(acumos_namedtuple.model, "a", tmp_path / "b.zip")
    assert read_manifest(dump(acumos_namedtuple.model, "b", tmp_path / "b.zip")).name == "b"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.zip", "empty"]


def test_a_bundle_directory_copied_elsewhere_still_loads(tmp_path):
    path = dump(acumos_namedtuple.model, "scorer", tmp_path / "scorer")
    copy = shutil.copytree(path, tmp_path / "elsewhere" / "copy")
    shutil.rmtree(path)
    assert load(copy).score(acumos_namedtuple.ScoreInput([3.0], 1.0)) == (3.0, 1)
