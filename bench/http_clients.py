"""The JSON client of bench/http.py: POSTs of one body from N threads, stdlib only.

    python bench/http_clients.py --url URL --body FILE [--conc 8] [--rows 1]
                                 [--warmup 0.5] [--duration 2]

Each thread keeps one HTTP/1.1 connection (http.client) and opens a new one when the
server closes it, as any client library does (requests.Session, urllib3): the Acumos
runner closes every connection after its answer, modelwire keeps them open. The first
call is checked (200, JSON, `rows` predictions, the first one class 0); then a warm-up
window and a measured one, every thread calling in a loop. Prints one JSON line:
calls/s, latencies, this process's CPU per call, errors, connections opened.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import emit, threaded_windows

HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


class Caller:
    """One thread's connection to the server: reused, re-opened when the server closed it."""

    def __init__(self, host: str, port: int, path: str, body: bytes) -> None:
        self.host, self.port, self.path, self.body = host, port, path, body
        self.conn: http.client.HTTPConnection | None = None
        self.opened = 0

    def __call__(self) -> bytes:
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
            self.opened += 1
        try:
            self.conn.request("POST", self.path, body=self.body, headers=HEADERS)
            resp = self.conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        if resp.will_close:
            self.close()
        if resp.status != 200:
            raise RuntimeError(f"HTTP {resp.status}: {data[:200]!r}")
        return data

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def check(reply: bytes, rows: int) -> None:
    """The reply is JSON with one list of `rows` predictions, the first one class 0."""
    doc = json.loads(reply)
    [values] = [v for v in doc.values() if isinstance(v, list)]
    if len(values) != rows or int(values[0]) != 0:
        raise RuntimeError(f"unexpected reply {reply[:200]!r}")


def run(a: argparse.Namespace) -> dict[str, Any]:
    u = urlparse(a.url)
    host, port, path = u.hostname or "127.0.0.1", u.port or 80, u.path
    body = Path(a.body).read_bytes()
    callers = [Caller(host, port, path, body) for _ in range(a.conc)]
    check(callers[0](), a.rows)
    out = threaded_windows(
        callers, a.warmup, a.duration, (OSError, RuntimeError, http.client.HTTPException)
    )
    out["connections"] = sum(c.opened for c in callers)
    for c in callers:
        c.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--url", required=True, help="http://host:port/model/methods/classify")
    ap.add_argument("--body", required=True, help="file with the JSON request body")
    ap.add_argument("--conc", type=int, default=1, help="threads, one connection each")
    ap.add_argument("--rows", type=int, default=1, help="predictions the reply must hold")
    ap.add_argument("--warmup", type=float, default=0.5)
    ap.add_argument("--duration", type=float, default=2.0)
    emit(run(ap.parse_args()))


if __name__ == "__main__":
    main()
