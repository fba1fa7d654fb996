"""The iris model of examples/iris/model.py, batched: concurrent calls share one predict().

    python examples/iris/batched.py build/iris-batched     # train, then dump the bundle
    modelwire serve build/iris-batched --server aio

A RandomForest costs nearly the same for 64 rows as for one (~0.6 ms here, almost all of it
fixed overhead per predict() call), so under load the runtime gathers the calls that
arrive while one batch runs and predicts all their rows at once. The wire contract is the
unbatched model's, message for message: the same clients and stubs call either bundle.
"""

from __future__ import annotations

import sys
from typing import NamedTuple

import numpy as np
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier

import modelwire
from modelwire import Model, dump


class IrisDataSet(NamedTuple):
    sepal_length: list[float]
    sepal_width: list[float]
    petal_length: list[float]
    petal_width: list[float]


class IrisType(NamedTuple):
    iris_type: list[int]


iris = load_iris()
clf = RandomForestClassifier(n_estimators=10, random_state=0)
clf.fit(iris.data, iris.target)


@modelwire.batched(max_batch_size=64)
def classify(requests: list[IrisDataSet]) -> list[IrisType]:
    """Predict the iris species (0 setosa, 1 versicolor, 2 virginica) of each row."""
    # each request may hold several rows: predict them all at once, then split them back
    tables = [np.column_stack(df) for df in requests]  # a ValueError for ragged columns
    counts = [len(t) for t in tables]
    rows = np.concatenate(tables) if tables else np.empty((0, 4))
    labels = clf.predict(rows) if len(rows) else np.empty(0, dtype=np.int64)
    return [IrisType(part) for part in np.split(labels, np.cumsum(counts)[:-1])]


model = Model(classify=classify)

if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else "build/iris-batched"
    path = dump(
        model,
        "iris",
        out,
        description="RandomForest on the Iris data set, batched",
        tags=["sklearn", "tabular", "batched"],
    )
    print(f"wrote {path}")
