"""The scenarios of bench/http.py: their names, servers and clients, and the goals.

A scenario's name is '<part>/<server key>[/<client>]': 'a/mw-sync-w2', 'a/acumos-w1',
'b/star-async/c64', 'c/mw-aio', 'd/mw-sync-nohttp/iris-seq'. A server key names the
implementation, its kind and worker count: `mw-sync`, `mw-aio-w2`, `acumos-w1`,
`star-async`, `star-threadpool`, and in (d) `mw-<kind>-http|nohttp` (the HTTP face on a
free port, or off).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

KINDS = ("sync", "aio")
CONC_A = 8  # concurrent clients in (a)
CONC_D = 16  # calls in flight, (d) as bench/runtime.py (a)
H2LOAD_CONNS = (1, 64)
ROWS_C = 10_000
GOAL_A, GOAL_B, GOAL_C, NOISE_D = 2.0, 0.85, 0.5, 0.05
STAR = {"aio": "star-async", "sync": "star-threadpool"}  # the baseline of each server kind


@dataclass(frozen=True)
class Scenario:
    name: str
    part: str
    server: str  # server key
    client: str  # 'json' (bench/http_clients.py), 'h2load', or a bench/clients.py command
    conc: int = 1
    rows: int = 1


def split_key(key: str) -> tuple[str, str, int, str]:
    """'mw-aio-w2' -> ('mw', 'aio', 2, ''); 'mw-sync-nohttp' -> ('mw', 'sync', 1, 'nohttp');
    'acumos-w1' -> ('acumos', '', 1, ''); 'star-async' -> ('star', 'async', 1, '')."""
    m = re.fullmatch(r"([a-z]+)(?:-(sync|aio|async|threadpool))?(?:-w(\d+))?(?:-(no)?http)?", key)
    if not m:
        raise ValueError(key)
    impl, kind, workers, no = m.groups()
    http = "" if not key.endswith("http") else ("nohttp" if no else "http")
    return impl, kind or "", int(workers or 1), http


def mw_key(kind: str, workers: int) -> str:
    return f"mw-{kind}" if workers == 1 else f"mw-{kind}-w{workers}"


def a_names(acumos_workers: Sequence[int], mw_workers: Sequence[int]) -> dict[str, list[str]]:
    return {
        "acumos": [f"a/acumos-w{w}" for w in acumos_workers],
        "mw": [f"a/{mw_key(k, w)}" for w in mw_workers for k in KINDS],
    }


def scenarios(
    parts: set[str], acumos_workers: Sequence[int] = (1, 2), mw_workers: Sequence[int] = (1, 2)
) -> list[Scenario]:
    out: list[Scenario] = []
    if "a" in parts:
        for names in a_names(acumos_workers, mw_workers).values():
            out += [Scenario(n, "a", n.split("/")[1], "json", CONC_A) for n in names]
    if "b" in parts:
        for key in ("mw-sync", "mw-aio", *STAR.values()):
            out += [Scenario(f"b/{key}/c{c}", "b", key, "h2load", c) for c in H2LOAD_CONNS]
    if "c" in parts:
        for key in ("acumos-w1", "mw-sync", "mw-aio"):
            out.append(Scenario(f"c/{key}", "c", key, "json", 1, ROWS_C))
    if "d" in parts:
        for kind in KINDS:
            for face in ("http", "nohttp"):
                key = f"mw-{kind}-{face}"
                out.append(Scenario(f"d/{key}/iris-seq", "d", key, "iris-seq"))
                out.append(Scenario(f"d/{key}/iris-aio", "d", key, "iris-aio", CONC_D))
                out.append(Scenario(f"d/{key}/mw-echo", "d", key, "mw-echo"))
    return out


def label(key: str) -> str:
    """What a server key runs, for the tables."""
    impl, kind, workers, http = split_key(key)
    if impl == "acumos":
        return f"acumos-model-runner, {workers} gunicorn worker{'s' * (workers > 1)}, JSON"
    if impl == "star":
        how = "on the event loop" if kind == "async" else "on Starlette's thread pool"
        return f"hand-written uvicorn + Starlette, model {how}"
    text = f"modelwire serve --server {kind}"
    if workers > 1:
        text += f" --workers {workers}"
    if http:
        text += " --http-port 0" if http == "http" else " --no-http"
    return text
