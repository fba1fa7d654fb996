"""Load clients for bench/runtime.py. Each runs a warm-up, then one measured window,
and prints one JSON line (calls/s, latency percentiles).

    python bench/clients.py iris-seq   --target H:P --stubs DIR    sync stub, 1 channel
    python bench/clients.py iris-aio   --target H:P --stubs DIR --conc N [--channels M]
                                   grpc.aio, N in flight over M channels (default 1),
                                   each channel its own TCP connection
                                   (both: --ca FILE connects with TLS, bench/tls.py)
    python bench/clients.py mw-echo    --target H:P     modelwire.connect(...).echo(array)
    python bench/clients.py raw-echo   --target H:P     4 MB bytes, identity serializers
    python bench/clients.py numpy-copy                  numpy.copy of the array, in-process
    python bench/clients.py model-inproc --bundle DIR   the iris classify alone, in-process
    python bench/clients.py codec-inproc --bundle DIR   modelwire decode+classify+encode
    <acumos-venv>/bin/python bench/clients.py acumos-inproc --model DIR   the same, acumos
    python bench/clients.py http-seq   --url URL        acumos runner, 1 thread
    python bench/clients.py http-conc  --url URL --conc N   acumos runner, N threads

Every client calls `modelwire.hosting.process.tune_malloc()` first (the servers do
too), so that 4 MB messages are compared under the same malloc settings.
The iris request is one row of 4 floats (5.1, 3.5, 1.4, 0.2), like Acumos' bench.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import http.client
import sys
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

from _common import aio_windows, emit, lat_summary, sync_loop, threaded_windows

ROW = (5.1, 3.5, 1.4, 0.2)
N_ELEMENTS = 1_000_000
EXPECTED_CLASS = 0  # setosa


def _tune_malloc() -> bool:
    from modelwire.hosting.process import tune_malloc

    return tune_malloc()


# ---------------------------------------------------------------- iris over gRPC stubs


def _stubs(path: str) -> tuple[Any, Any, str]:
    sys.path.insert(0, path)
    import model_pb2  # type: ignore[import-not-found]
    import model_pb2_grpc  # type: ignore[import-not-found]

    (service,) = model_pb2.DESCRIPTOR.services_by_name.values()
    return model_pb2, model_pb2_grpc, service.name


def _iris_request(pb: Any) -> Any:
    return pb.ClassifyRequest(
        sepal_length=[ROW[0]], sepal_width=[ROW[1]], petal_length=[ROW[2]], petal_width=[ROW[3]]
    )


def _channel(grpc_module: Any, a: argparse.Namespace, options: Any = None) -> Any:
    """A channel to --target: TLS trusting --ca when given (bench/tls.py), else plaintext."""
    if not a.ca:
        return grpc_module.insecure_channel(a.target, options=options)
    import grpc

    with open(a.ca, "rb") as f:
        creds = grpc.ssl_channel_credentials(root_certificates=f.read())
    return grpc_module.secure_channel(a.target, creds, options=options)


def iris_seq(a: argparse.Namespace) -> dict[str, Any]:
    import grpc

    pb, pbg, service = _stubs(a.stubs)
    req = _iris_request(pb)
    with _channel(grpc, a) as ch:
        grpc.channel_ready_future(ch).result(timeout=10)
        stub = getattr(pbg, f"{service}Stub")(ch)
        reply = stub.Classify(req)
        assert list(reply.iris_type) == [EXPECTED_CLASS], reply
        return sync_loop(lambda: stub.Classify(req), a.warmup, a.duration)


async def _iris_aio(a: argparse.Namespace) -> dict[str, Any]:
    import grpc

    pb, pbg, service = _stubs(a.stubs)
    req = _iris_request(pb)
    # --channels > 1: each channel gets its own subchannel pool, hence its own TCP
    # connection (channels to one target otherwise share one), so that the kernel's
    # SO_REUSEPORT balancing can spread them over `modelwire serve --workers N`.
    # Caller i uses channel i % channels.
    options = [("grpc.use_local_subchannel_pool", 1)] if a.channels > 1 else None
    channels = [_channel(grpc.aio, a, options) for _ in range(a.channels)]
    try:
        stubs = []
        for ch in channels:
            await asyncio.wait_for(ch.channel_ready(), 10)
            stub = getattr(pbg, f"{service}Stub")(ch)
            reply = await stub.Classify(req)
            assert list(reply.iris_type) == [EXPECTED_CLASS], reply
            stubs.append(stub)
        callers = [functools.partial(stubs[i % len(stubs)].Classify, req) for i in range(a.conc)]
        lat, elapsed, cpu, n_warm = await aio_windows(callers, a.warmup, a.duration)
    finally:
        for ch in channels:
            await ch.close()
    out = lat_summary(lat, elapsed, n_warm)
    out["cpu_us_per_call"] = cpu / max(1, len(lat)) * 1e6
    out["channels"] = a.channels
    return out


def iris_aio(a: argparse.Namespace) -> dict[str, Any]:
    return asyncio.run(_iris_aio(a))


# ---------------------------------------------------------------- the model in-process


def _loaded_iris(bundle: str) -> tuple[Any, Any, Any]:
    import modelwire

    loaded = modelwire.load(bundle)
    fn = loaded.model.methods["classify"]
    request_type = loaded.binding.messages[loaded.schema.method("classify").request]
    return loaded, fn, request_type([ROW[0]], [ROW[1]], [ROW[2]], [ROW[3]])


def model_inproc(a: argparse.Namespace) -> dict[str, Any]:
    """The bundle's classify alone: the floor under every server of (a) and (c)."""
    _, fn, df = _loaded_iris(a.bundle)
    assert list(fn(df).iris_type) == [EXPECTED_CLASS]
    return sync_loop(lambda: fn(df), a.warmup, a.duration)


def codec_inproc(a: argparse.Namespace) -> dict[str, Any]:
    """modelwire's request decode + classify + response encode, without gRPC."""
    from modelwire.codegen.descriptors import file_descriptor, message_classes
    from modelwire.codegen.values import ValueCodec

    loaded, fn, _ = _loaded_iris(a.bundle)
    classes = message_classes(file_descriptor(loaded.schema))
    codec = ValueCodec(loaded.schema, classes, loaded.binding).method("classify")
    pb = classes.get(loaded.schema.method("classify").request)
    body = pb(
        sepal_length=[ROW[0]], sepal_width=[ROW[1]], petal_length=[ROW[2]], petal_width=[ROW[3]]
    ).SerializeToString()

    def call() -> bytes:
        args, kwargs = codec.decode_request(body)
        return codec.encode_response(fn(*args, **kwargs))

    call()
    return sync_loop(call, a.warmup, a.duration)


def acumos_inproc(a: argparse.Namespace) -> dict[str, Any]:
    """What the acumos runner does per request, without HTTP (runs in the acumos venv)."""
    from acumos.wrapped import load_model
    from acumos_env import iris_request_pb

    method = load_model(a.model).classify
    body = iris_request_pb()
    assert _iris_type(method.from_pb_bytes(body).as_pb_bytes()) == [EXPECTED_CLASS]
    return sync_loop(lambda: method.from_pb_bytes(body).as_pb_bytes(), a.warmup, a.duration)


# ---------------------------------------------------------------- 4 MB tensors


def _array() -> Any:
    import numpy as np

    return np.random.default_rng(0).random(N_ELEMENTS, dtype=np.float32)


def mw_echo(a: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    import modelwire

    arr = _array()
    with modelwire.connect(a.target, timeout=60) as model:
        out = model.echo(arr)
        assert isinstance(out, np.ndarray) and np.array_equal(out, arr), "echo mismatch"
        return sync_loop(lambda: model.echo(arr), a.warmup, a.duration)


def raw_echo(a: argparse.Namespace) -> dict[str, Any]:
    import grpc
    import numpy as np
    from servers import ECHO_METHOD, OPTIONS

    arr = _array()
    payload = arr.tobytes()
    with grpc.insecure_channel(a.target, options=OPTIONS) as ch:
        grpc.channel_ready_future(ch).result(timeout=10)
        call = ch.unary_unary(ECHO_METHOD, request_serializer=None, response_deserializer=None)

        def fn() -> Any:
            return np.frombuffer(call(payload, timeout=60), dtype=np.float32)

        assert np.array_equal(fn(), arr), "echo mismatch"
        return sync_loop(fn, a.warmup, a.duration)


def numpy_copy(a: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    arr = _array()
    return sync_loop(lambda: np.copy(arr), a.warmup, a.duration)


# ---------------------------------------------------------------- acumos (HTTP)

PB_MEDIA = "application/vnd.google.protobuf"


def _http_call(host: str, port: int, path: str, body: bytes) -> bytes:
    # acumos-model-runner's gunicorn sync worker closes every connection
    conn = http.client.HTTPConnection(host, port, timeout=60)
    try:
        conn.request(
            "POST", path, body=body, headers={"Content-Type": PB_MEDIA, "Accept": PB_MEDIA}
        )
        resp = conn.getresponse()
        data = resp.read()
    finally:
        conn.close()
    if resp.status != 200:
        raise RuntimeError(f"HTTP {resp.status}: {data[:200]!r}")
    return data


def _iris_type(data: bytes) -> list[int]:
    """IrisType{repeated int64 value = 1}, packed or not (small values only)."""
    vals, i = [], 0
    while i < len(data):
        key = data[i]
        i += 1
        if key == 0x0A:  # field 1, packed
            ln = data[i]
            i += 1
            vals += list(data[i : i + ln])
            i += ln
        elif key == 0x08:
            vals.append(data[i])
            i += 1
        else:
            raise ValueError(f"unexpected reply {data!r}")
    return vals


def http_run(a: argparse.Namespace, threads: int) -> dict[str, Any]:
    from acumos_env import iris_request_pb

    u = urlparse(a.url)
    host, port, path = u.hostname or "127.0.0.1", u.port or 80, u.path
    body = iris_request_pb()
    assert _iris_type(_http_call(host, port, path, body)) == [EXPECTED_CLASS]
    call = functools.partial(_http_call, host, port, path, body)
    return threaded_windows(
        [call] * threads,
        a.warmup,
        a.duration,
        (OSError, RuntimeError, http.client.HTTPException),
    )


# ---------------------------------------------------------------- main

CLIENTS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "iris-seq": iris_seq,
    "iris-aio": iris_aio,
    "mw-echo": mw_echo,
    "raw-echo": raw_echo,
    "numpy-copy": numpy_copy,
    "model-inproc": model_inproc,
    "codec-inproc": codec_inproc,
    "acumos-inproc": acumos_inproc,
    "http-seq": lambda a: http_run(a, 1),
    "http-conc": lambda a: http_run(a, a.conc),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("client", choices=sorted(CLIENTS))
    ap.add_argument("--target", help="host:port of a gRPC server")
    ap.add_argument("--stubs", help="directory of model_pb2.py / model_pb2_grpc.py")
    ap.add_argument("--url", help="acumos: http://host:port/model/methods/classify")
    ap.add_argument("--bundle", help="model-inproc, codec-inproc: the iris bundle")
    ap.add_argument("--model", help="acumos-inproc: the dumped acumos model directory")
    ap.add_argument("--ca", help="iris-seq, iris-aio: connect with TLS, trusting this PEM CA")
    ap.add_argument("--conc", type=int, default=16)
    ap.add_argument("--channels", type=int, default=1, help="iris-aio: channels (connections)")
    ap.add_argument("--warmup", type=float, default=0.5)
    ap.add_argument("--duration", type=float, default=2.0)
    a = ap.parse_args()
    # the acumos venv has no modelwire (and its messages are tiny)
    tuned = _tune_malloc() if a.client != "acumos-inproc" else False
    res = CLIENTS[a.client](a)
    res["malloc_tuned"] = tuned
    emit(res)


if __name__ == "__main__":
    main()
