"""Helpers shared by the benchmark's orchestrator, servers and clients.

Stdlib only, so that every process (including the acumos side, which runs in its
own Python 3.9 venv) can import it cheaply.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

CLK_TCK = os.sysconf("SC_CLK_TCK")
PORT_LINE = "PORT "  # what bench/servers.py prints once it is listening
MW_LISTENING = "modelwire runtime listening on "  # what `modelwire serve` prints


# ---------------------------------------------------------------- statistics


def pct(sorted_vals: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values (nan when empty)."""
    if not sorted_vals:
        return math.nan
    k = min(len(sorted_vals) - 1, max(0, math.ceil(p / 100.0 * len(sorted_vals)) - 1))
    return float(sorted_vals[k])


def lat_summary(lat_ns: list[int], elapsed_s: float, n_warmup: int) -> dict[str, Any]:
    """What each client reports about one measured window (and its warm-up)."""
    s = sorted(lat_ns)
    return {
        "n": len(s),
        "n_total": len(s) + n_warmup,
        "elapsed_s": elapsed_s,
        "calls_per_s": len(s) / elapsed_s if elapsed_s > 0 else math.nan,
        "lat_p50_us": statistics.median(s) / 1e3 if s else math.nan,
        "lat_p99_us": pct(s, 99) / 1e3,
        "lat_mean_us": statistics.fmean(s) / 1e3 if s else math.nan,
        "lat_min_us": s[0] / 1e3 if s else math.nan,
    }


def sync_loop(fn: Callable[[], Any], warmup: float, duration: float) -> dict[str, Any]:
    """Call `fn` in a loop for `warmup` s, then for `duration` s measured: lat_summary
    of the measured calls, with this process's CPU per call."""
    n_warm = 0
    end = time.perf_counter() + warmup
    while time.perf_counter() < end:
        fn()
        n_warm += 1
    lat: list[int] = []
    pc = time.perf_counter_ns
    c0 = time.process_time()
    t0 = time.perf_counter()
    end = t0 + duration
    while time.perf_counter() < end:
        s = pc()
        fn()
        lat.append(pc() - s)
    out = lat_summary(lat, time.perf_counter() - t0, n_warm)
    out["cpu_us_per_call"] = (time.process_time() - c0) / max(1, len(lat)) * 1e6
    return out


def threaded_windows(
    callers: Sequence[Callable[[], Any]],
    warmup: float,
    duration: float,
    failures: tuple[type[BaseException], ...],
) -> dict[str, Any]:
    """One thread per caller, each calling it in a loop: a warm-up window, then the
    measured one, both started together (barriers). A call raising one of `failures` is
    counted, its first error kept, and the thread goes on. Returns lat_summary of the
    measured calls, this process's CPU per call, `errors` and `first_error` (if any)."""
    import threading

    n = len(callers)
    lats: list[list[int]] = [[] for _ in range(n)]
    errors = [0] * n
    n_warm = [0] * n
    first_error: list[str] = []
    warm_end = [0.0]
    window = [0.0, 0.0]  # start, end of the measured window
    cpu0 = [0.0]
    pc = time.perf_counter_ns

    def start_warmup() -> None:
        warm_end[0] = time.perf_counter() + warmup

    def start_window() -> None:
        cpu0[0] = time.process_time()
        window[0] = time.perf_counter()
        window[1] = window[0] + duration

    # barrier actions run once all threads arrive, before any of them goes on
    warm_gate = threading.Barrier(n, action=start_warmup)
    window_gate = threading.Barrier(n, action=start_window)

    def failed(i: int, exc: BaseException) -> None:
        errors[i] += 1
        if not first_error:
            first_error.append(repr(exc))

    def worker(i: int) -> None:
        call, mine = callers[i], lats[i]
        warm_gate.wait()
        while time.perf_counter() < warm_end[0]:
            try:
                call()
            except failures as exc:
                failed(i, exc)
            n_warm[i] += 1
        window_gate.wait()
        while time.perf_counter() < window[1]:
            s = pc()
            try:
                call()
            except failures as exc:
                failed(i, exc)
                continue
            mine.append(pc() - s)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - window[0]
    cpu = time.process_time() - cpu0[0]
    out = lat_summary([x for lst in lats for x in lst], elapsed, sum(n_warm))
    out["cpu_us_per_call"] = cpu / max(1, out["n"]) * 1e6
    out["errors"] = sum(errors)
    if first_error:
        out["first_error"] = first_error[0]
    return out


async def aio_windows(
    callers: Sequence[Callable[[], Awaitable[Any]]], warmup: float, duration: float
) -> tuple[list[int], float, float, int]:
    """A warm-up window, then the measured one, each running one task per caller that
    awaits it in a loop until the window ends. Returns the measured window's latencies
    (ns), its seconds, this process's CPU seconds over it, and the warm-up calls made."""
    import asyncio

    pc = time.perf_counter_ns

    async def window(seconds: float, lat: list[int]) -> float:
        stop = time.perf_counter() + seconds

        async def worker(call: Callable[[], Awaitable[Any]]) -> None:
            while time.perf_counter() < stop:
                s = pc()
                await call()
                lat.append(pc() - s)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(c) for c in callers))
        return time.perf_counter() - t0

    warm: list[int] = []
    await window(warmup, warm)
    lat: list[int] = []
    c0 = time.process_time()
    elapsed = await window(duration, lat)
    return lat, elapsed, time.process_time() - c0, len(warm)


def median(vals: Iterable[float]) -> float:
    v = [x for x in vals if x is not None and not math.isnan(x)]
    return statistics.median(v) if v else math.nan


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def announce_port(port: int) -> None:
    sys.stdout.write(f"{PORT_LINE}{port}\n")
    sys.stdout.flush()


# ---------------------------------------------------------------- /proc accounting


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    return data[data.rindex(")") + 2 :].split()


def proc_cpu_s(pid: int) -> float:
    """user+system CPU seconds of one process (all its threads); 0 once it is gone."""
    f = _stat_fields(pid)
    if f is None:
        return 0.0
    return (int(f[11]) + int(f[12])) / CLK_TCK


def proc_start_time(pid: int) -> int | None:
    """The process's start time in clock ticks: with the PID, it names one process."""
    f = _stat_fields(pid)
    return None if f is None else int(f[19])


def children_of(pid: int) -> list[int]:
    """Direct children of `pid`, from /proc (no procps needed)."""
    kids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            f = _stat_fields(int(d))
            if f is not None and int(f[1]) == pid:
                kids.append(int(d))
    return kids


def descendants_of(pid: int) -> list[int]:
    out: list[int] = []
    todo = [pid]
    while todo:
        for k in children_of(todo.pop()):
            out.append(k)
            todo.append(k)
    return out


def machine_cpu_s() -> float:
    """Machine-wide busy CPU seconds (user+nice+system+irq+softirq)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (v[0] + v[1] + v[2] + v[5] + v[6]) / CLK_TCK


def loadavg() -> float:
    try:
        with open("/proc/loadavg") as f:
            return float(f.read().split()[0])
    except OSError:
        return math.nan
