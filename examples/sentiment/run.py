"""Case study A of the Acumos paper (Fig. 5), end to end through a local catalog: one command.

    make sentiment                                   # = python examples/sentiment/run.py
    python examples/sentiment/run.py --docker        # the user serves the model's image
    python examples/sentiment/run.py --movie 1000 --test 200 --amazon 600 --sizes 100,200

It fetches and checks the data, starts a catalog (`modelwire catalog serve`) with two
users, has the expert train and push the model (expert.py) and publish it (`modelwire
publish`), has the end user find, pull, serve and score it and then train her own
(user.py), and draws the figure (figure.py). Each step runs as its own command, as the
people in the story would run it; the catalog is stopped at the end. Intermediate
files go to --work (default examples/build/sentiment, git-ignored); the figure and
the table go to --figure and --table.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

from expert import CATEGORY, DESCRIPTION, NAME, TAGS, VERSION
from serving import shown

HERE = Path(__file__).resolve().parent
CATALOG_LISTENING = "modelwire catalog listening on "


class StepFailed(Exception):
    """A step's command failed; its own output already said why."""


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def command(argv: list[str], show: str, echo: bool = True) -> str:
    """Run a command whose stdout we need (printed if `echo`); stderr goes to ours."""
    print(f"$ {show}", flush=True)
    proc = subprocess.run(argv, stdout=subprocess.PIPE, text=True, check=False)
    if echo:
        print(proc.stdout, end="", flush=True)
    if proc.returncode != 0:
        raise StepFailed(f"'{show}' exited with status {proc.returncode}")
    return proc.stdout


def script(name: str, *args: str) -> None:
    """Run examples/sentiment/NAME.py ARGS in a fresh interpreter, its output shown as it comes."""
    print(f"$ python examples/sentiment/{name}.py {shown(args)}", flush=True)
    code = subprocess.run([sys.executable, str(HERE / f"{name}.py"), *args], check=False)
    if code.returncode != 0:
        raise StepFailed(f"{name}.py exited with status {code.returncode}")


def modelwire_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "modelwire", *args]


def add_user(data: Path, name: str) -> str:
    out = command(
        modelwire_argv("catalog", "user", "add", name, "--data", str(data)),
        f"modelwire catalog user add {name} --data {data}",
        echo=False,
    )
    token = out.strip().splitlines()[-1]  # the token is the last line
    print(f"created user {name}; run.py keeps its token ({token[:8]}...) for the next steps")
    return token


def start_catalog(data: Path, log: Path) -> tuple[subprocess.Popen[str], str]:
    # the case study times the paper's steps; validating the pushed model (an image build
    # with an engine, else nothing) is not one of them, and publish would wait for it
    argv = modelwire_argv(
        "catalog", "serve", "--data", str(data), "--port", "0", "--validate", "off"
    )
    print(f"$ modelwire catalog serve --data {data} --port 0 --validate off &", flush=True)
    with log.open("w") as err:
        proc = subprocess.Popen(
            [*argv, "--log-format", "json"], stdout=subprocess.PIPE, stderr=err, text=True
        )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(CATALOG_LISTENING):
            address = line[len(CATALOG_LISTENING) :].strip()
            print(line, end="", flush=True)
            return proc, address
    proc.wait()
    raise StepFailed(f"the catalog exited with {proc.returncode}: see {log}")


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=HERE.parent / "build" / "sentiment")
    parser.add_argument("--figure", type=Path, default=HERE / "fig5.png")
    parser.add_argument("--table", type=Path, default=HERE / "results.md")
    parser.add_argument("--movie", help="the expert trains on N movie sentences (all 10,568)")
    parser.add_argument("--test", default="500", help="her test sentences (%(default)s)")
    parser.add_argument("--amazon", help="use only N Amazon sentences (all 3,610)")
    parser.add_argument(
        "--sizes", help="n she trains her own on, comma-separated ('' for none; user.py's default)"
    )
    parser.add_argument("--runs", default="4", help="draws per n (%(default)s)")
    parser.add_argument("--seed", default="0")
    parser.add_argument("--docker", action="store_true", help="she serves the model's image")
    parser.add_argument("--image", help="the image's NAME:TAG for --docker")
    parser.add_argument("--base", help="the base image for --docker")
    parser.add_argument("--cache", help="the corpora's cache (~/.cache/modelwire/sentiment)")
    args = parser.parse_args(argv)

    begin = time.perf_counter()
    work: Path = args.work.resolve()
    data = work / "catalog"
    shutil.rmtree(data, ignore_errors=True)  # a fresh catalog each run: versions are immutable
    data.mkdir(parents=True)
    cache = ["--cache", args.cache] if args.cache else []
    catalog = None
    try:
        step("1. the data: the VADER paper's corpora from the vaderSentiment 3.3.2 sdist")
        script("corpora", *cache)

        step("2. a catalog with two users: the expert and the end user")
        expert_token = add_user(data, "expert")
        user_token = add_user(data, "shopper")
        catalog, address = start_catalog(data, work / "catalog.log")

        step("3. the expert trains on movie reviews and pushes the model (modelwire.push)")
        movie = ["--movie", args.movie] if args.movie else []
        script(
            "expert",
            "--catalog",
            address,
            "--token",
            expert_token,
            "--seed",
            args.seed,
            "--report",
            str(work / "expert.json"),
            *movie,
            *cache,
        )

        step("4. the expert publishes it, with a description and a category")
        tags = [arg for tag in TAGS for arg in ("--tag", tag)]
        command(
            modelwire_argv(
                "publish",
                f"{NAME}:{VERSION}",
                "--description",
                DESCRIPTION,
                "--category",
                CATEGORY,
                *tags,
                "--catalog",
                address,
                "--token",
                expert_token,
            ),
            f"modelwire publish {NAME}:{VERSION} --description '...' --category {CATEGORY} "
            + " ".join(tags),
        )

        step("5. the end user: the shared model through the catalog, then her own models")
        options = ["--test", args.test, "--runs", args.runs, "--seed", args.seed]
        options += ["--amazon", args.amazon] if args.amazon else []
        options += ["--sizes", args.sizes] if args.sizes is not None else []
        options += ["--docker"] if args.docker else []
        options += ["--image", args.image] if args.image else []
        options += ["--base", args.base] if args.base else []
        script(
            "user",
            "--catalog",
            address,
            "--token",
            user_token,
            "--work",
            str(work / "user"),
            "--out",
            str(work / "results.json"),
            *options,
            *cache,
        )
    except StepFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        if catalog is not None:
            stop(catalog)

    step("6. the figure and the table")
    try:
        script(
            "figure",
            str(work / "results.json"),
            "--expert",
            str(work / "expert.json"),
            "--figure",
            str(args.figure),
            "--table",
            str(args.table),
        )
    except StepFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    minutes = (time.perf_counter() - begin) / 60
    print(
        f"\nthe figure: {args.figure}\nthe table: {args.table}\n(the whole run: {minutes:.1f} min)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
