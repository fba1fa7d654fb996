"""Train and dump every example model into examples/build/, where blueprints/ look for them.

    .venv/bin/python examples/build.py                   # every bundle, into examples/build/
    .venv/bin/python examples/build.py face-detector     # only these bundles (and their siblings)
    .venv/bin/python examples/build.py --out DIR         # somewhere else
    .venv/bin/python examples/build.py --list            # the bundles it knows, one a line

Each example is a script that trains its model(s) and dumps one bundle per model
(`python examples/<example>/model.py OUT`, the way a contributor packages a
model). This runs the scripts that make the requested bundles, each in a fresh
interpreter and all at once, then prints one line per bundle: `new`, `updated`
or `unchanged` (bundles are deterministic, so a second run changes nothing).

Why a fresh interpreter per script: the model code then lives in `__main__`,
which cloudpickle stores by value, so a bundle needs neither this folder nor an
`examples` package where it is served; and the examples (each with its own
`Box` class and module-level training) cannot step on each other.

Exit status: 0 when every bundle was written, 1 when a script failed (its
stderr is shown), 2 for an unknown bundle name.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
MANIFEST = "modelwire.json"


@dataclass(frozen=True)
class Example:
    script: str  # relative to examples/
    bundles: tuple[str, ...]
    takes_dir: bool = True  # the script's argument is the output directory, not a bundle path

    def argv(self, out: Path) -> list[str]:
        target = out if self.takes_dir else out / self.bundles[0]
        return [sys.executable, str(HERE / self.script), str(target)]


EXAMPLES = (
    Example(
        "detectors/model.py",
        ("face-detector", "eye-detector", "smile-detector", "cat-face-detector"),
    ),
    Example("advisor/model.py", ("photo-recommender",)),
    Example("iris_chain/model.py", ("iris-scaler", "iris-classifier", "iris-labels")),
    Example("iris/model.py", ("iris",), takes_dir=False),
    Example("iris/batched.py", ("iris-batched",), takes_dir=False),
    Example("digits/model.py", ("digits",), takes_dir=False),
)


def _manifest(path: Path) -> bytes | None:
    try:
        return (path / MANIFEST).read_bytes()
    except OSError:
        return None


def build(out: Path, names: list[str] | None = None) -> list[tuple[str, str]]:
    """Build the examples making `names` (all if None) into `out`; [(bundle, status)].

    Raises:
        KeyError: a name no example makes.
        RuntimeError: a script failed; the message holds its stderr.
    """
    known = {b for e in EXAMPLES for b in e.bundles}
    unknown = sorted(set(names or ()) - known)
    if unknown:
        raise KeyError(", ".join(unknown))
    chosen = [e for e in EXAMPLES if names is None or set(e.bundles) & set(names)]
    before = {b: _manifest(out / b) for e in chosen for b in e.bundles}
    out.mkdir(parents=True, exist_ok=True)
    running = [
        (e, subprocess.Popen(e.argv(out), stdout=subprocess.PIPE, stderr=subprocess.PIPE))
        for e in chosen
    ]
    failed = []
    for example, proc in running:
        _, stderr = proc.communicate()
        if proc.returncode != 0:
            failed.append(
                f"{example.script} exited with status {proc.returncode}:\n"
                + stderr.decode(errors="replace").strip()
            )
    if failed:
        raise RuntimeError("\n".join(failed))
    report = []
    for bundle, old in before.items():
        new = _manifest(out / bundle)
        if new is None:
            raise RuntimeError(f"no bundle was written at {out / bundle}")
        report.append((bundle, "new" if old is None else "unchanged" if old == new else "updated"))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundles", nargs="*", help="bundles to build (default: all)")
    parser.add_argument("--out", type=Path, default=HERE / "build", help="default: %(default)s")
    parser.add_argument("--list", action="store_true", help="print the bundle names and exit")
    args = parser.parse_args(argv)
    if args.list:
        for example in EXAMPLES:
            for bundle in example.bundles:
                print(bundle)
        return 0
    try:
        report = build(args.out, args.bundles or None)
    except KeyError as exc:
        known = ", ".join(b for e in EXAMPLES for b in e.bundles)
        print(f"error: unknown bundle {exc.args[0]}; known: {known}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for bundle, status in report:
        print(f"{status:9} {args.out / bundle}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
