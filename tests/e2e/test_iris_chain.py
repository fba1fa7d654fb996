"""blueprints/iris-chain.yaml: scaler -> classifier -> label lookup, on the real Iris data."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_iris

import modelwire
from tests.e2e.conftest import start
from tests.e2e.solutions import Solution

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

STEPS = ("scaled", "predicted", "species")


@pytest.fixture(scope="module")
def solution(layout: Path) -> Iterator[Solution]:
    yield from start(layout, "iris-chain")


@pytest.fixture(scope="module")
def chain(solution: Solution) -> Iterator[Any]:
    with modelwire.connect(solution.address, timeout=30) as client:
        yield client


def test_species_of_the_whole_data_set(chain: Any):
    iris = load_iris()
    species = chain.classify(*iris.data.T.tolist()).species
    expected = iris.target_names[iris.target]
    assert len(species) == 150
    assert set(species) == set(expected)
    assert np.mean(np.array(species) == expected) >= 0.9


def test_one_flower_of_each_species(chain: Any):
    reply = chain.classify(
        sepal_length=[5.1, 6.2, 7.7],
        sepal_width=[3.5, 2.9, 3.0],
        petal_length=[1.4, 4.3, 6.1],
        petal_width=[0.2, 1.3, 2.3],
    )
    assert reply.species == ["setosa", "versicolor", "virginica"]


def test_every_step_ran_once_per_call_and_forwarded_bytes(solution: Solution, chain: Any):
    before = solution.scrape()
    chain.classify([5.1], [3.5], [1.4], [0.2])
    after = solution.scrape()

    def delta(name: str, **labels: str) -> float:
        key = (name, frozenset({"method": "classify", **labels}.items()))
        return after[key] - before.get(key, 0.0)

    for step in STEPS:
        assert delta("modelwire_step_requests_total", step=step, code="OK") == 1
        # each model takes exactly what the one before returns: no transcoding on the way
        assert delta("modelwire_edges_total", step=step, mode="forwarded") == 1


def test_an_empty_batch_gives_no_species(chain: Any):
    assert chain.classify([], [], [], []).species == []
