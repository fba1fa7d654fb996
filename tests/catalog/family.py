"""The type family in a catalog: alice pushes tokenizer (A), summarizer (B), translator (C)
and tagger (D), and publishes all but tagger.

Known relations: A's response feeds B (length widens int32 -> int64) and D (its missing
`language` is optional), not C (`translate` needs `language`, `label` takes `length` as a
string). A and C produce what B takes.
"""

from __future__ import annotations

from pathlib import Path

from tests.catalog.helpers import Catalog

PUBLISHED = {
    "tokenizer": ("Splits text into tokens", "nlp", ("text", "tokens")),
    "summarizer": ("Summarizes a list of tokens", "nlp", ("text", "summary")),
    "translator": ("Translates tokens into another language", "translation", ("text",)),
}
PRIVATE = "tagger"


def populate(catalog: Catalog, bundles: dict[str, Path]) -> tuple[str, str]:
    """Push and publish the family as alice; (alice's token, bob's token)."""
    alice, bob = catalog.user("alice"), catalog.user("bob")
    with catalog.client(alice) as client:
        for name in ("tokenizer", "summarizer", "translator", "tagger"):
            client.push(bundles[name])
        for name, (description, category, tags) in PUBLISHED.items():
            client.publish(f"{name}:1.0.0", description=description, category=category, tags=tags)
    return alice, bob
