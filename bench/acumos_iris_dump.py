"""Dump the Acumos paper's Iris model with the acumos client (runs in the Python 3.9 venv).

The same model as examples/iris/model.py and shared/reference/acumos-bench/iris_dump.py:
a RandomForest (n_estimators=10, random_state=0) on the Iris data set, one method
`classify(IrisDataSet) -> IrisType`.

    <acumos-venv>/bin/python bench/acumos_iris_dump.py OUTDIR   # writes OUTDIR/iris_model
"""

import sys
from typing import List  # noqa: UP035 -- acumos 1.0.1 (Python 3.9) wants typing.List

import numpy as np
from acumos.modeling import Model, create_namedtuple
from acumos.session import AcumosSession
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier

outdir = sys.argv[1]

iris = load_iris()
clf = RandomForestClassifier(n_estimators=10, random_state=0)
clf.fit(iris.data, iris.target)

IrisDataSet = create_namedtuple(
    "IrisDataSet",
    [
        ("sepal_length", List[float]),  # noqa: UP006
        ("sepal_width", List[float]),  # noqa: UP006
        ("petal_length", List[float]),  # noqa: UP006
        ("petal_width", List[float]),  # noqa: UP006
    ],
)
IrisType = create_namedtuple("IrisType", [("value", List[int])])  # noqa: UP006


def classify(df: IrisDataSet) -> IrisType:
    """Predict the iris species of each row."""
    X = np.column_stack(df)
    return IrisType(clf.predict(X).tolist())


AcumosSession().dump(Model(classify=classify), "iris_model", outdir, replace=False)
print("dumped to", outdir)
