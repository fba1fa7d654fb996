"""The expert of case study A: train a sentiment model on movie reviews and push it to a catalog.

    python examples/sentiment/expert.py --catalog HOST:PORT --token TOKEN [--movie N]
    python examples/sentiment/expert.py --bundle build/movie-sentiment      # dump only

The model: all-MiniLM-L6-v2 sentence embeddings (int8 ONNX, sentiment_model.py) and a
logistic-regression head trained on the movie-review sentences, its C chosen on a 9:1
validation split (training.py). It is one method, `score`, taking a batch of texts and
returning the probability that each is positive, pushed private with `modelwire.push`
(publish it with `modelwire publish`, as run.py does).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import click
import corpora
import numpy as np
from sentiment_model import MiniLMEncoder, SentimentModel
from training import fit_head

import modelwire

NAME = "movie-sentiment"
VERSION = "1.0.0"
DESCRIPTION = (
    "Sentiment of English sentences: the probability that each text is positive. "
    "all-MiniLM-L6-v2 sentence embeddings (int8 ONNX) and a logistic-regression head "
    "trained on movie-review sentences (Pang & Lee, rated by VADER's raters)"
)
CATEGORY = "nlp"
TAGS = ("sentiment", "text", "reviews", "onnx")


# what the bundle records with the model's answers at dump, and what the catalog's
# validation sends again: one request of three sentences, one plainly positive, one plainly
# negative, one mixed
EXAMPLES = {
    "score": [
        [
            "a moving, funny and beautifully acted film",
            "dull, overlong and badly written",
            "the plot drags, but the ending is worth the wait",
        ]
    ]
}


def encode(encoder: MiniLMEncoder, texts: list[str], what: str) -> np.ndarray:
    """Embeddings of `texts` with a progress bar; prints the throughput."""
    start = time.perf_counter()
    with click.progressbar(length=len(texts), label=f"encoding {what}", file=sys.stderr) as bar:
        embeddings = encoder.encode(texts, progress=bar.update)
    seconds = time.perf_counter() - start
    print(
        f"encoded {len(texts):,} {what} in {seconds:.1f} s: "
        f"{len(texts) / seconds:.1f} sentences/s in-process"
    )
    return embeddings


def train(movie: int | None, seed: int, cache: Path | None) -> tuple[modelwire.Model, dict]:
    """The expert's model and what to report about its training."""
    path = corpora.fetch(cache)["movie"]
    sentences = [s for s in corpora.read(path, "movie") if s.label is not None]
    rng = np.random.default_rng(seed)
    if movie is not None and movie < len(sentences):
        sentences = [sentences[i] for i in sorted(rng.choice(len(sentences), movie, replace=False))]
    texts = [s.text for s in sentences]
    labels = np.array([s.label for s in sentences], dtype=np.int64)
    encoder = MiniLMEncoder.from_file()
    start = time.perf_counter()
    embeddings = encode(encoder, texts, "movie sentences")
    encode_seconds = time.perf_counter() - start
    fit = fit_head(embeddings, labels, seed=seed)
    grid = ", ".join(f"C={c:g}: {a:.4f}" for c, a in fit.validation.items())
    print(
        f"trained on {fit.n_train:,} sentences; validation AUC ({fit.n_validation:,} held "
        f"out) {grid}; kept C={fit.c:g} ({fit.validation_auc:.4f})"
    )
    shared = SentimentModel(encoder, fit.head)

    def score(texts: list[str]) -> list[float]:
        """The probability that each text is positive (all-MiniLM-L6-v2 + logistic regression,
        trained on movie-review sentences)."""
        return shared.score(texts)

    report = {
        "movie_sentences": len(texts),
        "train": fit.n_train,
        "validation": fit.n_validation,
        "c": fit.c,
        "validation_auc": fit.validation_auc,
        "encode_seconds": encode_seconds,
        "encode_per_second": len(texts) / encode_seconds,
    }
    return modelwire.Model(score=score), report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalog", metavar="HOST:PORT", help="push to this catalog")
    parser.add_argument("--token", help="the expert's bearer token for --catalog")
    parser.add_argument("--bundle", type=Path, help="also (or only) dump the bundle here")
    parser.add_argument("--movie", type=int, help="train on N random movie sentences (all)")
    parser.add_argument("--seed", type=int, default=0, help="default: %(default)s")
    parser.add_argument("--cache", type=Path, help="the corpora's cache directory")
    parser.add_argument("--report", type=Path, help="write the training figures here (JSON)")
    args = parser.parse_args(argv)
    if args.catalog is None and args.bundle is None:
        parser.error("give --catalog (and --token) to push, or --bundle to dump")
    if args.movie is not None and args.movie < 200:
        parser.error("--movie must be at least 200 (20 per class for the validation split)")
    try:
        model, report = train(args.movie, args.seed, args.cache)
    except corpora.CorpusError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.bundle is not None:
        modelwire.dump(
            model,
            NAME,
            args.bundle,
            version=VERSION,
            description=DESCRIPTION,
            tags=TAGS,
            examples=EXAMPLES,
        )
        print(f"dumped {NAME}:{VERSION} to {args.bundle}")
    if args.catalog is not None:
        from modelwire.errors import ModelwireError

        try:
            info = modelwire.push(
                model,
                NAME,
                version=VERSION,
                catalog=args.catalog,
                token=args.token,
                description=DESCRIPTION,
                tags=TAGS,
                examples=EXAMPLES,
            )
        except ModelwireError as exc:
            print(f"error: push to {args.catalog} failed: {exc}", file=sys.stderr)
            return 1
        print(f"pushed {info.name}:{info.version} ({info.size:,} bytes, private until published)")
    if args.report is not None:
        import json

        args.report.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
