"""blueprints/photo-advisor.yaml on real photos: the detections checked by hand, the
advice, the four detectors running at once, and a bad image named by its step.

Verified by hand (opencv-python-headless 4.14, see examples/detectors/model.py):
astronaut: one face at [177, 67, 93, 93], eyes at [187, 86, 29, 29] and
[232, 89, 28, 28], a smile at [195, 127, 57, 28]; chelsea: no human face, a cat
face at [270, 207, 67, 67]; china and flower: nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from skimage import data
from sklearn.datasets import load_sample_images

import modelwire
from modelwire.errors import ServiceError
from tests.e2e.conftest import start
from tests.e2e.solutions import Solution

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

# each detector step of blueprints/photo-advisor.yaml, and the model it calls
DETECTOR_MODELS = {
    "face_boxes": "faces",
    "eye_boxes": "eyes",
    "smile_boxes": "smiles",
    "cat_boxes": "cats",
}
DETECTOR_STEPS = tuple(DETECTOR_MODELS)


@pytest.fixture(scope="module")
def solution(layout: Path) -> Iterator[Solution]:
    yield from start(layout, "photo-advisor")


@pytest.fixture(scope="module")
def advisor(solution: Solution) -> Iterator[Any]:
    with modelwire.connect(solution.address, timeout=60) as client:
        yield client


def sample_image(name: str) -> NDArray[np.uint8]:
    """china / flower from scikit-learn (427x640 RGB)."""
    images = load_sample_images()
    for filename, image in zip(images.filenames, images.images, strict=True):
        if Path(filename).stem == name:
            return np.asarray(image, dtype=np.uint8)
    raise KeyError(name)


def iou(box: Any, expected: tuple[int, int, int, int]) -> float:
    """Intersection over union of a Box (x, y, width, height) and an [x, y, w, h]."""
    x, y, w, h = expected
    dx = min(box.x + box.width, x + w) - max(box.x, x)
    dy = min(box.y + box.height, y + h) - max(box.y, y)
    inter = max(dx, 0) * max(dy, 0)
    return inter / (box.width * box.height + w * h - inter)


def test_astronaut_is_a_good_portrait(advisor: Any):
    advice = advisor.advise(data.astronaut())
    assert advice.scene.name == "PORTRAIT"
    [face] = advice.faces
    assert iou(face.box, (177, 67, 93, 93)) > 0.7, face.box
    assert face.eyes == 2  # both eyes found, in the face's upper half
    assert face.smiling is True
    assert advice.cat_faces == []
    assert advice.text == "1 face, eyes open, smiling: good portrait"


def test_chelsea_has_a_cat_face_and_no_human_face(advisor: Any):
    advice = advisor.advise(data.chelsea())
    assert advice.faces == []
    assert advice.scene.name == "ANIMAL"
    [cat] = advice.cat_faces
    assert iou(cat, (270, 208, 64, 64)) > 0.7, cat
    assert advice.text == (
        "no human face, 1 cat face: an animal portrait; get down to its eye level"
    )


@pytest.mark.parametrize("name", ["china", "flower"])
def test_sample_photos_without_faces(advisor: Any, name: str):
    advice = advisor.advise(sample_image(name))
    assert advice.faces == []
    assert advice.cat_faces == []
    assert advice.scene.name == "NO_FACE"
    assert advice.text == "no face found: this looks like a landscape or an animal"


def test_detectors_run_in_parallel(solution: Solution, advisor: Any):
    """A step's duration is the broker's wall-clock time from sending its request to getting
    the reply. Run one after another, the four detectors' durations would add up to at most
    the call's own duration (minus the advisor's); run at once, they overlap, and their sum
    exceeds it. Asking for 1.5x (expected: ~2.5-4x) is an inequality about overlap, not a
    speed threshold, so a slow or loaded machine does not make it fail."""
    image = data.astronaut()
    advisor.advise(image)  # warm: every channel connected, every model loaded
    before = solution.scrape()
    calls = 3
    for _ in range(calls):
        advisor.advise(image)
    after = solution.scrape()

    def delta(name: str, **labels: str) -> float:
        key = (name, frozenset({"method": "advise", **labels}.items()))
        return after[key] - before.get(key, 0.0)

    for step in (*DETECTOR_STEPS, "advice"):
        assert delta("modelwire_step_duration_seconds_count", step=step) == calls
    assert delta("modelwire_request_duration_seconds_count", protocol="grpc") == calls
    detectors = [delta("modelwire_step_duration_seconds_sum", step=s) for s in DETECTOR_STEPS]
    advice = delta("modelwire_step_duration_seconds_sum", step="advice")
    call = delta("modelwire_request_duration_seconds_sum", protocol="grpc")
    assert call >= max(detectors) + advice  # the call spans each of its steps
    assert sum(detectors) > 1.5 * (call - advice), (
        f"detector steps {detectors} s do not overlap within calls of {call} s (advice {advice} s)"
    )
    # the image reaches every detector as the request's bytes, never decoded on the way
    for step in DETECTOR_STEPS:
        assert delta("modelwire_edges_total", step=step, mode="forwarded") == calls


def test_a_bad_image_fails_the_call_naming_the_step(advisor: Any):
    with pytest.raises(ServiceError) as caught:
        advisor.advise(np.zeros((4, 4, 5), np.uint8))
    assert caught.value.status == "INVALID_ARGUMENT"
    # the detectors run at once: whichever fails first is named, with its model and address
    details = re.fullmatch(
        r"advise: step '(\w+)' \((\w+)\.detect at 127\.0\.0\.1:\d+\) failed: "
        r"INVALID_ARGUMENT: detect: the model rejected the request: ValueError: image must "
        r"be RGB \(H, W, 3\), RGBA \(H, W, 4\) or grey \(H, W\), got \(4, 4, 5\)",
        caught.value.details,
    )
    assert details is not None, caught.value.details
    assert details.groups() in DETECTOR_MODELS.items()
