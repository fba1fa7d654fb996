"""The tables and verdicts of bench/catalog.py: (a) transfers against a copy on disk,
(b) search latency per query kind."""

from __future__ import annotations

import statistics
from typing import Any

from _common import median, pct
from _summary import Summary
from _tables import fmt, fmt_range, table
from catalog_clients import SEARCHES

GOAL_A = 0.3  # push and pull MB/s >= this x copyfile MB/s
GOAL_B_MS = 50.0  # search p50

TRANSFERS = {
    "copy": "shutil.copyfile of the zip (no fsync)",
    "copy+fsync": "shutil.copyfile, then fsync (reference only)",
    "push": "CatalogClient.push(zip) to a fresh catalog",
    "pull": "CatalogClient.pull(ref, dest.zip)",
    "raw-up": "bare grpcio stream of the zip, 1 MiB messages, discarded",
    "raw-down": "bare grpcio stream of the zip from a server, discarded",
}


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
