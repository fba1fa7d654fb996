"""Method signatures that cannot become an rpc are refused at `Model(...)` time: missing
annotations, *args and **kwargs, positional-only parameters, unusable method names."""

from __future__ import annotations

import pytest

from modelwire.bundle.model import Model
from modelwire.errors import SchemaError


def test_missing_parameter_annotation():
    def predict(x, y: int) -> int:  # type: ignore[no-untyped-def]
        return 0

    with pytest.raises(SchemaError) as info:
        Model(predict=predict)
    assert str(info.value) == "method 'predict': parameter 'x' has no type annotation"


def test_missing_return_annotation():
    def predict(x: int):  # type: ignore[no-untyped-def]
        return 0

    with pytest.raises(SchemaError) as info:
        Model(predict=predict)
    assert str(info.value) == (
        "method 'predict': the return value has no type annotation "
        "(write '-> None' if it returns nothing)"
    )


def test_star_args_are_refused():
    def predict(*rows: float) -> float:
        return 0.0

    with pytest.raises(SchemaError) as info:
        Model(predict=predict)
    assert str(info.value) == (
        "method 'predict': parameter 'rows': *args and **kwargs cannot be mapped to a message"
    )


def test_star_kwargs_are_refused():
    def predict(x: int, **options: str) -> float:
        return 0.0

    with pytest.raises(SchemaError) as info:
        Model(predict=predict)
    assert str(info.value) == (
        "method 'predict': parameter 'options': *args and **kwargs cannot be mapped to a message"
    )


def test_positional_only_parameter_is_refused():
    def predict(x: int, /) -> float:
        return 0.0

    with pytest.raises(SchemaError) as info:
        Model(predict=predict)
    assert str(info.value) == (
        "method 'predict': parameter 'x' is positional-only; requests set fields by name"
    )


def test_method_names_must_be_identifiers_and_map_to_distinct_rpcs():
    def f(x: int) -> int:
        return x

    with pytest.raises(SchemaError) as info:
        Model(**{"predict-proba": f})
    assert str(info.value) == "method name 'predict-proba' is not a Python identifier"
    with pytest.raises(SchemaError) as info:
        Model(predict_proba=f, predictProba=f)
    assert str(info.value) == (
        "methods 'predict_proba' and 'predictProba' both map to rpc 'PredictProba'"
    )


def test_model_needs_a_method():
    with pytest.raises(TypeError) as info:
        Model()
    assert str(info.value) == "Model() needs at least one method, e.g. Model(classify=fn)"
    assert not isinstance(info.value, SchemaError)
