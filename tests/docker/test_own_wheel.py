"""modelwire's own wheel for an image's wheelhouse, made from the install that runs (no
Docker engine needed): packed again from a plain install's files, or built from an
editable install's source tree, and the same bytes for the same files."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from modelwire.containers.own_wheel import pack_wheel, source_tree_wheel
from modelwire.containers.wheelhouse import cached_dir
from tests.source_tree import copy_source_tree

WHEEL = "modelwire-0.1.0-py3-none-any.whl"
METADATA = b"Metadata-Version: 2.4\nName: demo.pkg\nVersion: 1.0\n\n"


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def test_pack_wheel_follows_the_wheel_format_and_gives_the_same_bytes_twice(tmp_path):
    files = {
        "demo_pkg-1.0.dist-info/METADATA": METADATA,
        "demo_pkg-1.0.dist-info/entry_points.txt": b"[console_scripts]\ndemo = demo:main\n",
        "demo/sub/data.txt": b"data\n",
        "demo/__init__.py": b"def main(): pass\n",
    }
    first = pack_wheel(files, tmp_path / "a")
    second = pack_wheel(dict(reversed(files.items())), tmp_path / "b")
    assert first.name == "demo_pkg-1.0-py3-none-any.whl"
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as archive:
        infos = archive.infolist()
        wheel = archive.read("demo_pkg-1.0.dist-info/WHEEL")
        record = archive.read("demo_pkg-1.0.dist-info/RECORD").decode()
        assert archive.testzip() is None
    assert [i.filename for i in infos] == [
        "demo/__init__.py",
        "demo/sub/data.txt",
        "demo_pkg-1.0.dist-info/METADATA",
        "demo_pkg-1.0.dist-info/WHEEL",
        "demo_pkg-1.0.dist-info/entry_points.txt",
        "demo_pkg-1.0.dist-info/RECORD",
    ]
    assert {(i.date_time, i.external_attr >> 16, i.compress_type) for i in infos} == {
        ((1980, 1, 1, 0, 0, 0), 0o100644, zipfile.ZIP_DEFLATED)
    }
    assert wheel == (
        b"Wheel-Version: 1.0\nGenerator: modelwire 0.1.0\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n"
    )
    contents = {**files, "demo_pkg-1.0.dist-info/WHEEL": wheel}
    assert record.splitlines() == [
        *(
            f"{path},sha256={_digest(contents[path])},{len(contents[path])}"
            for path in [i.filename for i in infos][:-1]
        ),
        "demo_pkg-1.0.dist-info/RECORD,,",
    ]


def test_pack_wheel_keeps_the_installed_wheel_file_and_names_the_wheel_by_its_tags(tmp_path):
    wheel = b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py2-none-any\nTag: py3-none-any\n"
    files = {"demo_pkg-1.0.dist-info/METADATA": METADATA, "demo_pkg-1.0.dist-info/WHEEL": wheel}
    packed = pack_wheel(files, tmp_path)
    assert packed.name == "demo_pkg-1.0-py2.py3-none-any.whl"
    with zipfile.ZipFile(packed) as archive:
        assert archive.read("demo_pkg-1.0.dist-info/WHEEL") == wheel


def test_pack_wheel_needs_one_dist_info_folder(tmp_path):
    with pytest.raises(ValueError) as refused:
        pack_wheel({"demo/__init__.py": b""}, tmp_path)
    assert str(refused.value) == "expected one .dist-info folder with a METADATA, found set()"


def _run(argv: list[str], cwd: Path | None = None, **env: str) -> str:
    proc = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, **env},
        cwd=cwd,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


# the running modelwire's wheel into sys.argv[1], as `modelwire build` makes it (a cache
# that always makes the folder anew: the test looks at each result)
OWN_WHEEL = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import modelwire
    from modelwire.containers.own_wheel import own_wheel

    def cache(name, fill):
        folder = Path(sys.argv[1]) / name
        fill(folder)
        return folder

    folder = own_wheel(cache, lambda line: print("progress:", line))
    print(modelwire.__file__)
    print(*sorted(folder.glob("*.whl")))
    """
)


@pytest.fixture(scope="module")
def sdist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's sdist, built from a clean copy of the tree."""
    base = tmp_path_factory.mktemp("own-wheel")
    tree = copy_source_tree(base / "tree")
    _run([sys.executable, "-m", "build", "--sdist", "--no-isolation", "-o", str(base), str(tree)])
    return base / "modelwire-0.1.0.tar.gz"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_plain_install_is_packed_again_into_a_wheel_that_pip_installs(sdist, tmp_path):
    """Installed from the sdist (not editable): the wheel is made from the installed files,
    holds what pip's own wheel of that sdist holds, and installs; its install packs again
    into the very same bytes. A modelwire.egg-info in the current directory (what a build
    leaves in a checkout), first on sys.path, is not taken for the install."""
    pip = [sys.executable, "-m", "pip", "-q", "install", "--no-deps", "--no-build-isolation"]
    installed = tmp_path / "installed"
    _run([*pip, "--target", str(installed), str(sdist)])
    checkout = tmp_path / "checkout"
    (checkout / "modelwire.egg-info").mkdir(parents=True)
    (checkout / "modelwire.egg-info" / "PKG-INFO").write_text(
        "Metadata-Version: 2.1\nName: modelwire\nVersion: 0.1.0\n"
    )
    argv = [sys.executable, "-c", OWN_WHEEL, str(tmp_path / "a")]
    out = _run(argv, cwd=checkout, PYTHONPATH=str(installed))
    progress, running, packed = out.splitlines()
    assert progress == (
        f"progress: packing the modelwire 0.1.0 wheel from its installed files ({installed})"
    )
    assert running == str(installed / "modelwire" / "__init__.py")
    assert Path(packed).name == WHEEL

    reference = tmp_path / "reference"
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
          "-w", str(reference), str(sdist)])  # fmt: skip
    with zipfile.ZipFile(packed) as ours, zipfile.ZipFile(reference / WHEEL) as pips:
        record = "modelwire-0.1.0.dist-info/RECORD"
        assert sorted(ours.namelist()) == sorted(pips.namelist())
        for name in ours.namelist():
            if name != record:
                assert ours.read(name) == pips.read(name), name
        assert sorted(ours.read(record).splitlines()) == sorted(pips.read(record).splitlines())

    again = tmp_path / "again"
    _run([*pip, "--target", str(again), packed])
    assert (again / "bin" / "modelwire").is_file()  # the console script, from entry_points.txt
    out = _run([sys.executable, "-c", OWN_WHEEL, str(tmp_path / "b")], PYTHONPATH=str(again))
    assert out.splitlines()[1] == str(again / "modelwire" / "__init__.py")
    assert Path(out.splitlines()[2]).read_bytes() == Path(packed).read_bytes()


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("folder", ["cli", "hosting", "containers"])
def test_a_source_trees_wheel_is_made_again_when_any_package_folder_changes(
    tmp_path, monkeypatch, folder
):
    """The cache key is every file the sdist ships, so no package folder can be missed (it
    once hashed only core, codegen, runtime, catalog and broker)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    tree = copy_source_tree(tmp_path / "tree")
    said: list[str] = []
    first = source_tree_wheel(tree, cached_dir, said.append)
    assert said == [f"building the modelwire 0.1.0 wheel from {tree}"]
    assert source_tree_wheel(tree, cached_dir, said.append) == first
    assert len(said) == 1  # the same files: the cached wheel, not built again

    changed = tree / folder / "__init__.py"
    changed.write_text(changed.read_text() + "# changed\n")
    second = source_tree_wheel(tree, cached_dir, said.append)
    assert second != first and len(said) == 2
    package = "modelwire" if folder == "core" else f"modelwire/{folder}"
    with zipfile.ZipFile(second / WHEEL) as archive:
        assert archive.read(f"{package}/__init__.py").endswith(b"# changed\n")
