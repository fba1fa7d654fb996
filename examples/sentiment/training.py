"""Training a linear head on sentence embeddings: the one procedure the expert and the user share.

The paper trains both of its approaches the same way: a 9:1 split into training and
validation data, and the validation score decides when to stop. A logistic regression
has no epochs to stop, so the validation split chooses its regularisation instead:
every C of the grid is fitted on the 90%, the one with the best validation AUC is
kept (as fitted on the 90%, the validation part stays held out as in the paper).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from sentiment_model import LinearHead
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

__all__ = ["C_GRID", "Fit", "auc", "fit_head"]

# the inverse regularisation strengths tried
C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
VALIDATION = 0.1  # the paper's 9:1 split


@dataclass(frozen=True)
class Fit:
    """A trained head and how it was chosen: `validation` maps each C to its validation AUC."""

    head: LinearHead
    c: float
    validation: dict[float, float]
    n_train: int
    n_validation: int

    @property
    def validation_auc(self) -> float:
        return self.validation[self.c]


def auc(labels: NDArray[np.int64], scores: NDArray[np.float64]) -> float:
    """The area under the ROC curve of `scores` for binary `labels`."""
    return float(roc_auc_score(labels, scores))


def fit_head(embeddings: NDArray[np.float32], labels: NDArray[np.int64], *, seed: int) -> Fit:
    """Fit a LogisticRegression head, its C chosen on a stratified 9:1 validation split.

    Raises:
        ValueError: fewer than 10 examples of either class (no stratified split).
    """
    counts = np.bincount(labels, minlength=2)
    if counts.min() < 10:
        raise ValueError(f"need at least 10 positive and 10 negative examples, got {counts}")
    x_train, x_val, y_train, y_val = train_test_split(
        embeddings.astype(np.float64),  # in float64, as the head computes
        labels,
        test_size=VALIDATION,
        stratify=labels,
        random_state=seed,
    )
    best: tuple[float, float, LogisticRegression] | None = None
    validation: dict[float, float] = {}
    for c in C_GRID:
        # one BLAS thread: on these small matrices (n x 384) more threads only wait for
        # each other, 20-30x the CPU time on a loaded 2-core machine (README.md)
        with threadpool_limits(limits=1):
            classifier = LogisticRegression(C=c, max_iter=5000).fit(x_train, y_train)
        validation[c] = auc(y_val, classifier.predict_proba(x_val)[:, 1])
        if best is None or validation[c] > best[0]:  # a tie keeps the stronger regularisation
            best = (validation[c], c, classifier)
    assert best is not None
    _, c, classifier = best
    head = LinearHead(
        coef=np.asarray(classifier.coef_[0], dtype=np.float64),
        intercept=float(classifier.intercept_[0]),
    )
    # the served head computes what scikit-learn's predict_proba does
    expected = classifier.predict_proba(x_val)[:, 1]
    if not np.allclose(head.probabilities(x_val), expected, rtol=0, atol=1e-9):
        raise AssertionError("the linear head disagrees with LogisticRegression.predict_proba")
    return Fit(head, c, validation, len(y_train), len(y_val))
