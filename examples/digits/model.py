"""Handwritten digits: a model whose input and output are numpy arrays.

    python examples/digits/model.py build/digits      # train, then dump the bundle
    modelwire serve build/digits --port 50051

The images travel as one `Tensor` message (dtype, shape, raw bytes), not as
nested repeated fields, and reach `classify` as a numpy array again. The forest
is trained on scikit-learn's digits data set except every fourth image
(`digits.images[3::4]`), so a client can measure accuracy on images the model
never saw.
"""

from __future__ import annotations

import sys
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier

from modelwire import Model, dump

HELD_OUT = slice(3, None, 4)  # every fourth image is kept out of training


class Prediction(NamedTuple):
    labels: NDArray[np.int64]  # (N,) the most likely digit of each image
    probabilities: NDArray[np.float32]  # (N, 10) probability of each digit 0..9


digits = load_digits()
train = np.ones(len(digits.target), dtype=bool)
train[HELD_OUT] = False
clf = RandomForestClassifier(n_estimators=100, random_state=0)
clf.fit(digits.data[train], digits.target[train])


def classify(images: NDArray[np.uint8]) -> Prediction:
    """Classify 8x8 grey images (pixel values 0..16), given as an array of shape (N, 8, 8)."""
    if images.ndim != 3 or images.shape[1:] != (8, 8):
        raise ValueError(f"images must have shape (N, 8, 8), got {images.shape}")
    if len(images) == 0:  # scikit-learn refuses empty input; an empty batch is no error
        return Prediction(np.zeros(0, np.int64), np.zeros((0, 10), np.float32))
    if int(images.max()) > 16:
        raise ValueError(f"pixel values must be 0..16, got {int(images.max())}")
    proba = clf.predict_proba(images.reshape(len(images), 64).astype(np.float64))
    labels = clf.classes_[proba.argmax(axis=1)].astype(np.int64)
    return Prediction(labels, proba.astype(np.float32))


model = Model(classify=classify)

if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else "build/digits"
    path = dump(
        model,
        "digits",
        out,
        description="RandomForest on scikit-learn's 8x8 handwritten digits; ndarray in and out",
        tags=["sklearn", "images", "ndarray"],
    )
    print(f"wrote {path}")
