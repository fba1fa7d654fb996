"""modelwire catalog benchmark: a big bundle through the catalog against a copy on disk,
and search in a catalog of 10,000 models.

    .venv/bin/python bench/catalog.py [--reps 5] [--size-mb 200] [--models 10000] [--json FILE]
    .venv/bin/python bench/catalog.py --only a --reps 3      # only the transfers
    .venv/bin/python bench/catalog.py --from-json FILE       # print an earlier run's tables

(a) a bundle zip of --size-mb (a model holding that many MB of random, incompressible
    weights) pushed to and pulled from `modelwire catalog serve` on loopback
    (`CatalogClient.push(zip)`, `CatalogClient.pull(ref, dest.zip)`: the CLI's code
    without its progress bar), against `shutil.copyfile` of the same zip on the same
    file system. A push ends with the bundle checked, fsynced and visible; the copy
    is not fsynced (`copy+fsync` is shown for reference), and the same bytes through a
    bare grpcio stream (`raw-up`, `raw-down`: the transport's ceiling). MB/s, and
    push/copy and pull/copy paired per repetition. Goal: push and pull each >= 0.3x
    the copy.
(b) a catalog of --models models (1 or 2 versions each; 90% published) inserted
    through the Store API (`Store.insert` of records built by the service's own
    `version_record` from generated schemas and proto text; see bench/README.md),
    searched through the gRPC service by a client process: a listing, text (broad
    and narrow), category, tag, category+tag, --accepts (broad and narrow) and
    --produces. Latency per query kind, p50 and p99. Goal: p50 < 50 ms for each kind.

Every server and every client is its own process; each scenario starts its server
afresh. Each repetition runs every scenario once, in a freshly shuffled order; ratios
are formed between scenarios of the same repetition and their median is reported.
Clients time only the operation itself and measure, over that window, the CPU of the
machine, of themselves and of the server, so 'other load' is what the rest of the
machine used meanwhile.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import random
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, NamedTuple

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from _common import (  # noqa: E402
    PORT_LINE,
    Proc,
    ProcessGroup,
    loadavg,
    machine_cpu_s,
    median,
    pct,
    proc_cpu_s,
    run_client,
)

PY = sys.executable
ME = str(Path(__file__).resolve())
LISTENING = "modelwire catalog listening on "
GOAL_A = 0.3  # push and pull MB/s >= this x copyfile MB/s
GOAL_B_MS = 50.0  # search p50
NOISY_CORES = 0.25
TOKEN_LINE = "token "
PRODUCER = "tokenizer"  # the model the type searches refer to
NARROW = "model-004217"  # the model the narrow text search finds (always published)

TRANSFERS = {
    "copy": "shutil.copyfile of the zip (no fsync)",
    "copy+fsync": "shutil.copyfile, then fsync (reference only)",
    "push": "CatalogClient.push(zip) to a fresh catalog",
    "pull": "CatalogClient.pull(ref, dest.zip)",
    "raw-up": "bare grpcio stream of the zip, 1 MiB messages, discarded",
    "raw-down": "bare grpcio stream of the zip from a server, discarded",
}
RAW_CHUNK = 1024 * 1024
SEARCHES = {
    "list": {},
    "text-broad": {"text": "classifier"},
    "text-narrow": {"text": NARROW},
    "category": {"category": "vision"},
    "tag": {"tags": ["fast"]},
    "category+tag": {"category": "nlp", "tags": ["multilingual"]},
    "accepts": {"accepts": f"{PRODUCER}.tokenize"},
    "accepts-narrow": {"accepts": f"{PRODUCER}.detect"},
    "produces": {"produces": f"{PRODUCER}.summarize"},
}


# ---------------------------------------------------------------- clients (own processes)


def _cpu_self() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


class Window:
    """CPU of the machine, this process and the server over a measured window."""

    def __init__(self, server_pid: int | None) -> None:
        self.server_pid = server_pid

    def __enter__(self) -> Window:
        self.m0, self.c0 = machine_cpu_s(), _cpu_self()
        self.s0 = proc_cpu_s(self.server_pid) if self.server_pid else 0.0
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.t0
        self.client_cpu = _cpu_self() - self.c0
        self.server_cpu = (proc_cpu_s(self.server_pid) - self.s0) if self.server_pid else 0.0
        busy = machine_cpu_s() - self.m0
        self.other_cores = max(0.0, busy - self.client_cpu - self.server_cpu) / self.seconds

    def result(self) -> dict[str, float]:
        return {
            "seconds": self.seconds,
            "window_client_cpu_s": self.client_cpu,
            "window_server_cpu_s": self.server_cpu,
            "other_cores": self.other_cores,
        }


def client_main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="catalog.py client")
    ap.add_argument(
        "kind",
        choices=["copy", "copy+fsync", "push", "pull", "search", "dump", "raw-up", "raw-down"],
    )
    ap.add_argument("--src", type=Path)
    ap.add_argument("--dest", type=Path)
    ap.add_argument("--address")
    ap.add_argument("--token")
    ap.add_argument("--ref")
    ap.add_argument("--server-pid", type=int)
    ap.add_argument("--size", type=int)
    ap.add_argument("--queries", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    if a.kind == "dump":
        return _dump_weights(a.size, a.dest)
    from modelwire.services import tune_malloc

    tune_malloc()  # as `modelwire push` and `modelwire pull` do (and the copy, for fairness)
    if a.kind in ("copy", "copy+fsync"):
        size = a.src.stat().st_size
        with Window(None) as w:
            shutil.copyfile(a.src, a.dest)
            if a.kind == "copy+fsync":
                with open(a.dest, "rb+") as f:
                    os.fsync(f.fileno())
        a.dest.unlink()
        print(json.dumps({**w.result(), "bytes": size, "mb_s": size / 1e6 / w.seconds}))
        return 0

    if a.kind in ("raw-up", "raw-down"):
        print(json.dumps(_raw_client(a)))
        return 0
    from modelwire.catalog.client import CatalogClient
    from modelwire.config import CatalogSettings

    with CatalogClient(CatalogSettings(a.address, a.token)) as client:
        client.search(limit=1)  # connect first: the window measures the transfer alone
        if a.kind == "push":
            size = a.src.stat().st_size
            with Window(a.server_pid) as w:
                _, created = client.push(a.src)
            if not created:
                raise SystemExit("the push stored nothing: the catalog was not fresh")
            out = {**w.result(), "bytes": size, "mb_s": size / 1e6 / w.seconds}
        elif a.kind == "pull":
            with Window(a.server_pid) as w:
                client.pull(a.ref, a.dest)
            size = a.dest.stat().st_size
            a.dest.unlink()
            out = {**w.result(), "bytes": size, "mb_s": size / 1e6 / w.seconds}
        else:
            out = _searches(client, a)
    print(json.dumps(out))
    return 0


def _raw_channel(address: str) -> Any:
    import grpc

    limit = 16 * 1024 * 1024
    options = [("grpc.max_receive_message_length", limit), ("grpc.max_send_message_length", limit)]
    return grpc.insecure_channel(address, options=options)


def _raw_client(a: argparse.Namespace) -> dict[str, Any]:
    """The transport's ceiling: the zip's bytes through grpcio with no framing, no hashing,
    no file written (the upload reads the zip; the download is discarded)."""
    with _raw_channel(a.address) as channel:
        channel.unary_unary("/bench.Raw/Ping")(b"", timeout=30)  # connect first
        if a.kind == "raw-up":
            size = a.src.stat().st_size

            def chunks() -> Any:
                with a.src.open("rb") as f:
                    while chunk := f.read(RAW_CHUNK):
                        yield chunk

            with Window(a.server_pid) as w:
                got = int(channel.stream_unary("/bench.Raw/Up")(chunks(), timeout=300))
        else:
            down = channel.unary_stream("/bench.Raw/Down")
            with Window(a.server_pid) as w:
                got = sum(len(c) for c in down(b"", timeout=300))
            size = got
    if got != size:
        raise SystemExit(f"raw transfer moved {got} of {size} bytes")
    return {**w.result(), "bytes": size, "mb_s": size / 1e6 / w.seconds}


def raw_server_main(argv: list[str]) -> int:
    """A bare grpcio server: Up discards a stream, Down streams a file (own process)."""
    from concurrent import futures

    import grpc
    from _common import announce_port

    from modelwire.services import tune_malloc

    tune_malloc()
    src = Path(argv[0])

    def up(requests: Any, context: Any) -> bytes:
        return str(sum(len(r) for r in requests)).encode()

    def down(request: bytes, context: Any) -> Any:
        with src.open("rb") as f:
            while chunk := f.read(RAW_CHUNK):
                yield chunk

    limit = 16 * 1024 * 1024
    options = [("grpc.max_receive_message_length", limit), ("grpc.max_send_message_length", limit)]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=options)
    handlers = {
        "Ping": grpc.unary_unary_rpc_method_handler(lambda r, c: b""),
        "Up": grpc.stream_unary_rpc_method_handler(up),
        "Down": grpc.unary_stream_rpc_method_handler(down),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("bench.Raw", handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    announce_port(port)
    server.wait_for_termination()
    return 0


def _searches(client: Any, a: argparse.Namespace) -> dict[str, Any]:
    """Every query kind, interleaved in a shuffled order; latencies in ms."""
    rng = random.Random(a.seed)
    plan = [k for k in SEARCHES for _ in range(a.warmup)]
    rng.shuffle(plan)
    for kind in plan:
        client.search(**SEARCHES[kind])
    plan = [k for k in SEARCHES for _ in range(a.queries)]
    rng.shuffle(plan)
    lat: dict[str, list[float]] = {k: [] for k in SEARCHES}
    found: dict[str, int] = {}
    with Window(a.server_pid) as w:
        for kind in plan:
            t0 = time.perf_counter()
            models = client.search(**SEARCHES[kind])
            lat[kind].append((time.perf_counter() - t0) * 1e3)
            found[kind] = len(models)
    return {**w.result(), "lat_ms": lat, "found": found}


def _dump_weights(size: int, dest: Path) -> int:
    """A model holding `size` random bytes, dumped as a zip (run as its own process)."""
    from modelwire import Model, dump

    weights = os.urandom(size)

    def weigh(offset: int) -> Weighed:
        """The number of weight bytes and the one at `offset`."""
        return Weighed(len(weights), weights[offset % len(weights)])

    dump(Model(weigh=weigh), "weights", dest)
    return 0


class Weighed(NamedTuple):
    """What the big model's one method answers."""

    total: int
    first: int


# ---------------------------------------------------------------- preparation


@dataclass
class Prepared:
    work: Path
    bundle: Path | None = None  # the big zip
    pull_data: Path | None = None  # a catalog holding it
    search_data: Path | None = None  # the 10,000 models
    token: str = ""
    notes: list[str] | None = None


def _run(argv: list[str], what: str, log: Path) -> str:
    with open(log, "ab") as lf:
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=lf, check=False, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {proc.returncode}); see {log}")
    return proc.stdout.decode()


def add_user(data: Path, name: str, log: Path) -> str:
    out = _run(
        [PY, "-m", "modelwire", "catalog", "user", "add", name, "--data", str(data)],
        f"catalog user add {name}",
        log,
    )
    return out.splitlines()[-1]


def start_catalog(group: ProcessGroup, data: Path, label: str) -> tuple[Proc, str]:
    p = group.spawn(
        [PY, "-m", "modelwire", "catalog", "serve", "--data", str(data), "--port", "0"],
        label,
    )
    return p, group.wait_line(p, LISTENING, 60)


def prepare(parts: set[str], args: argparse.Namespace, work: Path, group: ProcessGroup) -> Prepared:
    prep = Prepared(work, notes=[])
    log = work / "prepare.log"
    if "a" in parts:
        cached = args.scratch / f"weights-{args.size_mb}mb.zip"
        if not cached.is_file():
            print(f"  dumping a {args.size_mb} MB bundle (cached in {cached}) ...", flush=True)
            tmp = cached.with_suffix(".tmp.zip")
            _run(
                [
                    PY,
                    ME,
                    "client",
                    "dump",
                    "--size",
                    str(args.size_mb * 1_000_000),
                    "--dest",
                    str(tmp),
                ],
                "dumping the big bundle",
                log,
            )
            tmp.rename(cached)
        prep.bundle = work / "weights.zip"
        shutil.copyfile(cached, prep.bundle)
        print("  pushing it once, for the pull scenarios ...", flush=True)
        prep.pull_data = work / "pull-catalog"
        prep.token = add_user(prep.pull_data, "bench", log)
        server, address = start_catalog(group, prep.pull_data, "catalog-prepare")
        try:
            run_client(
                group,
                [
                    PY,
                    ME,
                    "client",
                    "push",
                    "--src",
                    str(prep.bundle),
                    "--address",
                    address,
                    "--token",
                    prep.token,
                    "--server-pid",
                    str(server.pid),
                ],
                "prepare-push",
                300,
            )
        finally:
            group.stop(server)
    if "b" in parts:
        prep.search_data = work / "search-catalog"
        print(f"  inserting {args.models:,} models through the Store API ...", flush=True)
        out = _run(
            [PY, ME, "populate", str(prep.search_data), str(args.models), str(args.seed)],
            "populating the search catalog",
            log,
        )
        info = json.loads(out.splitlines()[-1])
        prep.notes.append(  # type: ignore[union-attr]
            f"search catalog: {info['names']:,} models, {info['versions']:,} versions "
            f"({info['published']:,} published), {info['methods']:,} methods; inserted through "
            f"Store.insert in {info['seconds']:.1f} s; database {info['db_mb']:.1f} MB"
        )
        prep.token = prep.token or ""
        (work / "search-token").write_text(info["token"])
    return prep


# ---------------------------------------------------------------- the search catalog


def populate_main(argv: list[str]) -> int:
    """Fill a catalog with generated models (run as its own process)."""
    data, count, seed = Path(argv[0]), int(argv[1]), int(argv[2])
    t0 = time.perf_counter()
    from modelwire.bundle import Manifest
    from modelwire.catalog.service import version_record
    from modelwire.catalog.store import Store
    from modelwire.codegen.proto import render_proto

    store = Store(data)
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
    from modelwire.codegen.schema import (
        Field,
        ListType,
        Message,
        Method,
        ModelSchema,
        OptionalType,
        Scalar,
        ScalarType,
        package_name,
        rpc_name,
        service_name,
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
    from modelwire.codegen.schema import (
        Field,
        ListType,
        Message,
        Method,
        ModelSchema,
        Scalar,
        ScalarType,
        package_name,
        service_name,
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


# ---------------------------------------------------------------- running


@dataclass(frozen=True)
class Scenario:
    name: str
    part: str


def scenarios(parts: set[str]) -> list[Scenario]:
    out = []
    if "a" in parts:
        out += [Scenario(n, "a") for n in TRANSFERS]
    if "b" in parts:
        out.append(Scenario("search", "b"))
    return out


def run_scenario(
    sc: Scenario, rep: int, prep: Prepared, group: ProcessGroup, args: argparse.Namespace
) -> dict[str, Any]:
    log = prep.work / "prepare.log"
    server: Proc | None = None
    fresh: Path | None = None
    os.sync()  # no writeback left from the scenario before competes with this one's writes
    try:
        argv = [PY, ME, "client", sc.name]
        if sc.name in ("copy", "copy+fsync"):
            argv += ["--src", str(prep.bundle), "--dest", str(prep.work / "copy.zip")]
        elif sc.name == "push":
            fresh = prep.work / f"push-catalog-{rep}"
            token = add_user(fresh, "bench", log)
            server, address = start_catalog(group, fresh, f"catalog-push-{rep}")
            argv += ["--src", str(prep.bundle), "--address", address, "--token", token]
        elif sc.name in ("raw-up", "raw-down"):
            server = group.spawn([PY, ME, "raw-server", str(prep.bundle)], f"raw-{rep}")
            address = f"127.0.0.1:{group.wait_line(server, PORT_LINE, 60)}"
            argv += ["--src", str(prep.bundle), "--address", address]
        elif sc.name == "pull":
            assert prep.pull_data is not None
            server, address = start_catalog(group, prep.pull_data, f"catalog-pull-{rep}")
            argv += ["--ref", "weights", "--dest", str(prep.work / "pulled.zip")]
            argv += ["--address", address, "--token", prep.token]
        else:
            assert prep.search_data is not None
            server, address = start_catalog(group, prep.search_data, f"catalog-search-{rep}")
            token = (prep.work / "search-token").read_text()
            argv += ["--address", address, "--token", token, "--seed", str(args.seed + rep)]
            argv += ["--queries", str(args.queries)]
        if server is not None:
            argv += ["--server-pid", str(server.pid)]
        res, _ = run_client(group, argv, f"client-{sc.name}-{rep}", 600)
    finally:
        if server is not None:
            group.stop(server)
        if fresh is not None:
            shutil.rmtree(fresh, ignore_errors=True)
    res.update(rep=rep, scenario=sc.name, part=sc.part)
    return res


# ---------------------------------------------------------------- summary


class Summary:
    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = [r for r in rows if "error" not in r]
        self.errors = [r for r in rows if "error" in r]
        self.by: dict[str, dict[int, dict[str, Any]]] = {}
        for r in self.rows:
            self.by.setdefault(r["scenario"], {})[r["rep"]] = r

    def has(self, name: str) -> bool:
        return name in self.by

    def values(self, name: str, metric: str) -> list[float]:
        return [r.get(metric, math.nan) for r in self.by.get(name, {}).values()]

    def med(self, name: str, metric: str) -> float:
        return median(self.values(name, metric))

    def paired(self, num: str, den: str, metric: str) -> list[float]:
        out = []
        for rep, d in self.by.get(den, {}).items():
            n = self.by.get(num, {}).get(rep, {}).get(metric)
            if n is not None and d.get(metric):
                out.append(n / d[metric])
        return out


def fmt_range(vals: list[float], spec: str = ",.0f", suffix: str = "") -> str:
    vals = [v for v in vals if v is not None and not math.isnan(v)]
    if not vals:
        return "n/a"
    m = statistics.median(vals)
    if len(vals) == 1:
        return f"{m:{spec}}{suffix}"
    return f"{m:{spec}}{suffix} [{min(vals):{spec}}-{max(vals):{spec}}]"


def fmt(v: float, spec: str = ",.0f") -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:{spec}}"


def table(headers: list[str], rows: list[list[str]], align: str) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if a == "l" else c.rjust(w)
            for c, w, a in zip(cells, widths, align, strict=True)
        ).rstrip()

    return "\n".join([line(headers), "  ".join("-" * w for w in widths), *map(line, rows)])


def report(s: Summary, parts: set[str], size_mb: int) -> list[str]:
    """Print the tables; return the verdict lines."""
    verdicts: list[str] = []
    if "a" in parts:
        print(
            f"\n(a) a {size_mb} MB bundle zip (incompressible weights) on loopback vs on disk; "
            "MB = 10^6 bytes; median [min-max] over repetitions"
        )
        rows = []
        for n, what in TRANSFERS.items():
            if not s.has(n):
                rows.append([n, what, "failed or not run", "", "", "", ""])
                continue
            rows.append(
                [
                    n,
                    what,
                    fmt_range(s.values(n, "mb_s")),
                    fmt(s.med(n, "seconds"), ".3f"),
                    fmt(s.med(n, "window_client_cpu_s"), ".2f"),
                    fmt(s.med(n, "window_server_cpu_s"), ".2f")
                    if not n.startswith("copy")
                    else "-",
                    fmt(s.med(n, "other_cores"), ".2f"),
                ]
            )
        print(
            table(
                ["scenario", "what", "MB/s", "s", "client CPU s", "server CPU s", "other load"],
                rows,
                "llrrrrr",
            )
        )
        print("\n  ratios of MB/s, paired per repetition (median [min-max]):")
        rows = []
        status = {}
        for n in ("push", "pull"):
            vals = s.paired(n, "copy", "mb_s")
            ok = bool(vals) and round(statistics.median(vals), 2) >= GOAL_A
            status[n] = (vals, ok)
            rows.append(
                [
                    f"{n} / copy",
                    fmt_range(vals, ".2f", "x"),
                    "yes" if ok else "no" if vals else "n/a",
                ]
            )
        for n, raw in (("push", "raw-up"), ("pull", "raw-down")):
            vals = s.paired(n, "copy+fsync", "mb_s")
            rows.append([f"{n} / copy+fsync", fmt_range(vals, ".2f", "x"), ""])
            rows.append([f"{n} / {raw}", fmt_range(s.paired(n, raw, "mb_s"), ".2f", "x"), ""])
            rows.append([f"{raw} / copy", fmt_range(s.paired(raw, "copy", "mb_s"), ".2f", "x"), ""])
        print(table(["ratio", "value", f">= {GOAL_A}x"], rows, "lll"))
        for n in ("push", "pull"):
            vals, ok = status[n]
            verdicts.append(
                f"Goal (a) {n} >= {GOAL_A}x shutil.copyfile MB/s: "
                + (
                    f"{'MET' if ok else 'NOT MET'} ({statistics.median(vals):.2f}x; "
                    f"{s.med(n, 'mb_s'):,.0f} vs {s.med('copy', 'mb_s'):,.0f} MB/s)"
                    if vals
                    else "NOT MEASURED"
                )
            )
    if "b" in parts:
        print(
            "\n(b) search through the gRPC service (CatalogClient.search, limit 100), "
            "as a user who owns nothing; latency per query, ms; median [min-max] over "
            "repetitions of each repetition's p50"
        )
        runs = list(s.by.get("search", {}).values())
        rows = []
        worst: tuple[float, str] | None = None
        for kind, query in SEARCHES.items():
            p50s = [statistics.median(r["lat_ms"][kind]) for r in runs if r["lat_ms"].get(kind)]
            p99s = [pct(sorted(r["lat_ms"][kind]), 99) for r in runs if r["lat_ms"].get(kind)]
            found = {r["found"].get(kind) for r in runs}
            if p50s:
                m = statistics.median(p50s)
                worst = max(worst, (m, kind)) if worst else (m, kind)
            rows.append(
                [
                    kind,
                    " ".join(f"--{k} {v}" if k != "text" else repr(v) for k, v in query.items())
                    or "(nothing)",
                    "/".join(str(f) for f in sorted(x for x in found if x is not None)),
                    fmt_range(p50s, ".1f"),
                    fmt(median(p99s), ".1f"),
                    "yes" if p50s and statistics.median(p50s) < GOAL_B_MS else "no",
                ]
            )
        print(
            table(
                ["query", "criteria", "found", "p50 ms", "p99 ms", f"< {GOAL_B_MS:g} ms"],
                rows,
                "llrrrl",
            )
        )
        if runs:
            n = _queries(runs)
            server_ms = 1e3 * s.med("search", "window_server_cpu_s") / n
            client_ms = 1e3 * s.med("search", "window_client_cpu_s") / n
            print(
                f"  CPU per query: server {server_ms:.1f} ms, client {client_ms:.1f} ms; "
                f"other load {s.med('search', 'other_cores'):.2f}"
            )
        verdicts.append(
            f"Goal (b) search p50 < {GOAL_B_MS:g} ms for every query kind: "
            + (
                f"{'MET' if worst[0] < GOAL_B_MS else 'NOT MET'} (slowest: {worst[1]} "
                f"{worst[0]:.1f} ms)"
                if worst
                else "NOT MEASURED"
            )
        )
    return verdicts


def _queries(runs: list[dict[str, Any]]) -> int:
    return sum(len(v) for v in runs[0]["lat_ms"].values())


# ---------------------------------------------------------------- main


def versions() -> str:
    out = [f"Python {sys.version.split()[0]}"]
    for dist in ("grpcio", "protobuf"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out.append(f"{dist} {metadata.version(dist)}")
    import sqlite3

    out.append(f"SQLite {sqlite3.sqlite_version}")
    return ", ".join(out)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--reps", type=int, default=5, help="repetitions (default 5)")
    ap.add_argument("--size-mb", type=int, default=200, help="(a) bundle size, MB (default 200)")
    ap.add_argument("--models", type=int, default=10_000, help="(b) models (default 10000)")
    ap.add_argument("--queries", type=int, default=30, help="(b) queries per kind and rep")
    ap.add_argument("--only", default="a,b", help="parts to run: any of a,b")
    ap.add_argument("--json", type=Path, default=None, help="write the raw rows here")
    ap.add_argument("--seed", type=int, default=None, help="seed of the orders and the data")
    ap.add_argument(
        "--scratch",
        type=Path,
        default=Path("/tmp/modelwire-bench"),
        help="where the big bundle is cached and each run's work dir is made (default %(default)s)",
    )
    ap.add_argument("--keep", action="store_true", help="keep the work dir (catalogs, logs)")
    ap.add_argument("--from-json", type=Path, default=None, metavar="FILE")
    args = ap.parse_args(argv)
    parts = {p.strip() for p in args.only.split(",") if p.strip()}
    if not parts or parts - {"a", "b"}:
        ap.error("--only takes a comma-separated subset of a,b")
    args.parts = parts
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1 << 30)
    if args.reps < 1 or args.size_mb < 1 or args.models < 1:
        ap.error("--reps, --size-mb and --models must be >= 1")
    return args


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.from_json is not None:
        data = json.loads(args.from_json.read_text())
        header = f"re-rendered from {args.from_json}: {data['header']}"
        print_results(
            data["rows"],
            set(data["config"]["parts"]),
            header,
            data["notes"],
            data["config"]["size_mb"],
        )
        return 0
    parts: set[str] = args.parts
    args.scratch.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    work = Path(tempfile.mkdtemp(prefix=f"catalog-{stamp}-", dir=args.scratch))
    logdir = work / "logs"
    logdir.mkdir()
    group = ProcessGroup(logdir)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _raise_interrupt)
    rows: list[dict[str, Any]] = []
    interrupted = failed = False
    load0 = loadavg()
    t_start = time.monotonic()
    plan = scenarios(parts)
    notes: list[str] = []
    print(
        f"modelwire catalog benchmark: parts {','.join(sorted(parts))}, {args.reps} reps, "
        f"seed {args.seed}"
    )
    print(f"work dir {work}")
    try:
        prep = prepare(parts, args, work, group)
        notes = prep.notes or []
        rng = random.Random(args.seed)
        for rep in range(args.reps):
            order = plan[:]
            rng.shuffle(order)
            print(f"  rep {rep + 1}/{args.reps}: ", end="", flush=True)
            for sc in order:
                try:
                    row = run_scenario(sc, rep, prep, group, args)
                    print(".", end="", flush=True)
                except KeyboardInterrupt:
                    raise
                except Exception as exc:
                    failed = True
                    row = {"rep": rep, "scenario": sc.name, "part": sc.part, "error": str(exc)}
                    print("E", end="", flush=True)
                    print(f"\n    {sc.name} failed: {exc}", file=sys.stderr)
                rows.append(row)
            print(flush=True)
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted: stopping every process started ...", file=sys.stderr)
    except Exception as exc:
        failed = True
        traceback.print_exc()
        print(f"\nbenchmark failed: {exc}", file=sys.stderr)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        group.stop_all()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    header = (
        f"{versions()}; {os.cpu_count()} CPUs; load average {load0:.2f} before, "
        f"{loadavg():.2f} after; {time.monotonic() - t_start:.0f} s"
    )
    verdicts, ok = print_results(rows, parts, header, notes, args.size_mb, interrupted)
    failed = failed or not ok
    if args.json:
        config = {
            k: (str(v) if isinstance(v, Path) else sorted(v) if isinstance(v, set) else v)
            for k, v in vars(args).items()
        }
        args.json.write_text(
            json.dumps(
                {
                    "config": config,
                    "header": header,
                    "notes": notes,
                    "verdicts": verdicts,
                    "rows": rows,
                },
                indent=1,
            )
        )
        print(f"raw rows written to {args.json}")
    if failed or interrupted or args.keep:
        print(f"logs kept in {logdir}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 130 if interrupted else 1 if failed else 0


def print_results(
    rows: list[dict[str, Any]],
    parts: set[str],
    header: str,
    notes: list[str],
    size_mb: int,
    interrupted: bool = False,
) -> tuple[list[str], bool]:
    summary = Summary(rows)
    print(f"\n=== results{' (INTERRUPTED, partial)' if interrupted else ''} ===")
    print(header)
    for note in notes:
        print(note)
    print(
        "Servers: `modelwire catalog serve` (16 threads), a new process per scenario. Clients "
        "time the operation alone (connected first); CPU figures are over that window. "
        f"'other load' = CPU cores used by processes outside the benchmark meanwhile (> "
        f"{NOISY_CORES}: noisy)."
    )
    verdicts: list[str] = []
    ok = True
    try:
        verdicts = report(summary, parts, size_mb) if summary.rows else []
    except Exception:  # keep the raw rows even if the report has a bug
        traceback.print_exc()
        ok = False
    noisy = median(r["other_cores"] for r in summary.rows) if summary.rows else math.nan
    print()
    for v in verdicts:
        print(v)
    if not math.isnan(noisy) and noisy > NOISY_CORES:
        print(
            f"WARNING: median other load {noisy:.2f} cores: the machine was shared; "
            "absolute numbers are low and ratios noisy."
        )
    if summary.errors:
        print(
            f"{len(summary.errors)} scenario runs failed (first: "
            f"{summary.errors[0]['scenario']}: {summary.errors[0]['error'][:300]})"
        )
    return verdicts, ok


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "client":
        sys.exit(client_main(sys.argv[2:]))
    if len(sys.argv) > 1 and sys.argv[1] == "populate":
        sys.exit(populate_main(sys.argv[2:]))
    if len(sys.argv) > 1 and sys.argv[1] == "raw-server":
        sys.exit(raw_server_main(sys.argv[2:]))
    sys.exit(main())
