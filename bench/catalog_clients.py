"""The client processes of bench/catalog.py, and its bare grpcio server.

    python bench/catalog_clients.py copy|copy+fsync|push|pull|search|raw-up|raw-down ...
    python bench/catalog_clients.py dump --size BYTES --dest ZIP   # the big bundle
    python bench/catalog_clients.py raw-server ZIP                 # Up discards, Down sends ZIP

Each client connects first, then times only the operation, and measures over that window
the CPU of the machine, of itself and of the server (--server-pid); it prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

from _common import machine_cpu_s, proc_cpu_s
from catalog_populate import NARROW, PRODUCER

RAW_CHUNK = 1024 * 1024
_RAW_LIMIT = 16 * 1024 * 1024
RAW_OPTIONS = [
    ("grpc.max_receive_message_length", _RAW_LIMIT),
    ("grpc.max_send_message_length", _RAW_LIMIT),
]
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
    ap = argparse.ArgumentParser(prog="catalog_clients.py")
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
    from modelwire.hosting.process import tune_malloc

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

    return grpc.insecure_channel(address, options=RAW_OPTIONS)


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

    from modelwire.hosting.process import tune_malloc

    tune_malloc()
    src = Path(argv[0])

    def up(requests: Any, context: Any) -> bytes:
        return str(sum(len(r) for r in requests)).encode()

    def down(request: bytes, context: Any) -> Any:
        with src.open("rb") as f:
            while chunk := f.read(RAW_CHUNK):
                yield chunk

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=RAW_OPTIONS)
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


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "raw-server":
        sys.exit(raw_server_main(sys.argv[2:]))
    sys.exit(client_main(sys.argv[1:]))
