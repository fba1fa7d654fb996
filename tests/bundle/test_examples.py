"""Examples in the bundle: requests and the answers the model gave at dump, stored as wire
bytes, listed in the manifest, covered by its digests, the same in a zip, given back by
`load()`, and replayed (or generated from the schema) by `example_calls`."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from modelwire.bundle import Bundle, dump, load
from modelwire.bundle.examples import ExampleKind, JsonRequest, example_calls
from modelwire.bundle.model import Model
from modelwire.errors import BundleError, ModelwireError
from tests.bundle.test_integrity import change, edit_manifest, read
from tests.fixtures.models import echo, forest

SETOSA = forest.Flowers([5.1], [3.5], [1.4], [0.2])
VIRGINICA_JSON = (
    '{"sepal_length": [7.7], "sepal_width": [3.0], "petal_length": [6.1], "petal_width": [2.3]}'
)
FILES = [
    "examples/classify/0.request.pb",
    "examples/classify/0.response.pb",
    "examples/classify/1.request.pb",
    "examples/classify/1.response.pb",
]


@pytest.fixture(scope="module")
def iris_model() -> Model:
    return forest.model()


@pytest.fixture(params=["dir", "zip"])
def iris(request: pytest.FixtureRequest, tmp_path: Path, iris_model: Model) -> Path:
    name = "iris.zip" if request.param == "zip" else "iris"
    examples = {"classify": [SETOSA, JsonRequest(VIRGINICA_JSON)]}
    return dump(iris_model, "iris", tmp_path / name, examples=examples)


def test_the_manifest_lists_the_examples_and_their_digests(iris: Path) -> None:
    doc = json.loads(read(iris, "modelwire.json"))
    assert doc["examples"] == {
        "classify": [
            {"request": FILES[0], "response": FILES[1]},
            {"request": FILES[2], "response": FILES[3]},
        ]
    }
    for rel in FILES:
        assert doc["files"][rel] == hashlib.sha256(read(iris, rel)).hexdigest()


def test_the_files_are_the_wire_bytes_of_the_requests_and_the_answers(iris: Path) -> None:
    # field 1 (sepal_length), packed doubles: 5.1
    assert read(iris, FILES[0]).startswith(b"\n\x08" + np.float64(5.1).tobytes())
    assert read(iris, FILES[1]) == b"\n\x01\x00"  # iris_type [0]: setosa
    assert read(iris, FILES[3]) == b"\n\x01\x02"  # iris_type [2]: virginica


def test_load_gives_the_examples_back_as_python_values(iris: Path) -> None:
    examples = load(iris).examples
    assert list(examples) == ["classify"]
    first, second = examples["classify"]
    assert (first.method, first.request, first.response) == (
        "classify",
        SETOSA,
        forest.Species([0]),
    )
    assert second.request == forest.Flowers([7.7], [3.0], [6.1], [2.3])
    assert second.response == forest.Species([2])


def test_a_changed_answer_fails_the_digest_check(iris: Path) -> None:
    change(iris, FILES[1], b"\n\x01\x01")
    with pytest.raises(BundleError) as info:
        Bundle(iris)
    assert str(info.value) == (
        f"bundle {iris}: file {FILES[1]} does not match its sha256 in modelwire.json; "
        "the bundle was modified after it was written"
    )


def test_a_manifest_naming_an_unlisted_example_file_is_refused(iris: Path) -> None:
    edit_manifest(iris, examples={"classify": [{"request": FILES[0], "response": "examples/x.pb"}]})
    with pytest.raises(BundleError) as info:
        Bundle(iris)
    assert str(info.value) == (
        f"bundle {iris}: modelwire.json names an example file 'examples/x.pb' that it does not list"
    )


def test_a_manifest_with_examples_of_no_method_is_refused(iris: Path) -> None:
    edit_manifest(iris, examples={"predict": [{"request": FILES[0], "response": FILES[1]}]})
    with pytest.raises(BundleError) as info:
        Bundle(iris)
    assert str(info.value) == (
        f"bundle {iris}: modelwire.json has examples of 'predict', which is not a method of "
        "the model"
    )


def test_a_malformed_examples_entry_is_refused(iris: Path) -> None:
    edit_manifest(iris, examples={"classify": [FILES[0]]})
    with pytest.raises(BundleError) as info:
        Bundle(iris)
    assert str(info.value) == (
        f"bundle {iris}: modelwire.json has a malformed 'examples' entry: an example of "
        f"'classify' must be {{'request': PATH, 'response': PATH}}, got '{FILES[0]}'; "
        "dump the model again"
    )


def test_the_zip_holds_the_same_files_as_the_directory(tmp_path: Path, iris_model: Model) -> None:
    examples = {"classify": [SETOSA]}
    d = dump(iris_model, "iris", tmp_path / "d", examples=examples)
    z = dump(iris_model, "iris", tmp_path / "z.zip", examples=examples)
    with zipfile.ZipFile(z) as zf:
        zipped = {n: zf.read(n) for n in zf.namelist()}
    assert zipped == Bundle(d).files()


def test_a_bundle_without_examples_has_no_examples_entry(tmp_path: Path) -> None:
    path = dump(echo.model(), "echo", tmp_path / "echo")
    assert "examples" not in json.loads((path / "modelwire.json").read_text())
    assert not (path / "examples").exists()
    assert load(path).examples == {}


def test_examples_of_every_shape_of_method(tmp_path: Path) -> None:
    tensor = np.arange(4, dtype=np.float32)
    examples = {"add": [{"a": 1.0, "b": 2.5}], "echo_tensor": [tensor], "reject": [-1.0]}
    with pytest.raises(ModelwireError) as info:
        dump(echo.model(), "echo", tmp_path / "echo", examples=examples)
    assert str(info.value) == (
        "example 0 of 'reject': the model raised ValueError: x must be positive, got -1.0; "
        "fix the example or the model"
    )
    del examples["reject"]
    loaded = load(dump(echo.model(), "echo", tmp_path / "echo", examples=examples))
    (add,) = loaded.examples["add"]
    assert (add.request, add.response) == ({"a": 1.0, "b": 2.5}, 3.5)
    (echoed,) = loaded.examples["echo_tensor"]
    assert echoed.request.dtype == echoed.response.dtype == np.float32
    assert echoed.response.tolist() == [0.0, 1.0, 2.0, 3.0]


@pytest.mark.parametrize(
    ("examples", "error", "message"),
    [
        pytest.param(
            {"clasify": [SETOSA]},
            ValueError,
            "examples given for 'clasify', which is not a method of the model "
            "(its methods: classify)",
            id="unknown method",
        ),
        pytest.param(
            {"classify": [JsonRequest('{"sepal_length": [5.1], "colour": 1}')]},
            ValueError,
            "example 0 of 'classify': not a valid ClassifyRequest in JSON: Message type "
            '"modelwire.models.iris.v1.ClassifyRequest" has no field named "colour" at '
            '"ClassifyRequest".\n Available Fields(except extensions): "[\'sepalLength\', '
            "'sepalWidth', 'petalLength', 'petalWidth']\"",
            id="json with an unknown field",
        ),
        pytest.param(
            {"classify": [JsonRequest("{nope")]},
            ValueError,
            "example 0 of 'classify': not a valid ClassifyRequest in JSON: Expecting property "
            "name enclosed in double quotes: line 1 column 2 (char 1)",
            id="not json",
        ),
        pytest.param(
            {"classify": [forest.Flowers(["a"], [3.5], [1.4], [0.2])]},
            TypeError,
            "example 0 of 'classify': the request does not fit ClassifyRequest: "
            "sepal_length[0]: expected a number, got str 'a'",
            id="value of the wrong type",
        ),
        pytest.param(
            {"classify": SETOSA},
            TypeError,
            "the examples of 'classify' must be a list of requests, got Flowers",
            id="one example not in a list",
        ),
    ],
)
def test_bad_examples_are_refused_before_anything_is_written(
    tmp_path: Path, iris_model: Model, examples: dict, error: type, message: str
) -> None:
    with pytest.raises(error) as info:
        dump(iris_model, "iris", tmp_path / "iris", examples=examples)
    assert str(info.value) == message
    assert not (tmp_path / "iris").exists()


def test_example_calls_replay_the_recorded_and_generate_the_rest(tmp_path: Path) -> None:
    path = dump(echo.model(), "echo", tmp_path / "echo", examples={"add": [{"a": 1.0, "b": 2.0}]})
    b = Bundle(path)
    calls = example_calls(b.manifest, b.read)
    assert [(c.method, c.index, c.kind) for c in calls] == [
        ("echo_record", 0, ExampleKind.GENERATED),
        ("echo_tensor", 0, ExampleKind.GENERATED),
        ("add", 0, ExampleKind.RECORDED),
        ("fail", 0, ExampleKind.GENERATED),
        ("reject", 0, ExampleKind.GENERATED),
    ]
    add = calls[2]
    assert add.request == b.read("examples/add/0.request.pb")
    assert add.response == b.read("examples/add/0.response.pb")
    assert all(c.response is None for c in calls if c.kind is ExampleKind.GENERATED)
    again = example_calls(b.manifest, b.read)
    assert [c.request for c in again] == [c.request for c in calls]


def test_dumping_with_examples_twice_gives_the_same_bytes(
    tmp_path: Path, iris_model: Model
) -> None:
    examples = {"classify": [SETOSA, JsonRequest(VIRGINICA_JSON)]}
    first = dump(iris_model, "iris", tmp_path / "a.zip", examples=examples)
    second = dump(iris_model, "iris", tmp_path / "b.zip", examples=examples)
    assert first.read_bytes() == second.read_bytes()
