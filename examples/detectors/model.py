"""Four image detectors built on OpenCV's shipped Haar cascades, one bundle each.

    python examples/detectors/model.py [OUT_DIR]     # default: examples/build/

writes OUT_DIR/face-detector, eye-detector, smile-detector and cat-face-detector.
The photo-advisor blueprint (blueprints/photo-advisor.yaml) runs all four on the
same image at once and feeds their boxes to a rule-based recommender
(examples/advisor/), the Acumos paper's Figure 6.

Every detector has one method, ``detect(image: NDArray[np.uint8]) -> Detections``:
an RGB (H, W, 3), RGBA (H, W, 4) or grey (H, W) image in, boxes in image
coordinates out. Nothing is trained: the cascades are the XML files
opencv-python-headless ships in ``cv2.data.haarcascades`` (4.x; 5.x ships none).

* face-detector: ``haarcascade_frontalface_default``, over the whole image.
* eye-detector: finds the faces the same way, then ``haarcascade_eye`` inside
  each face, keeping eyes in the face's upper half (the whole-image eye cascade
  also fires on nostrils and mouths).
* smile-detector: finds the faces, then ``haarcascade_smile`` in each face's
  lower half with 20 neighbours (run over a whole image it fires everywhere).
* cat-face-detector: ``haarcascade_frontalcatface``, over the whole image.

The eye and smile detectors look for faces themselves instead of taking the face
detector's boxes, so that all four can run in parallel on the same request; the
recommender matches eyes and smiles to faces by position.

Each cascade is loaded once per process: a `HaarCascade` pickles as its file
name and sha256, and loads (and checks) the XML when the bundle is unpickled.
"""

from __future__ import annotations

import hashlib
import sys
import threading
from pathlib import Path
from typing import Any, NamedTuple

import cv2
import numpy as np
from numpy.typing import NDArray

from modelwire import Model, dump


class Box(NamedTuple):
    x: int  # left, in pixels from the image's left edge
    y: int  # top, in pixels from the image's top edge
    width: int
    height: int


class Detections(NamedTuple):
    boxes: list[Box]
    image_width: int
    image_height: int


class HaarCascade:
    """One of OpenCV's shipped Haar cascades, loaded once per process.

    It pickles as the XML's file name and sha256; unpickling (loading the
    bundle) reads the file from ``cv2.data.haarcascades`` again and refuses a
    file whose digest differs, so a bundle never silently runs another cascade.
    A CascadeClassifier must not run two detections at once (it keeps the
    image being scanned in itself), and the runtime serves calls from several
    threads, so detections take a lock.
    """

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.sha256 = hashlib.sha256(self._path().read_bytes()).hexdigest()
        self._load()

    def _path(self) -> Path:
        return Path(cv2.data.haarcascades) / self.filename  # type: ignore[attr-defined]  # cv2's stubs omit cv2.data

    def _load(self) -> None:
        path = self._path()
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != self.sha256:
            raise RuntimeError(
                f"{path} has sha256 {digest}, the model was built with {self.sha256}: "
                "install the opencv-python-headless version in the bundle's requirements.txt"
            )
        self._classifier = cv2.CascadeClassifier(str(path))
        if self._classifier.empty():
            raise RuntimeError(f"OpenCV could not load the cascade {path}")
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        return {"filename": self.filename, "sha256": self.sha256}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._load()

    def detect(
        self, gray: NDArray[np.uint8], scale_factor: float, min_neighbors: int, min_size: int
    ) -> list[Box]:
        with self._lock:
            found = self._classifier.detectMultiScale(
                gray,
                scaleFactor=scale_factor,
                minNeighbors=min_neighbors,
                minSize=(min_size, min_size),
            )
        # plain ints, sorted left to right: the order OpenCV returns is not part of the contract
        return sorted(Box(int(x), int(y), int(w), int(h)) for x, y, w, h in found)


FACES = HaarCascade("haarcascade_frontalface_default.xml")
EYES = HaarCascade("haarcascade_eye.xml")
SMILES = HaarCascade("haarcascade_smile.xml")
CAT_FACES = HaarCascade("haarcascade_frontalcatface.xml")


def _gray(image: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """The image in grey levels, histogram-equalised (the cascades were trained so)."""
    if image.ndim == 3 and image.shape[2] == 3:
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    elif image.ndim == 3 and image.shape[2] == 4:
        gray = cv2.cvtColor(image, cv2.COLOR_RGBA2GRAY)
    elif image.ndim == 2:
        gray = np.ascontiguousarray(image)
    else:
        raise ValueError(
            f"image must be RGB (H, W, 3), RGBA (H, W, 4) or grey (H, W), got {image.shape}"
        )
    if gray.size == 0:
        raise ValueError(f"image is empty: shape {image.shape}")
    return np.asarray(cv2.equalizeHist(gray), dtype=np.uint8)  # (a view; typed for mypy)


def _faces(gray: NDArray[np.uint8]) -> list[Box]:
    return FACES.detect(gray, scale_factor=1.1, min_neighbors=5, min_size=30)


def _in_image(face: Box, part: Box, dy: int = 0) -> Box:
    """A box found in a crop of `face` (starting `dy` rows down), in image coordinates."""
    return Box(face.x + part.x, face.y + dy + part.y, part.width, part.height)


def detect_faces(image: NDArray[np.uint8]) -> Detections:
    """Frontal human faces (OpenCV haarcascade_frontalface_default)."""
    gray = _gray(image)
    return Detections(_faces(gray), gray.shape[1], gray.shape[0])


def detect_eyes(image: NDArray[np.uint8]) -> Detections:
    """Open eyes inside frontal faces (haarcascade_eye within each face's upper half)."""
    gray = _gray(image)
    eyes = []
    for face in _faces(gray):
        crop = gray[face.y : face.y + face.height, face.x : face.x + face.width]
        for eye in EYES.detect(crop, 1.1, 5, max(face.width // 10, 5)):
            if eye.y + eye.height / 2 < face.height / 2:
                eyes.append(_in_image(face, eye))
    return Detections(eyes, gray.shape[1], gray.shape[0])


def detect_smiles(image: NDArray[np.uint8]) -> Detections:
    """Smiles inside frontal faces (haarcascade_smile within each face's lower half)."""
    gray = _gray(image)
    smiles = []
    for face in _faces(gray):
        top = face.height // 2
        crop = gray[face.y + top : face.y + face.height, face.x : face.x + face.width]
        for smile in SMILES.detect(crop, 1.1, 20, max(face.width // 5, 5)):
            smiles.append(_in_image(face, smile, top))
    return Detections(smiles, gray.shape[1], gray.shape[0])


def detect_cat_faces(image: NDArray[np.uint8]) -> Detections:
    """Frontal cat faces (OpenCV haarcascade_frontalcatface)."""
    gray = _gray(image)
    # the cat cascade is weak: it needs the finer scale step and 3 neighbours
    return Detections(CAT_FACES.detect(gray, 1.05, 3, 30), gray.shape[1], gray.shape[0])


DETECTORS = {
    "face-detector": (detect_faces, "frontal human faces"),
    "eye-detector": (detect_eyes, "open eyes inside frontal human faces"),
    "smile-detector": (detect_smiles, "smiles inside frontal human faces"),
    "cat-face-detector": (detect_cat_faces, "frontal cat faces"),
}

if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parents[1] / "build"
    for name, (fn, what) in DETECTORS.items():
        path = dump(
            Model(detect=fn),
            name,
            out / name,
            description=f"OpenCV Haar cascade detector: {what}; RGB image in, boxes out",
            tags=["opencv", "images", "detector", "photo-advisor"],
        )
        print(f"wrote {path}")
