"""Models written with PEP 563 string annotations: resolved once, kept through pickle."""

from __future__ import annotations

import pickle

from modelwire.codegen.proto import render_proto
from modelwire.codegen.schema import Scalar, ScalarType, TensorType
from tests.codegen.prototext import block
from tests.fixtures.models import future_annotations


def test_future_annotations_are_resolved():
    assert future_annotations.describe.__annotations__["scene"] == "Scene"
    schema, _ = future_annotations.model().named("scene", "1.0.0")
    proto = render_proto(schema)

    scene_fields = (
        "  Tensor image = 1;\n"
        "  repeated Box boxes = 2;\n"
        "  map<string, Mood> moods = 3;\n"
        "  float scale = 4;\n"
        "  optional string note = 5;\n"
        "  repeated string tags = 6;\n"
    )
    assert block(proto, "message DescribeRequest") == (
        f"message DescribeRequest {{\n{scene_fields}}}"
    )
    assert block(proto, "message DescribeResponse") == (
        "message DescribeResponse {\n  map<string, ListOfInt64> value = 1;\n}"
    )
    assert block(proto, "message CountRequest") == (
        "message CountRequest {\n  Scene scene = 1;\n  optional int64 limit = 2;\n}"
    )
    assert block(proto, "message Scene") == f"message Scene {{\n{scene_fields}}}"
    assert block(proto, "message Box") == (
        "message Box {\n  repeated ListOfDouble corners = 1;\n  optional string label = 2;\n}"
    )
    assert schema.message("Scene").fields[0].type == TensorType("uint8")
    assert schema.message("Scene").fields[3].type == ScalarType(Scalar.FLOAT, "float32")


def test_future_annotations_model_keeps_its_schema_through_pickle():
    """Resolved annotations travel with the model: loading never evaluates strings."""
    model = future_annotations.model()
    clone = pickle.loads(pickle.dumps(model))
    assert clone.schema == model.schema
