"""The scenarios of bench/runtime.py: their names, the servers they run, what the tables
call them, and the goals.

A scenario's name is '<server key>/<client>', e.g. 'mw-sync/seq', 'hw-aio/c16',
'mw-aio-w2/c8-8ch', 'acumos-w1/seq', 'numpy/copy'; the server key names the
implementation, the server kind and the worker count (see `split_key`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

KINDS = ("sync", "aio")
CONC_A = 16  # in flight, scenario (a)
CONC_C = 8  # client threads / in flight, scenario (c)
GOAL_A, GOAL_B, GOAL_C = 0.9, 1.3, 2.0


@dataclass(frozen=True)
class Scenario:
    name: str  # e.g. "mw-sync/seq"
    server: str | None  # server key (e.g. 'mw-sync', 'acumos-w2'), None for in-process
    client: str  # clients.py sub-command
    conc: int = 1
    venv: str | None = None  # "acumos": run the client with the acumos venv's Python
    channels: int = 1  # iris-aio: gRPC channels (TCP connections) the calls are spread over


def split_key(key: str) -> tuple[str, str, int]:
    """'mw-sync-w2' -> ('mw', 'sync', 2); 'acumos-w1' -> ('acumos', '', 1); 'hw-aio' -> w1."""
    m = re.fullmatch(r"(.*?)-w(\d+)", key)
    base, workers = (m.group(1), int(m.group(2))) if m else (key, 1)
    impl, _, kind = base.partition("-")
    return impl, kind, workers


def mw_key(kind: str, workers: int) -> str:
    return f"mw-{kind}" if workers == 1 else f"mw-{kind}-w{workers}"


def c_names(
    acumos_workers: Sequence[int], mw_workers: Sequence[int]
) -> dict[str, dict[str, list[str]]]:
    """Part (c)'s scenario names: {'seq'|'c8': {'acumos'|'mw': [names]}}.

    modelwire with 1 worker keeps part (a)'s names and one channel. With N > 1
    workers: the sync server at seq (one channel, so one worker: for completeness),
    and both server kinds at c8 with one channel per caller, so that the kernel can
    spread the connections over the workers.
    """
    cc = f"c{CONC_C}"
    out: dict[str, dict[str, list[str]]] = {c: {"acumos": [], "mw": []} for c in ("seq", cc)}
    for w in acumos_workers:
        for c in ("seq", cc):
            out[c]["acumos"].append(f"acumos-w{w}/{c}")
    for w in mw_workers:
        if w == 1:
            out["seq"]["mw"] += [f"mw-{k}/seq" for k in KINDS]
            out[cc]["mw"] += [f"mw-{k}/{cc}" for k in KINDS]
        else:
            out["seq"]["mw"].append(f"{mw_key('sync', w)}/seq")
            out[cc]["mw"] += [f"{mw_key(k, w)}/{cc}-{CONC_C}ch" for k in KINDS]
    return out


def scenarios(
    parts: set[str], acumos_workers: Sequence[int] = (1,), mw_workers: Sequence[int] = (1,)
) -> list[Scenario]:
    out: dict[str, Scenario] = {}

    def add(s: Scenario) -> None:
        out.setdefault(s.name, s)

    if parts & {"a", "c"}:
        add(Scenario("model/inproc", None, "model-inproc"))
        add(Scenario("mwcodec/inproc", None, "codec-inproc"))
    if "a" in parts:
        for kind in KINDS:
            for impl in ("mw", "hw"):
                add(Scenario(f"{impl}-{kind}/seq", f"{impl}-{kind}", "iris-seq"))
                add(Scenario(f"{impl}-{kind}/c{CONC_A}", f"{impl}-{kind}", "iris-aio", CONC_A))
    if "b" in parts:
        for kind in KINDS:
            add(Scenario(f"mwecho-{kind}/echo", f"mwecho-{kind}", "mw-echo"))
            add(Scenario(f"raw-{kind}/echo", f"raw-{kind}", "raw-echo"))
        add(Scenario("numpy/copy", None, "numpy-copy"))
    if "c" in parts:
        add(Scenario("acumos-model/inproc", None, "acumos-inproc", venv="acumos"))
        for c, sides in c_names(acumos_workers, mw_workers).items():
            for name in sides["acumos"] + sides["mw"]:
                key, _, variant = name.partition("/")
                if key.startswith("acumos"):
                    if c == "seq":
                        add(Scenario(name, key, "http-seq"))
                    else:
                        add(Scenario(name, key, "http-conc", CONC_C))
                elif c == "seq":
                    add(Scenario(name, key, "iris-seq"))
                else:
                    ch = CONC_C if variant.endswith("ch") else 1
                    add(Scenario(name, key, "iris-aio", CONC_C, channels=ch))
    return list(out.values())


LABELS = {
    "mw-sync": "modelwire serve --server sync",
    "mw-aio": "modelwire serve --server aio",
    "hw-sync": "hand-written grpc.server",
    "hw-aio": "hand-written grpc.aio",
    "mwecho-sync": "modelwire Tensor echo, sync server",
    "mwecho-aio": "modelwire Tensor echo, aio server",
    "raw-sync": "raw grpcio echo, sync server",
    "raw-aio": "raw grpcio echo, aio server",
    "numpy": "numpy.copy, in-process",
    "acumos": "acumos-model-runner",
    "model": "classify(IrisDataSet) alone, in-process",
    "mwcodec": "modelwire decode + classify + encode, in-process",
    "acumos-model": "acumos from_pb_bytes + classify + as_pb_bytes, in-process (py3.9)",
}


def label(name: str) -> str:
    """What a scenario's server is, from its name (e.g. 'mw-aio-w2/c8-8ch')."""
    key, _, variant = name.partition("/")
    if key in LABELS:
        base = LABELS[key]
        return f"{base} (1 gunicorn worker)" if key == "acumos" else base
    impl, kind, workers = split_key(key)
    base = LABELS.get(f"{impl}-{kind}" if kind else impl, key)
    if impl == "acumos":
        extra = f"{workers} gunicorn worker{'s' if workers > 1 else ''}"
        return f"{base} ({extra})"
    extra = f" --workers {workers}" if workers > 1 else ""
    if variant.endswith("ch"):
        extra += f"; {variant.rpartition('-')[2].removesuffix('ch')} channels"
    return base + extra
