"""A rule-based photo recommender: the last step of the photo-advisor blueprint.

    python examples/advisor/model.py [OUT_DIR]     # default: examples/build/

writes OUT_DIR/photo-recommender. It trains nothing and imports no vision
library: it merges what the detectors of examples/detectors/ found in one image
(the faces with the image size, the eyes, the smiles, the cat faces) and turns
it into advice, as the recommendation service after the detectors in the Acumos
paper's Figure 6:

    1 face, eyes open, smiling: good portrait
    1 face, eyes open, not smiling: ask for a smile
    3 faces, 3 with eyes open, 2 smiling: ask everyone to smile
    no human face, 1 cat face: an animal portrait; get down to its eye level
    no face found: this looks like a landscape or an animal

Its input types are its own, not imported from the detectors: the broker checks
that what the detectors send has the fields this model reads, by name and type.
"""

from __future__ import annotations

import enum
import sys
from pathlib import Path
from typing import NamedTuple

from modelwire import Model, dump


class Box(NamedTuple):
    x: int
    y: int
    width: int
    height: int


class Detections(NamedTuple):
    boxes: list[Box]
    image_width: int
    image_height: int


class Scene(enum.Enum):
    PORTRAIT = 1  # one human face
    GROUP = 2  # several human faces
    ANIMAL = 3  # no human face, a cat's face
    NO_FACE = 4  # a landscape, an object, an animal seen from the side


class Face(NamedTuple):
    box: Box
    eyes: int  # eyes found in the face's upper half: 2 means both open
    smiling: bool


class Advice(NamedTuple):
    text: str  # "<what was found>: <what to do>"
    scene: Scene
    faces: list[Face]
    cat_faces: list[Box]


SMALL_FACE = 0.1  # a face narrower than this fraction of the image's shorter side is small
NO_FACE = "no face found: this looks like a landscape or an animal"


def _centre_in(part: Box, box: Box, top_half: bool = False) -> bool:
    cx, cy = part.x + part.width / 2, part.y + part.height / 2
    bottom = box.y + (box.height / 2 if top_half else box.height)
    return box.x <= cx < box.x + box.width and box.y <= cy < bottom


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _one_face(face: Face, image_side: int) -> str:
    eyes = {0: "eyes closed or hidden", 1: "one eye closed or hidden"}.get(face.eyes, "eyes open")
    smile = "smiling" if face.smiling else "not smiling"
    if face.eyes < 2:
        verdict = "take it again with both eyes open"
    elif not face.smiling:
        verdict = "ask for a smile"
    else:
        verdict = "good portrait"
    if face.box.width < SMALL_FACE * image_side:
        verdict += "; move closer, the face is small"
    return f"1 face, {eyes}, {smile}: {verdict}"


def _group(faces: list[Face]) -> str:
    n = len(faces)
    open_eyes = sum(f.eyes >= 2 for f in faces)
    smiling = sum(f.smiling for f in faces)
    if open_eyes < n:
        verdict = "take another one when everyone's eyes are open"
    elif smiling < n:
        verdict = "ask everyone to smile"
    else:
        verdict = "good group photo"
    return f"{n} faces, {open_eyes} with eyes open, {smiling} smiling: {verdict}"


def recommend(faces: Detections, eyes: list[Box], smiles: list[Box], cats: list[Box]) -> Advice:
    """Advice on a photo from the faces, eyes, smiles and cat faces found in it."""
    found = [
        Face(
            box,
            eyes=sum(_centre_in(e, box, top_half=True) for e in eyes),
            smiling=any(_centre_in(s, box) for s in smiles),
        )
        for box in faces.boxes
    ]
    if not found and cats:
        text = (
            f"no human face, {_plural(len(cats), 'cat face')}: "
            "an animal portrait; get down to its eye level"
        )
        return Advice(text, Scene.ANIMAL, found, cats)
    if not found:
        return Advice(NO_FACE, Scene.NO_FACE, [], [])
    if len(found) == 1:
        scene = Scene.PORTRAIT
        text = _one_face(found[0], min(faces.image_width, faces.image_height))
    else:
        scene, text = Scene.GROUP, _group(found)
    if cats:
        text += f" (and {_plural(len(cats), 'cat face')})"
    return Advice(text, scene, found, cats)


model = Model(recommend=recommend)

if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parents[1] / "build"
    path = dump(
        model,
        "photo-recommender",
        out / "photo-recommender",
        description="Rule-based photo advice from face, eye, smile and cat-face detections",
        tags=["rules", "images", "photo-advisor"],
    )
    print(f"wrote {path}")
