"""The hand-written baseline of bench/http.py (b): uvicorn + Starlette, the bundle's own
function, json.loads / json.dumps.

    python bench/http_servers.py --bundle DIR --kind async|threadpool

`POST /model/methods/classify` (the path modelwire's face serves too): `json.loads` the
body, build the model's NamedTuple, call the iris bundle's own function
(`modelwire.load(DIR).model.methods["classify"]`), `json.dumps` the predictions.
`async` calls it on the event loop, as `modelwire serve --server aio` does;
`threadpool` hands it to Starlette's thread pool (`run_in_threadpool`), as the sync
server's HTTP face hands calls to its threads. uvicorn runs as modelwire's does:
httptools, uvloop, no access log, no lifespan. Prints "PORT <n>" once listening and
serves until SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import announce_port


def predictor(bundle: str) -> Any:
    """body bytes -> reply bytes, with the bundle's own classify."""
    import modelwire

    loaded = modelwire.load(bundle)
    fn = loaded.model.methods["classify"]
    request_type = loaded.binding.messages[loaded.schema.method("classify").request]

    def predict(body: bytes) -> bytes:
        d = json.loads(body)
        out = fn(
            request_type(d["sepal_length"], d["sepal_width"], d["petal_length"], d["petal_width"])
        )
        return json.dumps({"iris_type": out.iris_type.tolist()}).encode()

    return predict


def app(bundle: str, kind: str) -> Any:
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    predict = predictor(bundle)

    async def on_loop(request: Request) -> Response:
        return Response(predict(await request.body()), media_type="application/json")

    async def on_pool(request: Request) -> Response:
        reply = await run_in_threadpool(predict, await request.body())
        return Response(reply, media_type="application/json")

    endpoint = on_loop if kind == "async" else on_pool
    return Starlette(routes=[Route("/model/methods/classify", endpoint, methods=["POST"])])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--kind", choices=["async", "threadpool"], required=True)
    a = ap.parse_args()
    import uvicorn

    from modelwire.hosting.process import tune_malloc

    tune_malloc()  # as `modelwire serve` does
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    config = uvicorn.Config(
        app(a.bundle, a.kind),
        http="httptools",
        log_level="warning",
        access_log=False,
        lifespan="off",
        server_header=False,
    )
    announce_port(sock.getsockname()[1])
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
