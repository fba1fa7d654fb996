"""The digits example end to end: dumped by its script, served, called with real images."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits

from modelwire.bundle import load, read_manifest
from modelwire.config import RuntimeConfig
from modelwire.errors import ServiceError
from modelwire.runtime.client import RemoteModel, connect
from modelwire.runtime.server import start
from tests.bundle.procs import REPO, run_python

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def digits_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    bundle = tmp_path_factory.mktemp("digits") / "digits"
    out = run_python(REPO / "examples/digits/model.py", bundle, cwd=bundle.parent)
    assert out == f"wrote {bundle}\n"
    return bundle


@pytest.fixture(scope="module")
def digits_client(digits_bundle: Path) -> Iterator[RemoteModel]:
    with (
        start(load(digits_bundle), RuntimeConfig(port=0, http_port=0)) as server,
        connect(server.address, timeout=30) as client,
    ):
        yield client


def test_the_example_requires_what_it_imports(digits_bundle):
    manifest = read_manifest(digits_bundle)
    assert [r.split("==")[0] for r in manifest.requirements] == ["numpy", "scikit-learn"]
    assert manifest.tags == ("sklearn", "images", "ndarray")
    assert not (digits_bundle / "code").exists()


def test_the_service_takes_and_returns_tensors(digits_client):
    schema = digits_client.schema
    assert [(m.name, m.request, m.response) for m in schema.methods] == [
        ("classify", "ClassifyRequest", "ClassifyResponse")
    ]
    assert [f.name for f in schema.message("ClassifyResponse").fields] == [
        "labels",
        "probabilities",
    ]


def test_held_out_digits_are_classified_with_over_90_percent_accuracy(digits_client):
    digits = load_digits()
    images = digits.images[3::4].astype(np.uint8)  # every fourth image: never trained on
    assert images.shape == (449, 8, 8) and images.max() == 16
    got = digits_client.classify(images)
    assert got.labels.dtype == np.int64 and got.labels.shape == (449,)
    assert got.probabilities.dtype == np.float32 and got.probabilities.shape == (449, 10)
    np.testing.assert_allclose(got.probabilities.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(got.labels, got.probabilities.argmax(axis=1))
    assert (got.labels == digits.target[3::4]).mean() > 0.9


def test_an_empty_batch_gets_empty_arrays(digits_client):
    got = digits_client.classify(np.zeros((0, 8, 8), dtype=np.uint8))
    assert got.labels.shape == (0,) and got.probabilities.shape == (0, 10)


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (np.zeros((2, 64), np.uint8), "images must have shape (N, 8, 8), got (2, 64)"),
        (np.full((1, 8, 8), 255, np.uint8), "pixel values must be 0..16, got 255"),
    ],
    ids=["flat", "too-bright"],
)
def test_bad_images_are_invalid_arguments(digits_client, images, message):
    with pytest.raises(ServiceError) as info:
        digits_client.classify(images)
    assert info.value.status == "INVALID_ARGUMENT"
    assert info.value.details == (
        f"classify: the model rejected the request: ValueError: {message}"
    )
