"""modelwire's own wheel, made from the modelwire that is running, for an image's wheelhouse.

modelwire is on no package index, so an image build cannot download it: `own_wheel` makes
the wheel here, from whichever install runs this code:

- an editable install (a checkout, `pip install -e`): setuptools makes an sdist of the
  source tree and pip builds the wheel from that sdist, so the wheel holds what the sdist
  holds (a stale build/ folder in the checkout cannot leak into it);
- any other install (of a wheel, an sdist or a clone): the installed files as the
  distribution's RECORD lists them, packed again by the wheel format's rules
  (`installed_files`, `pack_wheel`). Files outside site-packages, the console script,
  are left out: the installer writes them again from entry_points.txt.

Either wheel is cached by the content it is made from (the wheelhouse passes its cache),
and the same files always give the same bytes: sorted entries and fixed timestamps here,
a fixed SOURCE_DATE_EPOCH for setuptools.
"""

from __future__ import annotations

import base64
import email.parser
import hashlib
import importlib.metadata as md
import importlib.util
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from modelwire import __version__
from modelwire.errors import ToolError, os_reason

__all__ = ["editable_root", "installed_files", "own_wheel", "pack_wheel", "source_tree_wheel"]

Progress = Callable[[str], None]
# `cache(name, fill)`: the folder `name` of a cache, made by `fill(folder)` if missing
Cache = Callable[[str, Callable[[Path], None]], Path]

# 1980-01-01T00:00:00Z: the earliest time a zip entry can carry
_EPOCH = "315532800"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
# part of every cache key: change it when the way the wheel is made changes
_RECIPE = "own-wheel 1"
# what an installer adds to a .dist-info folder (PEP 376, 610, 627): not part of a wheel
_INSTALLER_FILES = frozenset(
    {"INSTALLER", "REQUESTED", "direct_url.json", "RECORD", "RECORD.jws", "RECORD.p7s"}
)


def own_wheel(cache: Cache, progress: Progress) -> Path:
    """A folder whose one `.whl` is the wheel of the running modelwire.

    Raises:
        ToolError: modelwire is not installed, its install is damaged, or building
            the wheel from the source tree failed.
    """
    dist = _distribution()
    root = editable_root(dist)
    if root is not None:
        return source_tree_wheel(root, cache, progress)
    files = installed_files(dist)
    where = Path(str(dist.locate_file("")))

    def fill(folder: Path) -> None:
        progress(f"packing the modelwire {dist.version} wheel from its installed files ({where})")
        pack_wheel(files, folder)

    return cache(f"modelwire-{_key(sorted(files.items()))}", fill)


def _distribution() -> md.Distribution:
    """The installed distribution the running modelwire comes from.

    Not merely the first one on sys.path: a `modelwire.egg-info` that a build left in
    the current directory comes first for `python -m modelwire`, and holds no files.
    """
    import modelwire

    running = Path(modelwire.__file__).resolve()
    found = list(md.distributions(name="modelwire"))
    for dist in found:
        root = editable_root(dist)
        if root is not None and root.resolve() in running.parents:
            return dist
        installed = Path(str(dist.locate_file("modelwire/__init__.py")))
        if root is None and installed.exists() and installed.resolve() == running:
            return dist
    if not found:
        raise ToolError(
            "modelwire is not installed (no 'modelwire' distribution on sys.path), so there "
            "is no wheel of it for the image; install it with pip"
        )
    raise ToolError(
        f"the running modelwire ({running.parent}) is none of the installed ones "
        f"({', '.join(str(d.locate_file('')) for d in found)}); run modelwire from the "
        "environment it is installed in"
    )


def editable_root(dist: md.Distribution) -> Path | None:
    """The source tree of an editable install (its direct_url.json, PEP 610), else None."""
    text = dist.read_text("direct_url.json")
    try:
        info = json.loads(text) if text else {}
    except ValueError:
        return None
    dir_info = info.get("dir_info") if isinstance(info, dict) else None
    if not isinstance(dir_info, dict) or dir_info.get("editable") is not True:
        return None
    url = urllib.parse.urlparse(str(info.get("url", "")))
    if url.scheme != "file":
        return None
    return Path(urllib.request.url2pathname(url.path))


def installed_files(dist: md.Distribution) -> dict[str, bytes]:
    """The files of an installed distribution that belong in its wheel, by archive path.

    That is what its RECORD lists inside site-packages, less byte code and what the
    installer added (INSTALLER, REQUESTED, direct_url.json, the RECORD itself).

    Raises:
        ToolError: there is no RECORD (not installed by a wheel installer), or a file
            it lists cannot be read.
    """
    if dist.read_text("RECORD") is None:
        raise ToolError(
            f"modelwire {dist.version} was installed without a RECORD of its files, so its "
            "wheel cannot be made again from them; install modelwire with pip"
        )
    files: dict[str, bytes] = {}
    for entry in dist.files or []:
        parts = entry.parts
        if not parts or parts[0] == ".." or entry.is_absolute():
            continue  # outside site-packages: the console script
        if "__pycache__" in parts or entry.suffix == ".pyc":
            continue
        if len(parts) == 2 and parts[0].endswith(".dist-info") and parts[1] in _INSTALLER_FILES:
            continue
        path = Path(str(entry.locate()))
        try:
            files[entry.as_posix()] = path.read_bytes()
        except OSError as exc:
            raise ToolError(
                f"cannot read modelwire's installed file ({os_reason(exc)}); "
                "install modelwire again"
            ) from None
    return files


def pack_wheel(files: Mapping[str, bytes], folder: Path) -> Path:
    """Write `files` (archive path -> bytes, one `*.dist-info/METADATA` among them) as a
    wheel into `folder`; returns its path.

    By the wheel format's rules: named `{name}-{version}-{tags}.whl` after METADATA
    and WHEEL (a pure-Python WHEEL is added if there is none), the .dist-info folder
    last, and in it a RECORD with every file's sha256 and size, written last. Entries
    are sorted and carry a fixed time and mode, so the same files give the same bytes.

    Raises:
        ValueError: no single .dist-info folder with a METADATA file among `files`.
    """
    dist_infos = {
        path.split("/", 1)[0]
        for path in files
        if path.count("/") == 1 and path.endswith(".dist-info/METADATA")
    }
    if len(dist_infos) != 1:
        raise ValueError(f"expected one .dist-info folder with a METADATA, found {dist_infos}")
    dist_info = dist_infos.pop()
    contents = dict(files)
    contents.setdefault(
        f"{dist_info}/WHEEL",
        f"Wheel-Version: 1.0\nGenerator: modelwire {__version__}\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n".encode(),
    )
    metadata = email.parser.BytesParser().parsebytes(contents[f"{dist_info}/METADATA"])
    name = re.sub(r"[-_.]+", "_", str(metadata["Name"])).lower()
    version = str(metadata["Version"]).replace("-", "_")
    tags = _tags(contents[f"{dist_info}/WHEEL"])
    inside = sorted(p for p in contents if p.startswith(f"{dist_info}/"))
    entries = [
        *((p, contents[p]) for p in sorted(contents) if not p.startswith(f"{dist_info}/")),
        *((p, contents[p]) for p in inside),
    ]
    record = "".join(f"{p},sha256={_digest(data)},{len(data)}\n" for p, data in entries)
    entries.append((f"{dist_info}/RECORD", (record + f"{dist_info}/RECORD,,\n").encode()))
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{name}-{version}-{tags}.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, data in entries:
            info = zipfile.ZipInfo(path, date_time=_ZIP_TIME)
            info.create_system = 3  # Unix, so the mode below is read as one
            info.external_attr = 0o100644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return wheel


def _tags(wheel_file: bytes) -> str:
    """The compressed tag set of a WHEEL file's `Tag:` lines (`py3-none-any`)."""
    found = [
        line.split(":", 1)[1].strip()
        for line in wheel_file.decode().splitlines()
        if line.startswith("Tag:")
    ]
    triples = [t.split("-") for t in found if t.count("-") == 2] or [["py3", "none", "any"]]
    return "-".join(".".join(sorted({t[i] for t in triples})) for i in range(3))


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _key(entries: Iterable[tuple[str, bytes]]) -> str:
    key = hashlib.sha256(_RECIPE.encode() + b"\0")
    for path, data in entries:
        key.update(path.encode() + b"\0" + str(len(data)).encode() + b"\0" + data)
    return key.hexdigest()[:16]


def source_tree_wheel(root: Path, cache: Cache, progress: Progress) -> Path:
    """A folder whose one `.whl` is the wheel of the source tree `root` (an editable install's).

    setuptools makes an sdist of `root` (the files it would ship, whatever the layout),
    the cache key is those files' content, and only on a miss pip builds the wheel from
    that sdist, with the running environment's setuptools and no network.

    Raises:
        ToolError: setuptools is missing, or the sdist or the wheel cannot be built.
    """
    if importlib.util.find_spec("setuptools") is None:
        raise ToolError(
            f"building modelwire's wheel from its source tree ({root}) needs setuptools; "
            "pip install 'setuptools>=77'"
        )
    with tempfile.TemporaryDirectory(prefix="modelwire-sdist-") as tmp:
        script = (
            "import sys\nfrom setuptools import build_meta\nbuild_meta.build_sdist(sys.argv[1])"
        )
        _run([sys.executable, "-c", script, tmp], f"make an sdist of {root}", cwd=root)
        sdists = sorted(Path(tmp).glob("*.tar.gz"))
        if len(sdists) != 1:
            raise ToolError(f"setuptools made no single sdist of {root} (found {sdists})")
        sdist = sdists[0]

        def fill(folder: Path) -> None:
            progress(f"building the modelwire {__version__} wheel from {root}")
            argv = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
            _run([*argv, "-q", "-w", str(folder), str(sdist)], "build modelwire's wheel")

        return cache(f"modelwire-{_key(_sdist_files(sdist))}", fill)


def _sdist_files(sdist: Path) -> list[tuple[str, bytes]]:
    """The files of an sdist (path below its top folder -> bytes), sorted; mtimes ignored."""
    files = []
    with tarfile.open(sdist) as archive:
        for member in archive.getmembers():
            extracted = archive.extractfile(member) if member.isfile() else None
            if extracted is not None:
                files.append((member.name.split("/", 1)[-1], extracted.read()))
    return sorted(files)


def _run(argv: list[str], what: str, cwd: Path | None = None) -> None:
    env = {**os.environ, "SOURCE_DATE_EPOCH": _EPOCH}
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=cwd, env=env)
    if proc.returncode != 0:
        lines = [x for x in proc.stderr.strip().splitlines() if "is ignored" not in x]
        raise ToolError(
            f"could not {what}",
            argv=argv,
            returncode=proc.returncode,
            stderr_tail="\n".join(lines[-15:]),
        )
