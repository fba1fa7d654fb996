"""The search catalog of bench/catalog.py (b): generated models inserted through the
Store API. Run as its own process by the orchestrator:

    python bench/catalog_populate.py DATA_DIR COUNT SEED

It prints one JSON line: how many names, versions, published versions and methods it
inserted, in how many seconds, the database's size, and the token of `reader`, a user
who owns nothing (the one the searches run as).
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path
from typing import Any

PRODUCER = "tokenizer"  # the model the type searches refer to
NARROW = "model-004217"  # the model the narrow text search finds (always published)


def populate_main(argv: list[str]) -> int:
    """Fill a catalog with generated models (run as its own process)."""
    data, count, seed = Path(argv[0]), int(argv[1]), int(argv[2])
    t0 = time.perf_counter()
    from modelwire.bundle import Manifest
    from modelwire.catalog.records import version_record
    from modelwire.catalog.store import Store
    from modelwire.codegen.proto import render_proto

    store = Store(data, create=True)
    alice_token = store.add_user("alice")  # owns every model
    reader_token = store.add_user("reader")  # owns none: sees the published ones
    alice = store.user_for_token(alice_token)
    assert alice is not None
    blob, size = _tiny_blob(store)
    rng = random.Random(seed)
    versions = published = methods = 0
    names = [PRODUCER] + [f"model-{i:06d}" for i in range(1, count)]
    for i, name in enumerate(names):
        for version in ("1.0.0", "1.1.0") if i % 5 == 0 else ("1.0.0",):
            schema = _producer_schema(version) if name == PRODUCER else _schema(rng, name, version)
            proto = render_proto(schema, version=version)
            manifest = Manifest.parse(
                json.dumps(_manifest(schema, name, version, proto)).encode(), name
            )
            store.insert(version_record(manifest, proto), owner=alice[0], sha256=blob, size=size)
            versions += 1
            methods += len(schema.methods)
            if name in (PRODUCER, NARROW) or rng.random() < 0.9:
                words = rng.sample(WORDS, 4)
                store.publish(
                    name,
                    version,
                    alice[0],
                    f"{' '.join(words)} model",
                    rng.choice(CATEGORIES),
                    rng.sample(TAGS, rng.randint(1, 3)),
                )
                published += 1
    db_mb = sum(p.stat().st_size for p in data.glob("catalog.db*")) / 1e6
    print(
        json.dumps(
            {
                "names": len(names),
                "versions": versions,
                "published": published,
                "methods": methods,
                "seconds": time.perf_counter() - t0,
                "db_mb": db_mb,
                "token": reader_token,
            }
        )
    )
    return 0


# fmt: off
WORDS = [
    "fast", "accurate", "robust", "tiny", "large", "classifier", "detector", "regressor",
    "ranker", "encoder", "decoder", "segmenter", "tagger", "parser", "translator", "summarizer",
    "forecaster", "recommender", "scorer", "embedder", "image", "text", "audio", "video",
    "tabular", "sensor", "medical", "legal", "retail", "finance", "weather", "traffic",
    "sentiment", "toxicity", "spam", "fraud", "churn", "demand", "price", "face", "object",
    "scene", "speech", "intent",
]
CATEGORIES = [
    "vision", "nlp", "audio", "tabular", "timeseries", "recommendation", "ranking", "anomaly",
    "forecasting", "detection", "segmentation", "classification", "regression", "clustering",
    "embedding", "translation", "speech", "ocr", "medical", "finance",
]
TAGS = [f"tag{i:02d}" for i in range(44)] + [
    "fast", "multilingual", "gpu", "cpu", "experimental", "stable",
]
# fmt: on


def _tiny_blob(store: Any) -> tuple[str, int]:
    """One small blob every generated row shares (the search never reads blobs)."""
    import hashlib

    data = b"PK\x05\x06" + b"\0" * 18  # an empty zip
    digest = hashlib.sha256(data).hexdigest()
    path = store.blob_path(digest)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return digest, len(data)


# field name -> the proto types it may come with; a few names recur, most are spread out
_TYPES = ["string", "int32", "int64", "double", "float", "bool", "bytes"]


def _schema(rng: random.Random, name: str, version: str) -> Any:
    from modelwire.codegen.naming import package_name, rpc_name, service_name
    from modelwire.codegen.schema import (
        Field,
        ListType,
        Message,
        Method,
        ModelSchema,
        OptionalType,
        Scalar,
        ScalarType,
    )

    def scalar(t: str) -> Any:
        return ScalarType(Scalar(t))

    def field_type(fname: str) -> Any:
        if fname == "tokens":
            return ListType(scalar("string"))
        if fname == "length":  # int32 (fits), int64 (widening: fits) or string (does not)
            return scalar(rng.choice(["int32", "int64", "int64", "string"]))
        t = scalar(rng.choice(_TYPES))
        return ListType(t) if rng.random() < 0.3 else t

    pool = [f"f{rng.randrange(400):03d}" for _ in range(8)]
    methods, messages = [], []
    for m in range(rng.randint(1, 3)):
        mname = f"{rng.choice(WORDS)}_{m}"
        roll = rng.random()
        if roll < 0.08:  # takes what the producer's `tokenize` answers (or nearly)
            req_names = ["tokens", "length"]
        elif roll < 0.12:  # needs a field the producer lacks
            req_names = ["tokens", "length", pool[0]]
        else:
            req_names = rng.sample(pool, rng.randint(1, 3))
        resp_names = (
            ["tokens", "length"] if rng.random() < 0.05 else rng.sample(pool, rng.randint(1, 3))
        )
        rpc = rpc_name(mname)
        for suffix, fields in (("Request", req_names), ("Response", resp_names)):
            typed = [Field(f, n, field_type(f)) for n, f in enumerate(fields, start=1)]
            if rng.random() < 0.2:  # now and then an optional extra (never alone)
                extra = f"opt{rng.randrange(50):02d}"
                typed.append(Field(extra, len(typed) + 1, OptionalType(field_type(extra))))
            messages.append(Message(f"{rpc}{suffix}", tuple(typed)))
        methods.append(
            Method(mname, rpc, f"{rpc}Request", f"{rpc}Response", tuple(req_names), "message", None)
        )
    return ModelSchema(
        name=name,
        package=package_name(name, version),
        service=service_name(name),
        methods=tuple(methods),
        messages=tuple(messages),
    )


def _producer_schema(version: str) -> Any:
    """The model the type searches refer to: `tokenize` answers (tokens, length: int32);
    `detect` answers a field no other model has; `summarize` takes (tokens, length: int64)."""
    from modelwire.codegen.naming import package_name, service_name
    from modelwire.codegen.schema import (
        Field,
        ListType,
        Message,
        Method,
        ModelSchema,
        Scalar,
        ScalarType,
    )

    s, i32, i64 = ScalarType(Scalar.STRING), ScalarType(Scalar.INT32), ScalarType(Scalar.INT64)
    messages = (
        Message("TokenizeRequest", (Field("text", 1, s),)),
        Message("TokenizeResponse", (Field("tokens", 1, ListType(s)), Field("length", 2, i32))),
        Message("DetectRequest", (Field("text", 1, s),)),
        Message("DetectResponse", (Field("zz_unique", 1, s),)),
        Message("SummarizeRequest", (Field("tokens", 1, ListType(s)), Field("length", 2, i64))),
        Message("SummarizeResponse", (Field("value", 1, s),)),
    )
    methods = tuple(
        Method(n, r, f"{r}Request", f"{r}Response", None, "message", None)
        for n, r in (("tokenize", "Tokenize"), ("detect", "Detect"), ("summarize", "Summarize"))
    )
    return ModelSchema(
        PRODUCER, package_name(PRODUCER, version), service_name(PRODUCER), methods, messages
    )


def _manifest(schema: Any, name: str, version: str, proto: str) -> dict[str, Any]:
    """A manifest shaped like `modelwire dump`'s."""
    import hashlib

    import modelwire

    return {
        "format": 1,
        "name": name,
        "version": version,
        "description": None,
        "tags": [],
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        "modelwire": modelwire.__version__,
        "package": schema.package,
        "service": f"{schema.package}.{schema.service}",
        "methods": [
            {"name": m.name, "rpc": m.rpc, "request": m.request, "response": m.response}
            for m in schema.methods
        ],
        "requirements": ["numpy==2.1.0", "scikit-learn==1.5.2"],
        "schema": schema.to_json(),
        "files": {
            "model.pkl": hashlib.sha256(name.encode()).hexdigest(),
            "model.proto": hashlib.sha256(proto.encode()).hexdigest(),
            "requirements.txt": hashlib.sha256(b"numpy").hexdigest(),
        },
    }


if __name__ == "__main__":
    sys.exit(populate_main(sys.argv[1:]))
