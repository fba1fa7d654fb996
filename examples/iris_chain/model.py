"""Iris in three models, chained by blueprints/iris-chain.yaml: scale, classify, name.

    python examples/iris_chain/model.py [OUT_DIR]     # default: examples/build/

writes three bundles to OUT_DIR:

* iris-scaler: a StandardScaler fitted on the Iris measurements; the four
  measurement columns in, a standardised (N, 4) float64 array out.
* iris-classifier: a LogisticRegression trained on those standardised
  features; the (N, 4) array in, the class index (0, 1, 2) of each row out.
* iris-labels: class index -> species name ('setosa', 'versicolor', 'virginica').

Each model takes exactly what the one before it returns (same field names and
types), so the broker forwards the bytes between them without decoding them.
Both estimators are fitted on all 150 rows of scikit-learn's bundled data set.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from modelwire import Model, dump


class Measurements(NamedTuple):
    sepal_length: list[float]
    sepal_width: list[float]
    petal_length: list[float]
    petal_width: list[float]


class Scaled(NamedTuple):
    features: NDArray[np.float64]  # (N, 4), each column standardised


class Prediction(NamedTuple):
    iris_type: list[int]  # 0 setosa, 1 versicolor, 2 virginica


class Species(NamedTuple):
    species: list[str]


iris = load_iris()
scaler = StandardScaler().fit(iris.data)
clf = LogisticRegression(max_iter=1000).fit(scaler.transform(iris.data), iris.target)
SPECIES = tuple(str(name) for name in iris.target_names)


def scale(x: Measurements) -> Scaled:
    """Standardise the four measurements (cm) of each flower, as the classifier was trained."""
    columns = [np.asarray(c, dtype=np.float64) for c in x]
    if len({len(c) for c in columns}) != 1:
        raise ValueError(f"the four measurements differ in length: {[len(c) for c in columns]}")
    if len(columns[0]) == 0:
        return Scaled(np.zeros((0, 4)))
    return Scaled(scaler.transform(np.column_stack(columns)))


def classify(features: NDArray[np.float64]) -> Prediction:
    """The iris species index of each row of standardised features, shape (N, 4)."""
    if features.ndim != 2 or features.shape[1] != 4:
        raise ValueError(f"features must have shape (N, 4), got {features.shape}")
    if len(features) == 0:
        return Prediction([])
    return Prediction(clf.predict(features))


def lookup(iris_type: list[int]) -> Species:
    """The species name of each class index."""
    bad = [i for i in iris_type if not 0 <= i < len(SPECIES)]
    if bad:
        raise ValueError(f"class index out of range 0..{len(SPECIES) - 1}: {bad[:5]}")
    return Species([SPECIES[i] for i in iris_type])


MODELS = {
    "iris-scaler": (Model(scale=scale), "StandardScaler for the Iris measurements"),
    "iris-classifier": (
        Model(classify=classify),
        "LogisticRegression on standardised Iris features; returns class indices",
    ),
    "iris-labels": (Model(lookup=lookup), "Iris class index -> species name"),
}

if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parents[1] / "build"
    for name, (model, description) in MODELS.items():
        path = dump(
            model, name, out / name, description=description, tags=["sklearn", "iris-chain"]
        )
        print(f"wrote {path}")
