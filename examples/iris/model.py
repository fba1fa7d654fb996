"""The paper's Figure 2: a RandomForest on Iris, packaged as a modelwire model.

    python examples/iris/model.py build/iris      # train, then dump the bundle
    modelwire dump examples/iris/model.py:model iris -o build/iris   # the same

Acumos wrote this with `create_namedtuple` and `List[...]`; both still work, but
plain NamedTuple classes read better.
"""

from __future__ import annotations

import sys
from typing import NamedTuple

import numpy as np
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier

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


def classify(df: IrisDataSet) -> IrisType:
    """Predict the iris species (0 setosa, 1 versicolor, 2 virginica) of each row."""
    X = np.column_stack(df)
    # a numpy array, as in the paper: modelwire converts it to the repeated int64 field
    return IrisType(clf.predict(X))


model = Model(classify=classify)

if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else "build/iris"
    path = dump(
        model,
        "iris",
        out,
        description="RandomForest on the Iris data set (Acumos Figure 2)",
        tags=["sklearn", "tabular"],
    )
    print(f"wrote {path}")
