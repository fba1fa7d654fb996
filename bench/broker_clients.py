"""Load client of bench/broker.py: a sequence of hops, each one raw gRPC call.

    python bench/broker_clients.py --targets H:P[,H:P...] --payload chain|fanin|tensor
                                   [--conc N] [--warmup S] [--duration S] [--expect V]

One "call" is one pass over the targets: the request bytes go to the first
target, and each reply goes, as it is, to the next one (the models of a direct
sequence are wire-identical, like the broker's forwarded edges). With one target
(the broker) a call is a single RPC. Each target must serve one method; the
client finds it, and the codec that encodes the request once before the loop,
with `modelwire.connect()` (reflection), then calls with identity serializers.

--conc 1: a sync channel per target, one call after another. --conc N > 1: grpc.aio,
one channel per target, N callers each running whole sequences. Latency is that of
the whole sequence. Prints one JSON line (calls/s, p50/p99, client CPU per call).

Payloads: chain/fanin: value=1 (an int64 field); tensor: x = 1M float32 (4 MB),
scale = 0.5. The final reply is decoded once and checked (--expect for the ints).
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from _common import aio_windows, emit, lat_summary, sync_loop

N_ELEMENTS = 1_000_000
MAX_MESSAGE = 256 * 1024 * 1024
OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE),
    ("grpc.max_receive_message_length", MAX_MESSAGE),
]


def _array() -> Any:
    import numpy as np

    return np.random.default_rng(0).random(N_ELEMENTS, dtype=np.float32)


def _method(target: str) -> tuple[str, Any]:
    """(rpc path, MethodCodec) of the one method `target` serves."""
    import modelwire

    with modelwire.connect(target, timeout=30, max_message_mb=MAX_MESSAGE >> 20) as model:
        (method,) = model.schema.methods
        s = model.schema
        service = f"{s.package}.{s.service}" if s.package else s.service
        return f"/{service}/{method.rpc}", model.codec.method(method.name)


def _request(payload: str, codec: Any) -> bytes:
    if payload == "tensor":
        return bytes(codec.encode_request((_array(), 0.5), {}))
    return bytes(codec.encode_request((1,), {}))


def _check(payload: str, codec: Any, reply: bytes, expect: int | None) -> str:
    value = codec.decode_response(reply)
    if payload == "tensor":
        import numpy as np

        assert np.array_equal(value.x, _array()), "tensor mismatch"
        assert value.scale == 0.5, value
        return f"x: {value.x.dtype}{list(value.x.shape)} unchanged, scale {value.scale}"
    value = getattr(value, "value", value)  # a solution returns {value}, a model the int
    if expect is not None:
        assert value == expect, f"got {value!r}, expected {expect}"
    return f"value {value}"


def run_sync(a: argparse.Namespace, paths: list[str], request: bytes) -> tuple[dict, bytes]:
    import grpc

    chans = [grpc.insecure_channel(t, options=OPTIONS) for t in a.targets]
    try:
        calls = [ch.unary_unary(p) for ch, p in zip(chans, paths, strict=True)]
        timeout = a.timeout

        def one() -> bytes:
            data = request
            for call in calls:
                data = call(data, timeout=timeout)
            return data

        last = one()
        out = sync_loop(one, a.warmup, a.duration)
        out["n_total"] += 1  # the first call, before the warm-up
        return out, last
    finally:
        for ch in chans:
            ch.close()


async def _run_aio(a: argparse.Namespace, paths: list[str], request: bytes) -> tuple[dict, bytes]:
    import grpc

    chans = [grpc.aio.insecure_channel(t, options=OPTIONS) for t in a.targets]
    try:
        calls = [ch.unary_unary(p) for ch, p in zip(chans, paths, strict=True)]
        timeout = a.timeout

        async def one() -> bytes:
            data = request
            for call in calls:
                data = await call(data, timeout=timeout)
            return data

        last = await one()
        lat, elapsed, cpu, n_warm = await aio_windows([one] * a.conc, a.warmup, a.duration)
    finally:
        for ch in chans:
            await ch.close()
    out = lat_summary(lat, elapsed, n_warm + 1)
    out["cpu_us_per_call"] = cpu / max(1, len(lat)) * 1e6
    return out, last


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--targets", required=True, type=lambda s: s.split(","))
    ap.add_argument("--payload", required=True, choices=["chain", "fanin", "tensor"])
    ap.add_argument("--conc", type=int, default=1)
    ap.add_argument("--warmup", type=float, default=0.5)
    ap.add_argument("--duration", type=float, default=2.0)
    ap.add_argument("--timeout", type=float, default=60.0, help="deadline per RPC, s")
    ap.add_argument("--expect", type=int, default=None, help="chain/fanin: the final value")
    a = ap.parse_args()
    from modelwire.hosting.process import tune_malloc

    tuned = tune_malloc()
    methods = [_method(t) for t in a.targets]
    paths = [p for p, _ in methods]
    request = _request(a.payload, methods[0][1])
    if a.conc == 1:
        res, last = run_sync(a, paths, request)
    else:
        res, last = asyncio.run(_run_aio(a, paths, request))
    res["checked"] = _check(a.payload, methods[-1][1], last, a.expect)
    res["request_bytes"] = len(request)
    res["reply_bytes"] = len(last)
    res["malloc_tuned"] = tuned
    res["conc"] = a.conc
    emit(res)


if __name__ == "__main__":
    main()
