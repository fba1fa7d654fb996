"""Catalog fixtures: the bundles of the type family, a catalog served in this process,
users (the `cli` runner is tests/conftest.py's)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from modelwire.bundle import dump
from tests.catalog.helpers import Catalog
from tests.fixtures.models import summarizer, tagger, tokenizer, translator, weights


@pytest.fixture(autouse=True)
def no_user_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's ~/.config/modelwire/config.toml never reaches a test."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    # the default place, under this HOME, is tried
    monkeypatch.delenv("MODELWIRE_CONFIG", raising=False)


@pytest.fixture(scope="session")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Bundle directories (and a few zips) of the type family, dumped once."""
    root = tmp_path_factory.mktemp("catalog-bundles")
    out = {
        "tokenizer": dump(tokenizer.model(), "tokenizer", root / "tokenizer"),
        "tokenizer.zip": dump(tokenizer.model(), "tokenizer", root / "tokenizer.zip"),
        "tokenizer-1.1.0": dump(
            tokenizer.widened(), "tokenizer", root / "tokenizer-1.1.0", version="1.1.0"
        ),
        "tokenizer-2.0.0": dump(
            tokenizer.breaking(), "tokenizer", root / "tokenizer-2.0.0", version="2.0.0"
        ),
        "summarizer": dump(summarizer.model(), "summarizer", root / "summarizer"),
        "translator": dump(translator.model(), "translator", root / "translator"),
        "tagger": dump(tagger.model(), "tagger", root / "tagger"),
    }
    for i in range(4):  # the same name and version, different bytes
        out[f"contested-{i}"] = dump(
            tokenizer.model(),
            "contested",
            root / f"contested-{i}.zip",
            description=f"variant {i}",
        )
    return out


@pytest.fixture(scope="session")
def big_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 16 MiB bundle zip (incompressible weights)."""
    root = tmp_path_factory.mktemp("catalog-big")
    return dump(weights.model(16 * 1024 * 1024), "weights", root / "weights.zip")


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[Catalog]:
    """A fresh catalog served in this process (its data under tmp_path/data)."""
    running = Catalog.start(tmp_path / "data")
    yield running
    running.stop()
