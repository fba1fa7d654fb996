"""`modelwire.load(path)` gives back the model: its methods take and return Python values."""

from __future__ import annotations

import pytest

import modelwire
from modelwire.runtime.client import connect
from tests.fixtures.models import acumos_namedtuple, forest


@pytest.fixture(scope="module")
def iris_bundle(tmp_path_factory):
    return modelwire.dump(
        forest.model(), "iris", tmp_path_factory.mktemp("b") / "iris", version="1.2.0"
    )


def test_load_returns_the_model_with_callable_methods(iris_bundle):
    iris = modelwire.load(iris_bundle)
    assert (iris.name, iris.version, iris.path) == ("iris", "1.2.0", iris_bundle)
    got = iris.classify(
        forest.Flowers([5.1, 6.2, 7.7], [3.5, 2.9, 3.0], [1.4, 4.3, 6.1], [0.2, 1.3, 2.3])
    )
    assert got == forest.Species([0, 1, 2])
    assert "classify" in dir(iris)
    assert iris.classify.__doc__ == "Predict the iris species of each row."


def test_an_unknown_method_is_an_attribute_error_naming_the_methods(iris_bundle):
    iris = modelwire.load(iris_bundle)
    with pytest.raises(AttributeError) as info:
        iris.predict  # noqa: B018
    assert str(info.value) == "model has no method 'predict'; it has classify"


def test_create_namedtuple_makes_a_namedtuple_class_of_the_calling_module():
    assert acumos_namedtuple.ScoreInput.__module__ == acumos_namedtuple.__name__
    assert acumos_namedtuple.ScoreInput._fields == ("values", "weight")


def test_create_namedtuple_models_round_trip_through_a_bundle(tmp_path):
    scorer = modelwire.load(modelwire.dump(acumos_namedtuple.model, "scorer", tmp_path / "s.zip"))
    got = scorer.score(acumos_namedtuple.ScoreInput([1.0, 2.0], 3.0))
    assert got == acumos_namedtuple.ScoreOutput(9.0, 2)
    assert type(got) is acumos_namedtuple.ScoreOutput


def test_create_namedtuple_models_are_served_and_called_with_plain_values(serve_model):
    server = serve_model(acumos_namedtuple.model, "scorer")
    with connect(server.address, timeout=30) as client:
        got = client.score(acumos_namedtuple.ScoreInput([1.0, 2.0, 4.0], 0.5))
        assert (got.total, got.count) == (3.5, 3)
        assert client.score(values=[2.0], weight=2.0) == (4.0, 1)
