"""Pick the HTTP face's stack: a raw ASGI app against Starlette, both on uvicorn + httptools.

Both servers answer `POST /predict` the same way the hand-written baseline of
reference/grpc-limits.md §4 does: `json.loads` the body, call a tiny function,
`json.dumps` the reply. h2load (`--h1`) drives each at 1 and 64 connections, the two
stacks alternating within every repetition, and the script prints the median calls/s of
each, the per-repetition ratio raw / Starlette, and the server's CPU time per call (which
a busy neighbour disturbs less than calls/s).

    python bench/http_stack.py [--reps 5] [--duration 2] [--warmup 0.5]
    python bench/http_stack.py server raw|starlette       # one server; prints "PORT <n>"

Needs h2load (Debian's nghttp2-client), uvicorn, httptools and starlette.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
from typing import Any

BODY = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


def work(d: dict[str, float]) -> int:
    if d["petal_length"] < 2.45:
        return 0
    return 1 if d["petal_width"] < 1.75 else 2


def raw_app() -> Any:
    headers = [(b"content-type", b"application/json")]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        reply = json.dumps({"label": work(json.loads(body))}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [*headers, (b"content-length", str(len(reply)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": reply})

    return app


def starlette_app() -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def predict(request: Request) -> JSONResponse:
        return JSONResponse({"label": work(await request.json())})

    return Starlette(routes=[Route("/predict", predict, methods=["POST"])])


def serve(kind: str) -> None:
    import uvicorn

    app = raw_app() if kind == "raw" else starlette_app()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    config = uvicorn.Config(
        app, http="httptools", log_level="warning", access_log=False, lifespan="off"
    )
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    uvicorn.Server(config).run(sockets=[sock])


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def h2load(port: int, conns: int, body: str, duration: float, warmup: float) -> tuple[float, int]:
    argv = ["h2load", "--h1", "-t", "1", "-c", str(conns), "-m", "1"]
    argv += ["-D", f"{int(duration * 1000)}ms", "--warm-up-time", f"{int(warmup * 1000)}ms"]
    argv += ["-H", "content-type: application/json", "-d", body, f"http://127.0.0.1:{port}/predict"]
    out = subprocess.run(
        argv, check=False, capture_output=True, text=True, timeout=duration + warmup + 30
    )
    m = re.search(r"finished in [\d.]+s, ([\d.]+) req/s", out.stdout)
    ok = re.search(r"(\d+) succeeded, (\d+) failed", out.stdout)
    if not m or not ok or int(ok.group(2)):
        raise RuntimeError("h2load: " + out.stdout[-400:] + out.stderr[-400:])
    return float(m.group(1)), int(ok.group(1))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--duration", type=float, default=2.0)
    p.add_argument("--warmup", type=float, default=0.5)
    args = p.parse_args()
    if not shutil.which("h2load"):
        sys.exit("h2load not found (apt-get install nghttp2-client)")
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(BODY, f)
    results: dict[tuple[str, int], list[float]] = {}
    cpu: dict[tuple[str, int], list[float]] = {}
    try:
        for rep in range(args.reps):
            kinds = ["raw", "starlette"] if rep % 2 == 0 else ["starlette", "raw"]
            for kind in kinds:
                proc = subprocess.Popen(
                    [sys.executable, __file__, "server", kind], stdout=subprocess.PIPE, text=True
                )
                try:
                    assert proc.stdout is not None
                    port = int(proc.stdout.readline().split()[1])
                    for conns in (1, 64):
                        cpu0 = cpu_seconds(proc.pid)
                        rate, calls = h2load(port, conns, f.name, args.duration, args.warmup)
                        us = (cpu_seconds(proc.pid) - cpu0) / calls * 1e6
                        results.setdefault((kind, conns), []).append(rate)
                        cpu.setdefault((kind, conns), []).append(us)
                        print(
                            f"rep {rep} {kind:9} c{conns:<2} {rate:8.0f} calls/s "
                            f"{us:6.1f} server CPU us/call",
                            flush=True,
                        )
                finally:
                    proc.terminate()
                    proc.wait(10)
    finally:
        os.unlink(f.name)
    for conns in (1, 64):
        raw, star = results[("raw", conns)], results[("starlette", conns)]
        ratios = [a / b for a, b in zip(raw, star, strict=True)]
        print(
            f"c{conns}: raw {statistics.median(raw):.0f}/s, starlette "
            f"{statistics.median(star):.0f}/s, raw/starlette median "
            f"{statistics.median(ratios):.2f} [{min(ratios):.2f}-{max(ratios):.2f}]; "
            f"server CPU us/call raw {statistics.median(cpu[('raw', conns)]):.1f}, "
            f"starlette {statistics.median(cpu[('starlette', conns)]):.1f}"
        )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "server":
        serve(sys.argv[2])
    else:
        main()
