"""The paper's Figure 5 from our numbers: AUC against training-set size, and its table.

    python examples/sentiment/figure.py RESULTS.json [--expert EXPERT.json]
        [--figure fig5.png] [--table results.md]

RESULTS.json is what user.py wrote; EXPERT.json (optional) what expert.py reported
about its training. The figure shows the user's own models (the mean of the draws
per n, with each draw as a dot), the shared model as a horizontal line, and the
break-even n: where the mean own-training AUC reaches the shared model's,
interpolated linearly in log n between the two sizes around it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from pathlib import Path

__all__ = ["BreakEven", "break_even", "draw", "table"]

PAPER_SHARED_AUC = 0.9376  # Fig. 5: the model shared through Acumos
PAPER_BREAK_EVEN = 10_000  # "fewer than about 10,000 training samples"


class BreakEven:
    """Where training your own catches up: `n` (interpolated) or why there is none."""

    def __init__(self, n: float | None, text: str) -> None:
        self.n = n
        self.text = text


def break_even(shared: float, curve: list[dict]) -> BreakEven:
    """The n at which the mean own-training AUC first reaches `shared`."""
    if not curve:
        return BreakEven(None, "not measured")
    first = curve[0]
    if first["mean"] >= shared:
        return BreakEven(None, f"at most {first['n']:,} (the smallest n tried already reaches it)")
    for below, above in itertools.pairwise(curve):
        if above["mean"] >= shared:
            fraction = (shared - below["mean"]) / (above["mean"] - below["mean"])
            n = math.exp(
                math.log(below["n"]) + fraction * (math.log(above["n"]) - math.log(below["n"]))
            )
            return BreakEven(n, f"about {n:,.0f} (between {below['n']:,} and {above['n']:,})")
    return BreakEven(None, f"not reached with up to {curve[-1]['n']:,} labelled sentences")


def table(results: dict, expert: dict | None = None) -> str:
    """The numbers as a Markdown table, with the paper's beside them."""
    shared = results["shared"]
    even = break_even(shared["auc_service"], results["own"])
    lines = [
        "| | ours | paper (Fig. 5) |",
        "| --- | --- | --- |",
        f"| shared model, AUC on {shared['n_test']:,} Amazon sentences (through the service) "
        f"| **{shared['auc_service']:.4f}** | 0.9376 |",
        f"| the same, in-process (`modelwire.load`) | {shared['auc_in_process']:.4f} | |",
        f"| break-even n (training your own catches up) | {even.text} | about 10,000 |",
    ]
    if expert is not None:
        lines.append(
            f"| the expert's data | {expert['movie_sentences']:,} movie sentences (9:1, C="
            f"{expert['c']:g}, validation AUC {expert['validation_auc']:.4f}) | 50,000 IMDB "
            "reviews (9:1) |"
        )
    lines += ["", "| n labelled Amazon sentences | own model, mean AUC | std | runs |"]
    lines.append("| ---: | ---: | ---: | ---: |")
    for point in results["own"]:
        lines.append(
            f"| {point['n']:,} | {point['mean']:.4f} | {point['std']:.4f} | {len(point['aucs'])} |"
        )
    return "\n".join(lines) + "\n"


def draw(results: dict, path: Path) -> None:
    """Write the figure as a PNG."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullFormatter

    shared = results["shared"]["auc_service"]
    curve = results["own"]
    figure, axes = plt.subplots(figsize=(7.5, 4.8), dpi=120)
    if curve:
        sizes = [p["n"] for p in curve]
        for point in curve:
            axes.scatter(
                [point["n"]] * len(point["aucs"]), point["aucs"], s=9, color="#9ab", zorder=2
            )
        axes.errorbar(
            sizes,
            [p["mean"] for p in curve],
            yerr=[p["std"] for p in curve],
            marker="o",
            color="#1f5fa8",
            capsize=3,
            zorder=3,
            label=f"training her own (mean of {len(curve[0]['aucs'])} draws)",
        )
        axes.set_xscale("log")
        axes.set_xlim(min(sizes) / 1.2, max(sizes) * 1.2)
        axes.set_xticks(sizes)
        axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
        axes.xaxis.set_minor_formatter(NullFormatter())
        axes.tick_params(axis="x", labelsize=8, labelrotation=45)
    axes.axhline(
        shared,
        color="#c0392b",
        linewidth=2,
        label=f"shared through the catalog: {results['shared']['model']} (AUC {shared:.4f})",
    )
    even = break_even(shared, curve)
    if even.n is not None:
        axes.axvline(even.n, color="#555", linestyle="--", linewidth=1)
        axes.annotate(
            f"break-even n ≈ {even.n:,.0f}",
            (even.n, shared),
            xytext=(8, -28),
            textcoords="offset points",
            fontsize=9,
        )
    axes.set_xlabel("labelled Amazon sentences she trains on (n)")
    axes.set_ylabel(f"AUC on {results['shared']['n_test']} held-out Amazon sentences")
    axes.set_title(
        "Case study A (Fig. 5): a shared sentiment model vs training your own", fontsize=11
    )
    axes.grid(True, which="major", alpha=0.3)
    axes.legend(loc="lower right", fontsize=8.5)
    figure.text(
        0.01,
        0.01,
        f"paper: shared AUC {PAPER_SHARED_AUC}, break-even near "
        f"{PAPER_BREAK_EVEN:,} (RCNN, 50k IMDB reviews -> Amazon movie reviews)",
        fontsize=7,
        color="#666",
    )
    figure.tight_layout(rect=(0, 0.03, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, help="what user.py wrote (--out)")
    parser.add_argument("--expert", type=Path, help="what expert.py reported (--report)")
    parser.add_argument("--figure", type=Path, default=Path("fig5.png"))
    parser.add_argument("--table", type=Path, help="also write the table here (Markdown)")
    args = parser.parse_args(argv)
    try:
        results = json.loads(args.results.read_text())
        expert = json.loads(args.expert.read_text()) if args.expert else None
    except (OSError, ValueError) as exc:
        print(f"error: cannot read the results: {exc}", file=sys.stderr)
        return 1
    draw(results, args.figure)
    text = table(results, expert)
    if args.table is not None:
        args.table.write_text(text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
