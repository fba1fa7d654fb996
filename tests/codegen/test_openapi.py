"""The OpenAPI 3.1 document of the HTTP face, rendered from the schema IR."""

from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator

from modelwire.codegen.descriptors import file_descriptor, message_classes
from modelwire.codegen.json_codec import JsonCodec
from modelwire.codegen.openapi import openapi, render
from tests.fixtures.models import forest, rich

SCHEMA = rich.model().schema
DOC = openapi(SCHEMA, version="1.2.3")


def _validator(name: str) -> Draft202012Validator:
    return Draft202012Validator({**DOC, "$ref": f"#/components/schemas/{name}"})


def test_it_is_deterministic_json_text():
    assert render(SCHEMA, version="1.2.3") == render(rich.model().schema, version="1.2.3")
    assert json.loads(render(SCHEMA, version="1.2.3")) == DOC


def test_every_method_has_a_connect_and_an_acumos_path():
    assert DOC["openapi"] == "3.1.0" and DOC["info"]["version"] == "1.2.3"
    posts = sorted(p for p, item in DOC["paths"].items() if "post" in item)
    rpcs = ["Echo", "Pick", "Scale", "Summarize", "Tally"]
    assert posts == sorted(
        [f"/{SCHEMA.package}.{SCHEMA.service}/{r}" for r in rpcs]
        + [f"/model/methods/{m.name}" for m in SCHEMA.methods]
    )
    op = DOC["paths"][f"/{SCHEMA.package}.{SCHEMA.service}/Summarize"]["post"]
    assert op["description"] == "Summary statistics of a detection."
    assert set(op["requestBody"]["content"]) == {"application/json", "application/proto"}
    acumos = DOC["paths"]["/model/methods/summarize"]["post"]
    assert set(acumos["requestBody"]["content"]) == {
        "application/json",
        "application/vnd.google.protobuf",
    }
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/model/methods"):
        assert "get" in DOC["paths"][path]


def test_properties_are_the_descriptors_json_names():
    classes = message_classes(file_descriptor(SCHEMA))
    schemas = DOC["components"]["schemas"]
    for message in SCHEMA.messages:
        desc = classes.descriptor(message.name)
        assert list(schemas[message.name]["properties"]) == [f.json_name for f in desc.fields]
    forest_doc = openapi(forest.model().schema)
    props = forest_doc["components"]["schemas"]["ClassifyRequest"]["properties"]
    assert props["sepalLength"] == {
        "type": "array",
        "items": {"type": "number", "format": "double"},
        "description": "also accepted as `sepal_length`",
    }
    assert forest_doc["components"]["schemas"]["ClassifyResponse"]["properties"]["irisType"] == {
        "type": "array",
        "items": {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"},
        "description": "also accepted as `iris_type`",
    }


def test_types_follow_the_canonical_json_mapping():
    schemas = DOC["components"]["schemas"]
    tally = schemas["TallyRequest"]["properties"]
    assert tally["limit"] == {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"}
    assert tally["payload"] == {"type": "string", "contentEncoding": "base64"}
    assert tally["counts"] == {
        "type": "object",
        "additionalProperties": {"$ref": "#/components/schemas/ListOfString"},
        "propertyNames": {"pattern": "^-?[0-9]+$"},
    }
    assert schemas["Kind"]["enum"] == ["KIND_UNSPECIFIED", "KIND_CAT", "KIND_DOG", "KIND_BIRD"]
    assert schemas["ScaleRequest"]["properties"]["offset"] == {"type": "integer", "format": "int32"}
    tensor = schemas["Tensor"]
    assert tensor["oneOf"][1] == {"$ref": "#/components/schemas/TensorArray"}
    assert list(tensor["oneOf"][0]["properties"]) == ["dtype", "shape", "data"]
    assert "C (row-major) order" in tensor["description"]


@pytest.mark.parametrize("method", SCHEMA.methods, ids=lambda m: m.rpc)
def test_each_example_fits_its_schema_and_the_service_accepts_it(method):
    op = DOC["paths"][f"/{SCHEMA.package}.{SCHEMA.service}/{method.rpc}"]["post"]
    example = op["requestBody"]["content"]["application/json"]["example"]
    _validator(method.request).validate(example)
    JsonCodec(SCHEMA).to_proto(method.request, json.dumps(example).encode())


def test_a_reply_written_by_the_codec_fits_the_response_schema():
    codec = JsonCodec(SCHEMA)
    example = DOC["paths"][f"/{SCHEMA.package}.{SCHEMA.service}/Echo"]["post"]["requestBody"][
        "content"
    ]["application/json"]["example"]
    data = codec.to_proto("EchoRequest", json.dumps(example).encode())
    _validator("EchoResponse").validate(json.loads(codec.to_json("EchoResponse", data)))


def test_a_request_of_the_wrong_shape_does_not_fit():
    errors = list(_validator("TallyRequest").iter_errors({"limit": 5, "flags": "yes"}))
    assert sorted(e.json_path for e in errors) == ["$.flags", "$.limit"]
