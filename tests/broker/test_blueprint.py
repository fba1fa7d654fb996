"""Loading blueprints: a line and column for every node, models by bundle (relative to the
blueprint's folder) or by the address of a running service (its schema read through
reflection), per-step timeout and retry."""

from __future__ import annotations

import threading
import time
from concurrent import futures
from dataclasses import replace
from pathlib import Path

import grpc
import pytest

from modelwire.broker.blueprint import Ref
from modelwire.broker.loader import load_blueprint, parse_blueprint
from modelwire.broker.resolve import resolve
from modelwire.broker.typecheck import check
from modelwire.bundle import read_manifest
from modelwire.codegen.schema import Method, TensorType
from modelwire.diagnostics import Diagnostic, Location, render
from modelwire.hosting.binding import bind
from modelwire.hosting.health import HEALTH_SERVICE
from tests.broker.helpers import HandlerServer
from tests.fixtures.models import detector
from tests.servers import closed_port, silent_listener

TEXT = """\
name: photo
models:
  faces:   {bundle: ../build/faces}
  advisor: {address: "localhost:50070"}
methods:
  advise:
    steps:
      face_boxes: {call: faces.detect, with: $input, timeout: 2s, retry: 2}
      advice:
        call: advisor.recommend
        with:
          faces: face_boxes
          eyes: face_boxes.boxes
          hint: $input.hint
    output: advice.text
"""


def test_every_node_keeps_its_line_and_column():
    bp, diags = parse_blueprint(TEXT, "photo.yaml", Path("/bp"))
    assert diags == []
    assert bp is not None

    def at(loc: Location) -> tuple[int, int]:
        assert loc.file == "photo.yaml"
        return loc.line, loc.column

    method = bp.methods["advise"]
    face, advice = method.steps["face_boxes"], method.steps["advice"]
    assert isinstance(face.inputs, Ref) and isinstance(advice.inputs, dict)
    assert {
        "blueprint": at(bp.location),
        "model faces": at(bp.models["faces"].location),
        "model advisor": at(bp.models["advisor"].location),
        "method advise": at(method.location),
        "step face_boxes": at(face.location),
        "call of face_boxes": at(face.call_location),
        "with of face_boxes": at(face.inputs.location),
        "step advice": at(advice.location),
        "call of advice": at(advice.call_location),
        "with.faces": at(advice.inputs["faces"].location),
        "with.eyes": at(advice.inputs["eyes"].location),
        "with.hint": at(advice.inputs["hint"].location),
        "output": at(method.output.location),
    } == {
        "blueprint": (1, 1),
        "model faces": (3, 3),
        "model advisor": (4, 3),
        "method advise": (6, 3),
        "step face_boxes": (8, 7),
        "call of face_boxes": (8, 26),
        "with of face_boxes": (8, 46),
        "step advice": (9, 7),
        "call of advice": (10, 15),
        "with.faces": (12, 18),
        "with.eyes": (13, 17),
        "with.hint": (14, 17),
        "output": (15, 13),
    }
    assert (face.timeout, face.retry, advice.timeout, advice.retry) == (2.0, 2, None, 0)
    assert (advice.inputs["eyes"].step, advice.inputs["eyes"].path) == ("face_boxes", ("boxes",))
    assert (advice.inputs["hint"].step, advice.inputs["hint"].path) == (None, ("hint",))
    assert (method.output.step, method.output.path) == ("advice", ("text",))


def test_bundle_paths_resolve_against_the_blueprint_folder(tmp_path, monkeypatch):
    folder = tmp_path / "solutions" / "photo"
    folder.mkdir(parents=True)
    (folder / "photo.yaml").write_text(
        "name: photo\n"
        "models:\n"
        "  up: {bundle: ../../build/faces}\n"
        "  here: {bundle: eyes}\n"
        f"  absolute: {{bundle: {tmp_path / 'elsewhere'}}}\n"
        "methods: {}\n"
    )
    monkeypatch.chdir(tmp_path / "solutions")  # a relative blueprint path, another cwd
    bp, diags = load_blueprint(Path("photo") / "photo.yaml")
    assert diags == [] and bp is not None
    assert {name: m.path for name, m in bp.models.items()} == {
        "up": folder / "../../build/faces",
        "here": folder / "eyes",
        "absolute": tmp_path / "elsewhere",
    }
    assert bp.models["up"].value == "../../build/faces"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        pytest.param("500ms", 0.5, id="milliseconds"),
        pytest.param("2s", 2.0, id="seconds"),
        pytest.param("1.5", 1.5, id="bare-number-is-seconds"),
        pytest.param("1m", 60.0, id="minutes"),
        pytest.param("0.25 s", 0.25, id="space-before-unit"),
    ],
)
def test_step_timeouts(text, seconds):
    bp, diags = parse_blueprint(
        f"name: t\nmodels: {{}}\nmethods:\n  m:\n    steps:\n"
        f"      s: {{call: a.b, with: $input, timeout: {text}}}\n    output: s\n"
    )
    assert diags == [] and bp is not None
    assert bp.methods["m"].steps["s"].timeout == seconds


@pytest.mark.parametrize(
    ("snippet", "message", "column"),
    [
        pytest.param(
            "timeout: 0s",
            "'timeout' of step 's' of method 'm' must be a positive duration like 500ms, 2s or "
            "1.5, not '0s'",
            45,
            id="zero-timeout",
        ),
        pytest.param(
            "timeout: 2h",
            "'timeout' of step 's' of method 'm' must be a positive duration like 500ms, 2s or "
            "1.5, not '2h'",
            45,
            id="unknown-unit",
        ),
        pytest.param(
            "retry: -1",
            "'retry' of step 's' of method 'm' must be a whole number from 0 to 10, not '-1'",
            43,
            id="negative-retry",
        ),
        pytest.param(
            "retry: 1.5",
            "'retry' of step 's' of method 'm' must be a whole number from 0 to 10, not '1.5'",
            43,
            id="fractional-retry",
        ),
        pytest.param(
            "retry: [1]",
            "'retry' of step 's' of method 'm' must be a single value",
            43,
            id="list-retry",
        ),
    ],
)
def test_bad_timeouts_and_retries(snippet, message, column):
    _, diags = parse_blueprint(
        f"name: t\nmodels: {{}}\nmethods:\n  m:\n    steps:\n"
        f"      s: {{call: a.b, with: $input, {snippet}}}\n    output: s\n",
        "t.yaml",
    )
    assert [(d.code, d.message, d.location.column) for d in diags if d.location] == [
        ("MW002", message, column)
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("", "t.yaml:1:1: error[MW002]: the blueprint is empty", id="empty"),
        pytest.param(
            "- a\n- b\n", "t.yaml:1:1: error[MW002]: the blueprint must be a mapping", id="a-list"
        ),
        pytest.param(
            "name: t\nmodels:\n  a: {bundle: x}\n  a: {bundle: y}\nmethods: {}\n",
            "t.yaml:4:3: error[MW002]: duplicate key 'a' in 'models' (first at line 3)",
            id="duplicate-key",
        ),
        pytest.param(
            "name: t\nmodels: {a: {bundle: x}\nmethods: {}\n",
            "t.yaml:3:1: error[MW001]: invalid YAML: expected ',' or '}', but got '<scalar>'\n"
            "    while parsing a flow mapping at line 2, column 9",
            id="unclosed-brace",
        ),
        pytest.param(
            "name: t\n\tmodels: {}\n",
            "t.yaml:2:1: error[MW001]: invalid YAML: found character '\\t' that cannot start "
            "any token",
            id="tab",
        ),
    ],
)
def test_unusable_files(text, expected):
    _, diags = parse_blueprint(text, "t.yaml")
    assert render(diags).split("\n1 error")[0] == expected


# ---------------------------------------------------------------- address: models

ADDRESSED = """
name: addressed
models:
  faces: {address: "@faces"}
methods:
  detect:
    steps:
      found: {call: faces.detect, with: $input}
    output: found
"""


def _parse(text: str, **addresses: str):
    for name, address in addresses.items():
        text = text.replace(f"@{name}", address)
    bp, diags = parse_blueprint(text, "b.yaml")
    assert diags == [] and bp is not None
    return bp


def test_an_address_model_is_read_from_the_running_service(model_server, bundle):
    server = model_server("detector")
    bp = _parse(ADDRESSED, faces=server.address)
    resolved = resolve(bp)
    assert resolved.diagnostics == []
    assert resolved.addresses == {"faces": server.address}
    assert resolved.bundles == {}
    # a modelwire service also publishes its manifest: the schema is the bundle's, exactly
    assert resolved.schemas["faces"] == read_manifest(bundle("detector")).schema


def test_an_address_model_without_a_manifest_is_read_through_reflection(servers):
    """Any gRPC service with server reflection can be a model; what the proto cannot say
    (Python names, Tensor dtypes) is left open, so a dtype is not checked."""
    plain = servers(HandlerServer(detector.model(), "faces", {}, info=False))
    bp = _parse(ADDRESSED, faces=plain.address)
    resolved = resolve(bp)
    assert resolved.diagnostics == []
    schema = resolved.schemas["faces"]
    assert schema.method("detect") == Method(
        "detect", "Detect", "DetectRequest", "DetectResponse", None, "message"
    )
    assert schema.message("DetectRequest").fields[0].type == TensorType(None)
    plan, diags = check(bp, resolved.schemas)
    assert diags == [] and plan is not None


@pytest.mark.timeout(30)
def test_an_unreachable_address_is_a_diagnostic_at_the_model():
    port = closed_port()
    bp = _parse(ADDRESSED, faces=f"127.0.0.1:{port}")
    started = time.monotonic()
    resolved = resolve(bp)
    assert resolved.diagnostics == [
        Diagnostic(
            "MW105",
            f"model 'faces': nothing is listening on 127.0.0.1:{port}",
            Location("b.yaml", 4, 3),
            help="start the service first, or use 'bundle:' to have it started",
        )
    ]
    assert time.monotonic() - started < 4  # at once, not after the 5 s wait


THREE_ADDRESSED = """
name: three
models:
  a: {address: "@a"}
  b: {address: "@b"}
  c: {address: "@c"}
methods:
  m:
    steps:
      x: {call: a.f, with: $input}
      y: {call: b.f, with: x}
      z: {call: c.f, with: y}
    output: z
"""


@pytest.mark.timeout(30)
def test_unreachable_addresses_are_reported_in_the_blueprints_order():
    """Servers that take the connection and never answer cost one 5 s wait, not three."""
    with silent_listener() as a, silent_listener() as b, silent_listener() as c:
        started = time.monotonic()
        resolved = resolve(_parse(THREE_ADDRESSED, a=a, b=b, c=c))
        assert time.monotonic() - started < 10
    assert [(d.location.line, d.message) for d in resolved.diagnostics] == [
        (4, f"model 'a': cannot reach {a}: no connection within 5 s"),
        (5, f"model 'b': cannot reach {b}: no connection within 5 s"),
        (6, f"model 'c': cannot reach {c}: no connection within 5 s"),
    ]


class Rendezvous:
    """Three gRPC servers whose health checks answer only once all three have been asked,
    and that serve nothing else (no reflection)."""

    def __init__(self) -> None:
        self.asked = threading.Barrier(3, timeout=20)
        self.servers: list[grpc.Server] = []
        self.addresses: dict[str, str] = {}  # a, b, c -> address
        for name in "abc":
            server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
            check = grpc.unary_unary_rpc_method_handler(self.check)
            server.add_generic_rpc_handlers(
                (grpc.method_handlers_generic_handler(HEALTH_SERVICE, {"Check": check}),)
            )
            self.addresses[name] = f"127.0.0.1:{bind(server, '127.0.0.1:0')}"
            server.start()
            self.servers.append(server)

    def check(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        try:
            self.asked.wait()
        except threading.BrokenBarrierError:
            context.abort(grpc.StatusCode.UNAVAILABLE, "the others were not asked meanwhile")
        return b""  # HealthCheckResponse(status=UNKNOWN): an answer, which is all it takes

    def stop(self) -> None:
        self.asked.abort()
        for server in self.servers:
            server.stop(0).wait(10)


@pytest.mark.timeout(60)
def test_addresses_are_asked_at_once():
    """Each service is reached only once all three have been asked: asked one after another,
    the first would have waited for the others in vain (and been reported unreachable). So
    all three are reached, then found to serve no reflection."""
    rendezvous = Rendezvous()
    try:
        resolved = resolve(_parse(THREE_ADDRESSED, **rendezvous.addresses))
    finally:
        rendezvous.stop()
    assert [(d.location.line, d.message) for d in resolved.diagnostics] == [
        (line, f"model {name!r}: {address} ServerReflectionInfo: UNIMPLEMENTED: Method not found!")
        for line, (name, address) in zip((4, 5, 6), rendezvous.addresses.items(), strict=True)
    ]


def test_a_streaming_rpc_cannot_be_a_step(model_server):
    server = model_server("detector")
    bp = _parse(ADDRESSED, faces=server.address)
    schema = resolve(bp).schemas["faces"]
    methods = tuple(
        replace(m, streaming="server") if m.name == "detect" else m for m in schema.methods
    )
    streaming = replace(schema, methods=methods)
    _, diags = check(bp, {"faces": streaming})
    assert render(diags, "b.yaml") == (
        "b.yaml:8:21: error[MW102]: step 'found' calls faces.detect, a server-streaming rpc; "
        "steps call unary rpcs only\n"
        "1 error in b.yaml"
    )


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("50051", "expected HOST:PORT, e.g. localhost:50051"),
        ("localhost", "expected HOST:PORT, e.g. localhost:50051"),
        ("http://localhost:50070",
         "expected HOST:PORT, e.g. localhost:50070 (a gRPC address has no http:// scheme)"),
        ("localhost:70000", "port '70000' is not 1-65535"),
    ],
    ids=["no-host", "no-port", "scheme", "port-range"],
)  # fmt: skip
def test_a_malformed_address_is_a_diagnostic_at_its_value_before_anything_is_dialled(
    address, problem
):
    _, diags = parse_blueprint(ADDRESSED.replace("@faces", address), "b.yaml")
    assert render(diags, "b.yaml") == (
        f"b.yaml:4:20: error[MW002]: 'address' of model 'faces' is {address!r}: {problem}\n"
        "1 error in b.yaml"
    )
