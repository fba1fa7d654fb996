"""Fixtures for the codegen tests: protoc-compiled stubs, cached for the whole session."""

from __future__ import annotations

import pytest

from tests.codegen.toolchain import StubCache


@pytest.fixture(scope="session")
def stub_cache(tmp_path_factory: pytest.TempPathFactory) -> StubCache:
    return StubCache(tmp_path_factory.mktemp("stubs"))
