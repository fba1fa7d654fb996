"""Private until published: another user gets exactly what a model that does not exist
gets -- NOT_FOUND, or no row -- in every call: list, search (text, type), show, pull,
publish. Only the owner sees it, until it is published."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from modelwire.errors import NotFound, PermissionDenied, RequestError, ServiceError
from tests.catalog import family
from tests.catalog.helpers import Catalog

pytestmark = pytest.mark.timeout(60)


def _names(models: list) -> list[str]:  # type: ignore[type-arg]
    return [m.name for m in models]


def _failure(call: Callable[[], object]) -> tuple[str, str]:
    with pytest.raises(ServiceError) as info:
        call()
    return info.value.status, info.value.details


def test_another_user_cannot_tell_a_private_model_exists(
    catalog: Catalog, bundles: dict[str, Path], tmp_path: Path
):
    alice, bob = family.populate(catalog, bundles)
    with catalog.client(bob) as b:
        assert _names(b.search()) == ["summarizer", "tokenizer", "translator"]
        assert _names(b.search(all_versions=True)) == ["summarizer", "tokenizer", "translator"]
        assert _names(b.search("tag")) == []
        assert _names(b.search("ta")) == []
        assert _names(b.search(accepts="tokenizer.tokenize")) == ["summarizer"]
        assert _names(b.search(produces="summarizer.summarize")) == ["tokenizer", "translator"]
        for hidden, absent in (("tagger", "nosuch"), ("tagger:1.0.0", "nosuch:1.0.0")):
            calls: dict[str, Callable[[str], object]] = {
                "show": b.show,
                "pull": lambda ref: b.pull(ref, tmp_path / "pulled"),
                "accepts": lambda ref: b.search(accepts=f"{ref}.tag"),
                "produces": lambda ref: b.search(produces=f"{ref}.tag"),
            }
            for what, call in calls.items():
                status, details = _failure(lambda: call(hidden))  # noqa: B023
                assert status == "NOT_FOUND", what
                assert details == f"no model '{hidden}' in the catalog", what
                absent_name = absent.split(":")[0]
                assert _failure(lambda: call(absent)) == (  # noqa: B023
                    "NOT_FOUND",
                    details.replace("tagger", absent_name),
                ), what
        assert _failure(
            lambda: b.publish("tagger:1.0.0", description="mine now", category="nlp")
        ) == ("NOT_FOUND", "no model 'tagger:1.0.0' in the catalog")
        assert _failure(
            lambda: b.publish("nosuch:1.0.0", description="mine now", category="nlp")
        ) == ("NOT_FOUND", "no model 'nosuch:1.0.0' in the catalog")
        # the one thing a name says: it is taken (names are global), whoever may see it
        assert _failure(lambda: b.push(bundles["tagger"])) == (
            "PERMISSION_DENIED",
            "model name 'tagger' belongs to another user; push under another name",
        )
        assert _failure(lambda: b.push(bundles["tokenizer"])) == (
            "PERMISSION_DENIED",
            "model name 'tokenizer' belongs to another user; push under another name",
        )
        assert _failure(
            lambda: b.publish("tokenizer:1.0.0", description="mine now", category="nlp")
        ) == ("PERMISSION_DENIED", "only the owner of tokenizer:1.0.0 can publish it")
    assert not (tmp_path / "pulled").exists()

    with catalog.client(alice) as a:
        assert _names(a.search()) == ["summarizer", "tagger", "tokenizer", "translator"]
        assert _names(a.search("tag")) == ["tagger"]
        assert _names(a.search(accepts="tokenizer.tokenize")) == ["summarizer", "tagger"]
        info, _, _, versions = a.show("tagger")
        assert (info.name, info.published, versions) == ("tagger", False, ["1.0.0"])
        assert a.pull("tagger", tmp_path / "mine").name == "tagger"
        a.publish("tagger:1.0.0", description="Marks each token with its language", category="nlp")

    with catalog.client(bob) as b:
        assert _names(b.search()) == ["summarizer", "tagger", "tokenizer", "translator"]
        assert _names(b.search(accepts="tokenizer.tokenize")) == ["summarizer", "tagger"]
        assert b.show("tagger")[0].published is True
        assert b.pull("tagger", tmp_path / "theirs").name == "tagger"


def test_a_private_newer_version_stays_hidden_behind_the_published_one(
    catalog: Catalog, bundles: dict[str, Path], tmp_path: Path
):
    alice, bob = catalog.user("alice"), catalog.user("bob")
    with catalog.client(alice) as a:
        a.push(bundles["tokenizer"])
        a.publish("tokenizer:1.0.0", description="Splits text into tokens", category="nlp")
        a.push(bundles["tokenizer-1.1.0"])
        assert [m.version for m in a.search("tokenizer")] == ["1.1.0"]
        assert a.show("tokenizer")[3] == ["1.0.0", "1.1.0"]
    with catalog.client(bob) as b:
        assert [m.version for m in b.search("tokenizer")] == ["1.0.0"]
        assert [m.version for m in b.search("tokenizer", all_versions=True)] == ["1.0.0"]
        info, _, _, versions = b.show("tokenizer")
        assert (info.version, versions) == ("1.0.0", ["1.0.0"])
        assert b.pull("tokenizer", tmp_path / "t").version == "1.0.0"
        # only the versions bob may see are named: a private one looks like none at all
        for version in ("1.1.0", "9.9.9"):
            assert _failure(lambda v=version: b.show(f"tokenizer:{v}")) == (
                "NOT_FOUND",
                f"no version '{version}' of model 'tokenizer'; its versions: 1.0.0",
            )
        assert _failure(lambda: b.search(accepts="tokenizer:1.1.0.tokenize")) == (
            "NOT_FOUND",
            "no version '1.1.0' of model 'tokenizer'; its versions: 1.0.0",
        )


def test_the_store_raises_one_not_found_for_a_private_model_and_a_missing_one(
    catalog: Catalog, bundles: dict[str, Path]
):
    """What every call answers comes from the store's errors: the same kind, message and
    subject for another user's private model as for one that does not exist."""
    _, bob = family.populate(catalog, bundles)
    store = catalog.running.store
    viewer = store.user_for_token(bob)
    assert viewer is not None
    bob_id = viewer[0]

    def raised(call: Callable[[], object]) -> tuple[type[RequestError], str, str]:
        with pytest.raises(RequestError) as info:
            call()
        return type(info.value), str(info.value), info.value.subject

    for name in ("tagger", "nosuch"):
        assert raised(lambda: store.get(name, "1.0.0", bob_id)) == (  # noqa: B023
            NotFound,
            f"no model '{name}:1.0.0' in the catalog",
            f"{name}:1.0.0",
        )
        assert raised(lambda: store.get(name, None, bob_id)) == (  # noqa: B023
            NotFound,
            f"no model '{name}' in the catalog",
            name,
        )
        assert raised(
            lambda: store.publish(name, "1.0.0", bob_id, "mine now", "nlp", [])  # noqa: B023
        ) == (NotFound, f"no model '{name}:1.0.0' in the catalog", f"{name}:1.0.0")
    assert raised(lambda: store.publish("tokenizer", "1.0.0", bob_id, "mine", "nlp", [])) == (
        PermissionDenied,
        "only the owner of tokenizer:1.0.0 can publish it",
        "tokenizer:1.0.0",
    )
