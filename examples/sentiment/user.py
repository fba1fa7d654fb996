"""The end user of case study A: a shared sentiment model from the catalog against training her own.

    python examples/sentiment/user.py --catalog HOST:PORT --token TOKEN --work DIR
        [--docker] [--test 500] [--amazon N] [--sizes 100,200,...] [--runs 4] [--out FILE.json]

With the catalog: she searches it for a sentiment model, pulls the bundle, writes its
stubs, serves it (`modelwire serve`, or its image with --docker) and scores `--test`
random Amazon sentences through the generated stubs, and again over its HTTP face
(Connect, JSON); the AUC comes from those answers. It also loads the same bundle
in-process (`modelwire.load`) to check that the service answers exactly what the model
computes.

Without it: she labels n of her own Amazon sentences (the test sentences held out) and
trains the same model family the same way (training.py), `--runs` draws per n, each
scored on the same test sentences. Everything lands in `--out` for figure.py.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import click
import corpora
import numpy as np
from sentiment_model import MiniLMEncoder
from serving import Service, ServiceError, Stubs, score_http
from serving import modelwire as run_modelwire
from training import C_GRID, auc, fit_head

import modelwire
from modelwire.errors import ModelwireError

DEFAULT_SIZES = (100, 200, 300, 500, 750, 1000, 1500, 2000, 2500)  # and all of her pool


def find_model(catalog: str, token: str) -> dict:
    """The first published model that a search for 'sentiment' in category nlp lists."""
    listing = run_modelwire(
        "search", "sentiment", "--category", "nlp", "--json", "--catalog", catalog, "--token", token
    )
    found = json.loads(listing)
    if not found:
        raise ServiceError("the catalog lists no sentiment model in category 'nlp'")
    model = found[0]
    print(f"found {model['name']}:{model['version']} by {model['owner']}: {model['description']}")
    for method in model["methods"]:
        print(f"  {method['name']}({method['input']}) -> {method['output']}")
    return model


def split(amazon: list[corpora.Sentence], test: int, limit: int | None, seed: int):
    """(test sentences, her labelled pool): `test` random sentences, the rest (up to `limit`)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(amazon))
    if limit is not None:
        order = order[:limit]
    return [amazon[i] for i in order[:test]], [amazon[i] for i in order[test:]]


def shared_model(args: argparse.Namespace, test: list[corpora.Sentence]) -> dict:
    """Search, pull, stubs, serve; score the test sentences through the service and in-process."""
    model = find_model(args.catalog, args.token)
    ref = f"{model['name']}:{model['version']}"
    bundle = args.work / "pulled" / model["name"]
    run_modelwire("pull", ref, "-o", str(bundle), "--catalog", args.catalog, "--token", args.token)
    print(f"it needs: {', '.join((bundle / 'requirements.txt').read_text().split())}")
    stubs_dir = args.work / "stubs"
    run_modelwire("stubs", str(bundle), "-o", str(stubs_dir))
    stubs = Stubs(stubs_dir, model["service"])
    texts = [s.text for s in test]
    labels = np.array([s.label for s in test], dtype=np.int64)
    if args.docker:
        service = Service.docker(bundle, args.image, args.base)
    else:
        service = Service.local(bundle, args.work / "serve.log")
    with service:
        print(f"serving at {service.address} ({service.what})")
        start = time.perf_counter()
        served = np.array(stubs.score(service.address, texts))
        service_seconds = time.perf_counter() - start
        start = time.perf_counter()
        over_http = np.array(score_http(service.http, model["service"], texts))
        http_seconds = time.perf_counter() - start
    print(
        f"scored {len(texts):,} Amazon sentences through the service in {service_seconds:.1f} s: "
        f"{len(texts) / service_seconds:.1f} sentences/s over gRPC; "
        f"{len(texts) / http_seconds:.1f} sentences/s over HTTP (JSON, {service.http})"
    )
    loaded = modelwire.load(bundle)
    start = time.perf_counter()
    local = np.array(loaded.score(texts))
    local_seconds = time.perf_counter() - start
    result = {
        "model": ref,
        "served_by": "docker" if args.docker else "process",
        "n_test": len(texts),
        "auc_service": auc(labels, served),
        "auc_http": auc(labels, over_http),
        "auc_in_process": auc(labels, local),
        "max_abs_difference_http": (float(np.max(np.abs(over_http - served))) if texts else 0.0),
        "max_abs_difference": float(np.max(np.abs(served - local))) if texts else 0.0,
        "service_per_second": len(texts) / service_seconds,
        "http_per_second": len(texts) / http_seconds,
        "in_process_per_second": len(texts) / local_seconds,
    }
    print(
        f"AUC of {ref} on {len(texts):,} Amazon sentences: {result['auc_service']:.4f} through "
        f"the service ({result['auc_http']:.4f} over HTTP), "
        f"{result['auc_in_process']:.4f} in-process (modelwire.load; largest "
        f"difference of a probability {result['max_abs_difference']:.1e}; "
        f"{result['in_process_per_second']:.1f} sentences/s)"
    )
    return result


def own_training(
    args: argparse.Namespace, test: list[corpora.Sentence], pool: list[corpora.Sentence]
) -> list[dict]:
    """Her own model for each n: `runs` draws of n labelled sentences, AUC on the test set."""
    sizes = sorted({n for n in args.sizes if n < len(pool)} | {len(pool)}) if args.sizes else []
    if not sizes:
        return []
    encoder = MiniLMEncoder.from_file()
    texts = [s.text for s in test] + [s.text for s in pool]
    start = time.perf_counter()
    with click.progressbar(
        length=len(texts), label="encoding her Amazon sentences", file=sys.stderr
    ) as bar:
        embeddings = encoder.encode(texts, progress=bar.update)
    seconds = time.perf_counter() - start
    print(
        f"encoded {len(texts):,} Amazon sentences in {seconds:.1f} s: "
        f"{len(texts) / seconds:.1f} sentences/s in-process"
    )
    test_x, pool_x = embeddings[: len(test)], embeddings[len(test) :]
    test_y = np.array([s.label for s in test], dtype=np.int64)
    pool_y = np.array([s.label for s in pool], dtype=np.int64)
    curve = []
    jobs = [(n, run) for n in sizes for run in range(args.runs)]
    aucs: dict[int, list[float]] = {n: [] for n in sizes}
    start = time.perf_counter()
    with click.progressbar(jobs, label="training her own models", file=sys.stderr) as bar:
        for n, run in bar:
            rng = np.random.default_rng([args.seed, n, run])
            drawn = rng.choice(len(pool), n, replace=False)
            fit = fit_head(pool_x[drawn], pool_y[drawn], seed=run)
            aucs[n].append(auc(test_y, fit.head.probabilities(test_x)))
    print(
        f"trained {len(jobs)} models ({len(jobs) * len(C_GRID)} fits) in "
        f"{time.perf_counter() - start:.1f} s"
    )
    for n in sizes:
        curve.append(
            {
                "n": n,
                "aucs": aucs[n],
                "mean": float(np.mean(aucs[n])),
                "std": float(np.std(aucs[n])),
            }
        )
        print(f"  n={n:5d}: AUC {curve[-1]['mean']:.4f} ± {curve[-1]['std']:.4f}")
    return curve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalog", required=True, metavar="HOST:PORT")
    parser.add_argument("--token", required=True, help="her bearer token")
    parser.add_argument("--work", type=Path, required=True, help="for the bundle, stubs, logs")
    parser.add_argument("--docker", action="store_true", help="serve the model's image")
    parser.add_argument("--image", default="modelwire-example/movie-sentiment:1.0.0")
    parser.add_argument("--base", help="base image for --docker (modelwire build's default)")
    parser.add_argument("--test", type=int, default=500, help="test sentences (%(default)s)")
    parser.add_argument("--amazon", type=int, help="use only N Amazon sentences (all 3,610)")
    parser.add_argument(
        "--sizes",
        type=lambda text: [int(n) for n in text.split(",") if n],
        default=list(DEFAULT_SIZES),
        help="n to train her own on, comma-separated; the pool's size is always added",
    )
    parser.add_argument("--runs", type=int, default=4, help="draws per n (%(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="default: %(default)s")
    parser.add_argument("--cache", type=Path, help="the corpora's cache directory")
    parser.add_argument("--out", type=Path, help="write the results here (JSON)")
    args = parser.parse_args(argv)
    if args.sizes and min(args.sizes) < 100:
        parser.error("--sizes must be at least 100 each (10 per class to validate on)")
    try:
        path = corpora.fetch(args.cache)["amazon"]
        amazon = [s for s in corpora.read(path, "amazon") if s.label is not None]
        test, pool = split(amazon, args.test, args.amazon, args.seed)
        if len(test) < args.test or (args.sizes and len(pool) < 100):
            parser.error(f"{len(amazon)} Amazon sentences: too few for --test and --sizes")
        args.work.mkdir(parents=True, exist_ok=True)
        results = {
            "setting": {"test": len(test), "pool": len(pool), "runs": args.runs, "seed": args.seed},
            "shared": shared_model(args, test),
            "own": own_training(args, test, pool),
        }
    except (corpora.CorpusError, ServiceError, ModelwireError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
