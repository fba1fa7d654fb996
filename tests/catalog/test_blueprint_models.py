"""Blueprint models by `catalog:` reference: resolved by pulling, cached by digest."""

from __future__ import annotations

import signal
import textwrap
from pathlib import Path

from modelwire.broker.check import check_file
from modelwire.broker.resolve import CatalogBundle
from modelwire.config import ENV_CATALOG, ENV_TOKEN
from modelwire.runtime.client import connect
from tests.broker.helpers import BrokerProcess
from tests.catalog.helpers import Catalog

BLUEPRINT = """\
    name: summary
    models:
      tokenizer: {catalog: tokenizer:1.0.0}
      summarizer: {catalog: summarizer}
    methods:
      summarize:
        steps:
          tokens: {call: tokenizer.tokenize, with: $input}
          summary: {call: summarizer.summarize, with: tokens}
        output: summary
"""


def _push_both(catalog: Catalog, bundles: dict[str, Path]) -> str:
    token = catalog.user("alice")
    with catalog.client(token) as client:
        client.push(bundles["tokenizer"])
        client.push(bundles["summarizer"])
    return token


def test_catalog_models_resolve_through_a_pull_cached_by_digest(
    catalog: Catalog, bundles: dict[str, Path], tmp_path: Path, monkeypatch
):
    token = _push_both(catalog, bundles)
    path = tmp_path / "summary.yaml"
    path.write_text(textwrap.dedent(BLUEPRINT))
    cache = tmp_path / "cache"
    pulls: list[str] = []

    def resolver(ref: str) -> CatalogBundle:
        pulls.append(ref)
        with catalog.client(token) as client:
            path, info = client.fetch(ref, cache)
        return CatalogBundle(path, f"{info.name}:{info.version}", info.validation)

    plan, bundle_paths, _ = check_file(path, catalog=resolver)
    assert sorted(bundle_paths) == ["summarizer", "tokenizer"]
    assert all(p.parent == cache for p in bundle_paths.values())
    digests = {p.name for p in bundle_paths.values()}
    check_file(path, catalog=resolver)  # the second time: served from the cache
    assert sorted(p.name for p in cache.iterdir()) == sorted(digests)
    assert pulls == ["tokenizer:1.0.0", "summarizer", "tokenizer:1.0.0", "summarizer"]
    assert plan.summary() == ["summarize(SummarizeRequest) returns (SummarizeResponse)"]


def test_modelwire_run_pulls_catalog_models_and_serves_them(
    catalog: Catalog, bundles: dict[str, Path], tmp_path: Path, monkeypatch
):
    token = _push_both(catalog, bundles)
    path = tmp_path / "summary.yaml"
    path.write_text(textwrap.dedent(BLUEPRINT))
    env = {
        ENV_CATALOG: catalog.address,
        ENV_TOKEN: token,
        "XDG_CACHE_HOME": str(tmp_path / "xdg"),
        "HOME": str(tmp_path),
    }
    broker = BrokerProcess(path, env=env)
    try:
        with connect(broker.address) as solution:
            assert solution.summarize("the cat sat on the mat", 3) == "the cat sat (3 tokens)"
        cached = list((tmp_path / "xdg" / "modelwire" / "bundles").iterdir())
        assert len(cached) == 2
        assert broker.signal(signal.SIGTERM) == 0, broker.stderr
    finally:
        broker.close()
    # this catalog does not validate: run says so of each catalog model, by name
    for model, version in (("tokenizer", "tokenizer:1.0.0"), ("summarizer", "summarizer:1.0.0")):
        warning = f"model '{model}': catalog version {version} is not validated"
        assert f"{warning} (its validation: unvalidated)" in broker.stderr


def test_without_a_catalog_a_catalog_model_is_an_mw105_diagnostic(tmp_path: Path):
    path = tmp_path / "summary.yaml"
    path.write_text(textwrap.dedent(BLUEPRINT))
    from modelwire.errors import BlueprintError

    try:
        check_file(path)
    except BlueprintError as exc:
        text = str(exc)
    else:
        raise AssertionError("check_file accepted catalog models without a catalog")
    assert text.splitlines()[0] == (
        f"{path}:3:3: error[MW105]: model 'tokenizer': catalog reference 'tokenizer:1.0.0' "
        "needs a catalog"
    )
    assert text.splitlines()[-1] == f"2 errors in {path}"
