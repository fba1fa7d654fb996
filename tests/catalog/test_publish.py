"""Publishing: a description and a category are required; tags are optional; publishing
again updates what search finds."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from tests.catalog.helpers import Catalog

pytestmark = pytest.mark.timeout(60)

USAGE = (
    "Usage: modelwire publish [OPTIONS] NAME:VERSION\n"
    "Try 'modelwire publish --help' for help.\n\nError: {}\n"
)


@pytest.fixture
def env(catalog: Catalog, bundles: dict[str, Path], cli: Callable[..., Result]) -> dict[str, str]:
    """alice's CLI environment, with tokenizer:1.0.0 pushed (private)."""
    values = {"MODELWIRE_CATALOG": catalog.address, "MODELWIRE_TOKEN": catalog.user("alice")}
    assert cli("push", str(bundles["tokenizer"]), env=values).exit_code == 0
    return values


@pytest.mark.parametrize(
    ("args", "code", "stderr"),
    [
        pytest.param(
            ["tokenizer:1.0.0", "--category", "nlp"],
            2,
            USAGE.format("Missing option '--description'."),
            id="no-description",
        ),
        pytest.param(
            ["tokenizer:1.0.0", "--description", "Splits text"],
            2,
            USAGE.format("Missing option '--category'."),
            id="no-category",
        ),
        pytest.param(
            ["tokenizer:1.0.0", "--description", "  ", "--category", "nlp"],
            1,
            "error: {address} PublishModel: INVALID_ARGUMENT: publishing needs a description and "
            "a category (--description, --category)\n",
            id="blank-description",
        ),
        pytest.param(
            ["tokenizer", "--description", "d", "--category", "nlp"],
            2,
            USAGE.format("Invalid value for 'NAME:VERSION': publish needs NAME:VERSION"),
            id="no-version",
        ),
        pytest.param(
            ["tokenizer:9.0.0", "--description", "d", "--category", "nlp"],
            1,
            "error: {address} PublishModel: NOT_FOUND: no model 'tokenizer:9.0.0' in the catalog\n",
            id="unknown-version",
        ),
    ],
)
def test_publishing_needs_a_description_and_a_category(
    catalog: Catalog,
    env: dict[str, str],
    cli: Callable[..., Result],
    args: list[str],
    code: int,
    stderr: str,
):
    result = cli("publish", *args, env=env)
    assert (result.exit_code, result.stdout, result.stderr) == (
        code,
        "",
        stderr.format(address=catalog.address),
    )
    listed = json.loads(cli("search", "--json", env=env).stdout)
    assert [(m["name"], m["published"]) for m in listed] == [("tokenizer", False)]


def test_publishing_again_updates_what_search_finds(
    catalog: Catalog, env: dict[str, str], cli: Callable[..., Result]
):
    first = cli(
        "publish",
        "tokenizer:1.0.0",
        "--description",
        "Splits text into words",
        "--category",
        "nlp",
        "--tag",
        "text",
        "--tag",
        "words",
        env=env,
    )
    assert (first.exit_code, first.stdout) == (0, "published tokenizer:1.0.0 (nlp)\n")

    def names(*args: str) -> list[str]:
        return [m["name"] for m in json.loads(cli("search", "--json", *args, env=env).stdout)]

    assert names("words") == ["tokenizer"]
    assert names("--tag", "words") == ["tokenizer"]
    again = cli(
        "publish",
        "tokenizer:1.0.0",
        "--description",
        "Cuts sentences into tokens",
        "--category",
        "text-processing",
        "--tag",
        "tokens",
        env=env,
    )
    assert (again.exit_code, again.stdout) == (0, "published tokenizer:1.0.0 (text-processing)\n")
    assert names("words") == []
    assert names("--tag", "words") == []
    assert names("--tag", "text") == []
    assert names("sentences", "--category", "text-processing", "--tag", "tokens") == ["tokenizer"]
    assert names("--category", "nlp") == []
