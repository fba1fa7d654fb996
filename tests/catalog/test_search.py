"""Search by text, category, tag and type (`--accepts`, `--produces`) over the type family;
the table, `--json` and `show` as a user reads them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from modelwire.catalog.schemas import SchemaCache
from tests.catalog import family
from tests.catalog.helpers import Catalog, sha256

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def populated(catalog: Catalog, bundles: dict[str, Path]) -> tuple[Catalog, dict[str, str]]:
    """The family in a catalog; the CLI environment of alice (who owns it all)."""
    alice, _ = family.populate(catalog, bundles)
    return catalog, {"MODELWIRE_CATALOG": catalog.address, "MODELWIRE_TOKEN": alice}


def _names(cli: Callable[..., Result], env: dict[str, str], *args: str) -> list[str]:
    result = cli("search", "--json", *args, env=env)
    assert result.exit_code == 0, result.stderr
    return [m["name"] for m in json.loads(result.stdout)]


@pytest.mark.parametrize(
    ("args", "names"),
    [
        pytest.param([], ["summarizer", "tagger", "tokenizer", "translator"], id="everything"),
        pytest.param(["summar"], ["summarizer"], id="text-in-name"),
        pytest.param(["SPLITS"], ["tokenizer"], id="text-in-description-any-case"),
        pytest.param(["tokens language"], ["translator"], id="every-word-must-match"),
        pytest.param(["ta"], ["tagger"], id="short-word-as-substring"),
        pytest.param(["summary"], ["summarizer"], id="text-in-tags"),
        pytest.param(["zebra"], [], id="no-match"),
        pytest.param(["--category", "nlp"], ["summarizer", "tokenizer"], id="category"),
        pytest.param(["--tag", "summary"], ["summarizer"], id="tag"),
        pytest.param(["--tag", "text", "--tag", "tokens"], ["tokenizer"], id="every-tag"),
        pytest.param(["token", "--category", "translation"], ["translator"], id="text-category"),
        pytest.param(
            ["--accepts", "tokenizer.tokenize"],
            ["summarizer", "tagger"],
            id="accepts-widening-and-optional-not-a-missing-field",
        ),
        pytest.param(
            ["--accepts", "tokenizer:1.0.0.tokenize"], ["summarizer", "tagger"], id="accepts-ver"
        ),
        pytest.param(
            ["--accepts", "tokenizer.Tokenize", "--category", "nlp"],
            ["summarizer"],
            id="accepts-by-rpc-name-and-category",
        ),
        pytest.param(
            ["--produces", "summarizer.summarize"],
            ["tokenizer", "translator"],
            id="produces",
        ),
        pytest.param(["--produces", "tokenizer.tokenize"], [], id="produces-nothing-has-text"),
        pytest.param(
            ["--accepts", "tokenizer.tokenize", "--produces", "summarizer.summarize"],
            [],
            id="no-method-between",
        ),
    ],
)
def test_search_finds_what_matches_every_criterion(
    populated: tuple[Catalog, dict[str, str]],
    cli: Callable[..., Result],
    args: list[str],
    names: list[str],
):
    _, env = populated
    assert _names(cli, env, *args) == names


def test_accepts_checks_types_not_only_field_names(
    populated: tuple[Catalog, dict[str, str]], cli: Callable[..., Result]
):
    """`translator.label` has a field `length` (a string): the names fit, the types do not."""
    _, env = populated
    assert "translator" not in _names(cli, env, "--accepts", "tokenizer.tokenize")
    # and what does fit label's string length: nothing in the family produces one
    assert _names(cli, env, "--produces", "translator.label") == []


def test_search_prints_a_table(
    populated: tuple[Catalog, dict[str, str]], cli: Callable[..., Result]
):
    _, env = populated
    result = cli("search", env=env)
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == (
        "NAME        VERSION  VISIBILITY  VALIDATION   CATEGORY     METHODS           DESCRIPTION\n"
        "summarizer  1.0.0    public      unvalidated  nlp          summarize         "
        "Summarizes a list of tokens\n"
        "tagger      1.0.0    private     unvalidated               tag\n"
        "tokenizer   1.0.0    public      unvalidated  nlp          tokenize          "
        "Splits text into tokens\n"
        "translator  1.0.0    public      unvalidated  translation  translate, label  "
        "Translates tokens into another language\n"
    )
    empty = cli("search", "zebra", env=env)
    assert (empty.exit_code, empty.stdout) == (0, "no models found\n")


def test_a_long_description_is_cut_in_the_table_with_an_ellipsis_and_whole_in_json(
    populated: tuple[Catalog, dict[str, str]], cli: Callable[..., Result]
):
    catalog, env = populated
    long = "Tags every token with its part of speech, trained on the Brown corpus"
    with catalog.client(env["MODELWIRE_TOKEN"]) as client:
        client.publish("tagger:1.0.0", description=long, category="nlp", tags=())
    table = cli("search", "tagger", env=env)
    assert table.stdout.splitlines()[1].endswith(
        "Tags every token with its part of speech, trained…"
    )
    found = json.loads(cli("search", "--json", "tagger", env=env).stdout)
    assert [m["description"] for m in found] == [long]


def test_search_json_lists_objects_with_name_version_and_methods(
    populated: tuple[Catalog, dict[str, str]], cli: Callable[..., Result], bundles: dict[str, Path]
):
    _, env = populated
    result = cli("search", "--json", "--accepts", "tokenizer.tokenize", "--tag", "summary", env=env)
    assert result.exit_code == 0, result.stderr
    found = json.loads(result.stdout)
    assert isinstance(found, list)
    assert len(found) == 1
    entry = found[0]
    assert {k: entry[k] for k in ("name", "version", "owner", "published", "category")} == {
        "name": "summarizer",
        "version": "1.0.0",
        "owner": "alice",
        "published": True,
        "category": "nlp",
    }
    assert entry["tags"] == ["summary", "text"]
    assert entry["methods"] == [
        {
            "name": "summarize",
            "rpc": "Summarize",
            "request": "SummarizeRequest",
            "response": "SummarizeResponse",
            "doc": "The first tokens, and how many there were.",
            "input": "tokens: repeated string, length: int64",
            "output": "value: string",
        }
    ]
    assert entry["service"] == "modelwire.models.summarizer.v1.SummarizerService"
    assert entry["size"] > 0
    assert len(entry["sha256"]) == 64


def test_show_prints_metadata_rpcs_formats_and_the_proto(
    populated: tuple[Catalog, dict[str, str]], cli: Callable[..., Result], bundles: dict[str, Path]
):
    _, env = populated
    manifest = json.loads((bundles["tokenizer"] / "modelwire.json").read_text())
    proto = (bundles["tokenizer"] / "model.proto").read_text()
    digest = sha256(bundles["tokenizer.zip"].read_bytes())
    for ref in ("tokenizer", "tokenizer:1.0.0"):
        result = cli("show", ref, env=env)
        assert (result.exit_code, result.stderr) == (0, "")
        assert result.stdout == (
            "tokenizer:1.0.0  (public, owner alice)\n"
            "  description  Splits text into tokens\n"
            "  category     nlp\n"
            "  tags         text, tokens\n"
            "  service      modelwire.models.tokenizer.v1.TokenizerService\n"
            "  rpc          Tokenize(TokenizeRequest) returns (TokenizeResponse)\n"
            "    input      text: string, limit: int32\n"
            "    output     tokens: repeated string, length: int32\n"
            f"  requires     {', '.join(manifest['requirements'])}\n"
            f"  python       {manifest['python']}\n"
            f"  sha256       {digest}\n"
            "  versions     1.0.0\n"
            "  validation   unvalidated: no validating catalog has queued it\n"
            "\n" + proto
        )
    assert "rpc Tokenize(TokenizeRequest) returns (TokenizeResponse);" in proto


def test_versions_sort_numerically_and_search_shows_the_latest(
    catalog: Catalog, bundles: dict[str, Path], cli: Callable[..., Result]
):
    env = {"MODELWIRE_CATALOG": catalog.address, "MODELWIRE_TOKEN": catalog.user("alice")}
    for key in ("tokenizer-1.1.0", "tokenizer", "tokenizer-2.0.0"):  # out of order
        args = ["push", str(bundles[key]), "--allow-breaking"]
        assert cli(*args, env=env).exit_code == 0
    result = cli("search", "--json", "--all-versions", env=env)
    assert [m["version"] for m in json.loads(result.stdout)] == ["2.0.0", "1.1.0", "1.0.0"]
    latest = cli("search", "--json", env=env)
    assert [m["version"] for m in json.loads(latest.stdout)] == ["2.0.0"]
    limited = cli("search", "--json", "--all-versions", "--limit", "2", env=env)
    assert [m["version"] for m in json.loads(limited.stdout)] == ["2.0.0", "1.1.0"]


@pytest.mark.parametrize(
    ("args", "code", "stderr"),
    [
        pytest.param(
            ["--accepts", "tokenizer"],
            2,
            "Usage: modelwire search [OPTIONS] [TEXT]\nTry 'modelwire search --help' for help."
            "\n\nError: Invalid value for '--accepts': 'tokenizer' is not MODEL[:VERSION].METHOD\n",
            id="not-a-method-ref",
        ),
        pytest.param(
            ["--accepts", "tokenizer.nope"],
            1,
            "error: {address} SearchModels: NOT_FOUND: tokenizer:1.0.0 has no method 'nope' "
            "(it has tokenize)\n",
            id="unknown-method",
        ),
        pytest.param(
            ["--produces", "nosuch.x"],
            1,
            "error: {address} SearchModels: NOT_FOUND: no model 'nosuch' in the catalog\n",
            id="unknown-model",
        ),
    ],
)
def test_bad_type_references_are_reported(
    populated: tuple[Catalog, dict[str, str]],
    cli: Callable[..., Result],
    args: list[str],
    code: int,
    stderr: str,
):
    catalog, env = populated
    result = cli("search", *args, env=env)
    assert (result.exit_code, result.stdout, result.stderr) == (
        code,
        "",
        stderr.format(address=catalog.address),
    )


def test_schemas_read_past_the_cache_limit_are_all_answered(
    catalog: Catalog, bundles: dict[str, Path]
):
    """The cache of parsed schemas starts afresh when full; the schemas one call reads past
    the limit are still all in its answer (they once went missing, failing a type search
    over more versions than the cache holds with INTERNAL)."""
    alice, _ = family.populate(catalog, bundles)
    store = catalog.running.store
    viewer = store.user_for_token(alice)
    assert viewer is not None
    names = ["summarizer", "tagger", "tokenizer", "translator"]
    ids = [store.get(name, "1.0.0", viewer[0]).id for name in names]
    cache = SchemaCache(store, limit=2)
    for _ in range(2):  # read from the store, then partly from the cache
        schemas = cache.many(ids)
        assert [schemas[i].service for i in ids] == [
            f"{name.capitalize()}Service" for name in names
        ]
    assert cache.of(store.get("tagger", "1.0.0", viewer[0])).service == "TaggerService"
