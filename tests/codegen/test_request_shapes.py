"""Request and response messages: a message parameter is flattened, several parameters become
fields in order, nothing gives empty messages, docstrings become comments."""

from __future__ import annotations

from typing import NamedTuple

from modelwire.bundle.model import Model
from modelwire.codegen.proto import render_proto
from tests.codegen.prototext import block, definitions


class IrisInput(NamedTuple):
    sepal_length: list[float]
    sepal_width: list[float]


class IrisOutput(NamedTuple):
    iris_type: list[int]


def test_single_message_parameter_is_flattened_into_the_request():
    def classify(x: IrisInput) -> IrisOutput:
        return IrisOutput([])

    schema = Model(classify=classify).schema
    proto = render_proto(schema)

    assert "  rpc Classify(ClassifyRequest) returns (ClassifyResponse);" in proto
    assert block(proto, "message ClassifyRequest") == (
        "message ClassifyRequest {\n"
        "  repeated double sepal_length = 1;\n"
        "  repeated double sepal_width = 2;\n"
        "}"
    )
    assert block(proto, "message ClassifyResponse") == (
        "message ClassifyResponse {\n  repeated int64 iris_type = 1;\n}"
    )
    assert definitions(proto) == ["ClassifyRequest", "ClassifyResponse"]
    method = schema.method("classify")
    assert (method.params, method.returns) == (None, "message")


def test_flattened_request_has_the_same_fields_as_the_message_it_flattens():
    """Same fields, same numbers, same types: the two are wire-identical."""

    def classify(x: IrisInput) -> list[IrisInput]:
        return [x]

    schema = Model(classify=classify).schema
    assert schema.message("ClassifyRequest").fields == schema.message("IrisInput").fields
    assert schema.message("ClassifyResponse").fields[0].name == "value"


def test_several_parameters_become_request_fields_in_order():
    def predict_proba(features: list[float], top_k: int, label: str | None) -> dict[str, float]:
        return {}

    schema = Model(predict_proba=predict_proba).schema
    proto = render_proto(schema)

    assert "  rpc PredictProba(PredictProbaRequest) returns (PredictProbaResponse);" in proto
    assert block(proto, "message PredictProbaRequest") == (
        "message PredictProbaRequest {\n"
        "  repeated double features = 1;\n"
        "  int64 top_k = 2;\n"
        "  optional string label = 3;\n"
        "}"
    )
    assert block(proto, "message PredictProbaResponse") == (
        "message PredictProbaResponse {\n  map<string, double> value = 1;\n}"
    )
    method = schema.method("predict_proba")
    assert (method.params, method.returns) == (("features", "top_k", "label"), "value")


def test_no_parameters_and_none_return_give_empty_messages():
    def ping() -> None:
        pass

    schema = Model(ping=ping).schema
    proto = render_proto(schema)
    assert "message PingRequest {}\n" in proto
    assert "message PingResponse {}\n" in proto
    assert definitions(proto) == ["PingRequest", "PingResponse"]
    assert schema.method("ping").returns == "none"


def test_docstrings_become_comments():
    def classify(x: IrisInput) -> IrisOutput:
        """Classify iris flowers.

        Returns one class per row."""
        return IrisOutput([])

    proto = render_proto(Model(classify=classify).schema)
    assert (
        "  // Classify iris flowers.\n"
        "  //\n"
        "  // Returns one class per row.\n"
        "  rpc Classify(ClassifyRequest) returns (ClassifyResponse);\n"
    ) in proto
