"""Fused solutions: bundle models loaded into the broker and called with Python values give
the same answers, statuses and metrics as the same models behind gRPC, and still run
independent steps at once without blocking the broker's event loop.

Every blueprint of the broker tests that runs against the fixture models is run twice, with
its models as model services (`address:`, served in this process) and fused (`bundle:`, the
same bundles), and every answer is compared.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.json_format import MessageToDict

from modelwire.broker.check import check_file
from tests.broker.helpers import (
    InProcessSolution,
    RawClient,
    write_blueprint,
)
from tests.broker.test_router import FAN, WIDTHS
from tests.broker.test_service import PHOTO

FIXTURES = Path(__file__).parent.parent / "fixtures" / "blueprints"

# the fixture models each placeholder of the blueprints above stands for
MODEL_OF = {
    "gate": "sleeper",
    "quick": "sleeper",
    "held": "sleeper",
    "sleeper": "sleeper",
    "widths": "widths",
    "detector": "detector",
    "advisor": "advisor",
    "layout": "layout",
}
_ADDRESS = re.compile(r'\{address: "@(\w+)"\}')
_BUNDLE = re.compile(r"\{bundle: \.\./_bundles/(\w+)\}")

IMAGE = bytes(range(60))  # a 6x10 uint8 image, as raw Tensor data

# blueprint text -> the calls to compare: (method, request fields)
CASES: dict[str, tuple[str, list[tuple[str, dict[str, Any]]]]] = {
    "widths": (
        WIDTHS,
        [
            (m, {"n": n, "scale": 0.1, "label": "x"})
            for m in ("widen_int", "whole", "widen_float", "reorder", "label", "both")
            for n in (-5, 7)
        ],
    ),
    "photo": (PHOTO, []),  # calls below, once the request class is known
    "ok": ((FIXTURES / "ok" / "blueprint.yaml").read_text(), []),
}


def _tensor(client: RawClient, method: str) -> Any:
    cls = client.classes.get(client.schema.method(method).request)
    request = cls()
    request.image.dtype = 6  # UINT8
    request.image.shape.extend([6, 10])
    request.image.data = IMAGE
    return request


def _address_form(text: str, addresses: dict[str, str]) -> str:
    text = _BUNDLE.sub(lambda m: f'{{address: "@{m.group(1)}"}}', text)
    return write_blueprint_text(text, addresses)


def write_blueprint_text(text: str, addresses: dict[str, str]) -> str:
    for name, address in sorted(addresses.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(f"@{name}", address)
    return text


def _bundle_form(text: str, bundle: Callable[[str], Path]) -> str:
    text = _BUNDLE.sub(lambda m: f'{{bundle: "{bundle(m.group(1))}"}}', text)
    return _ADDRESS.sub(lambda m: f'{{bundle: "{bundle(MODEL_OF[m.group(1)])}"}}', text)


def _placeholders(text: str) -> set[str]:
    return set(_ADDRESS.findall(text)) | set(_BUNDLE.findall(text))


@pytest.fixture
def both(tmp_path, servers, model_server, bundle):
    """both(text, **solution config) -> (unfused client, fused client, fused solution)."""

    def start(text: str, **config: Any) -> tuple[RawClient, RawClient, InProcessSolution]:
        names = _placeholders(text)
        addresses = {n: model_server(MODEL_OF[n]).address for n in names}
        unfused_path = tmp_path / "unfused.yaml"
        unfused_path.write_text(_address_form(text, addresses))
        fused_path = tmp_path / "fused.yaml"
        fused_path.write_text(_bundle_form(text, bundle))
        unfused = servers(InProcessSolution(unfused_path))
        fused = servers(InProcessSolution(fused_path, fuse=True, **config))
        assert fused.plan.fused == set(fused.plan.blueprint.models)
        return servers(RawClient(unfused)), servers(RawClient(fused)), fused

    return start


def _replies(client: RawClient, calls: list[tuple[str, Any]]) -> list[Any]:
    out = []
    for method, given in calls:
        m = client.schema.method(method)
        call = client.channel.unary_unary(
            f"/{client.service}/{m.rpc}",
            request_serializer=lambda msg: msg.SerializeToString(),
            response_deserializer=client.classes.get(m.response).FromString,
        )
        request = client.classes.get(m.request)(**given) if isinstance(given, dict) else given
        try:
            out.append(MessageToDict(call(request, timeout=30), preserving_proto_field_name=True))
        except grpc.RpcError as exc:
            out.append((exc.code(), exc.details()))
    return out


def _photo_calls(client: RawClient) -> list[tuple[str, Any]]:
    calls: list[tuple[str, Any]] = []
    for m in client.schema.methods:
        request = client.classes.get(m.request)()
        if any(f.name == "image" for f in request.DESCRIPTOR.fields):
            calls.append((m.name, _tensor(client, m.name)))
        elif m.name == "rate":
            calls += [(m.name, {"count": 3}), (m.name, {"count": 0})]
        elif m.name == "tip":
            box = {"x": 1, "y": 2, "w": 3, "h": 4}
            calls.append((m.name, {"faces": {"boxes": [box, box]}, "eyes": [box]}))
            calls.append((m.name, {"faces": {"boxes": []}, "eyes": []}))
    return calls


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_blueprint_answers_the_same_fused_and_unfused(both, case):
    text, calls = CASES[case]
    unfused, fused, _ = both(text)
    if not calls:
        calls = _photo_calls(unfused)
    assert calls, "a blueprint with nothing to compare"
    expected = _replies(unfused, calls)
    assert _replies(fused, calls) == expected
    assert not any(isinstance(r, tuple) for r in expected), expected


def test_the_fixture_blueprints_that_check_are_all_compared():
    checking = {
        p.parent.name
        for p in FIXTURES.glob("*/expected.txt")
        if ": ok, service " in p.read_text().splitlines()[0]
    }
    assert checking <= set(CASES)


def test_fused_steps_pass_values_and_encode_only_where_bytes_are_read(both):
    _, _, solution = both(CASES["ok"][0])
    steps = solution.running.router._fused  # what each fused step was compiled to
    by_values = {m: {s: f.values is not None for s, f in fs.items()} for m, fs in steps.items()}
    encoded = {m: {s: f.encode for s, f in fs.items()} for m, fs in steps.items()}
    # steps reading $input decode its bytes; the fan-in reads only fused replies
    assert by_values == {
        "advise": {"face_boxes": False, "eye_boxes": False, "advice": True},
        "rate": {"rating": False},
        "tip": {"advice": False, "rating": True},
    }
    # only the output's reply is encoded: the solution's reply is bytes
    assert encoded == {
        "advise": {"face_boxes": False, "eye_boxes": False, "advice": True},
        "rate": {"rating": True},
        "tip": {"advice": False, "rating": True},
    }


def test_a_fused_model_next_to_an_unfused_one_answers_the_same(
    both, tmp_path, bundle, servers, model_server
):
    """One model fused, one a service: bytes flow both ways across the boundary."""
    text = CASES["ok"][0]
    unfused, _, _ = both(text)
    calls = _photo_calls(unfused)
    advisor = model_server("advisor").address
    mixed_text = _bundle_form(text, bundle).replace(
        f'advisor: {{bundle: "{bundle("advisor")}"}}', f'advisor: {{address: "{advisor}"}}'
    )
    mixed = servers(
        InProcessSolution(write_blueprint(tmp_path / "mixed.yaml", mixed_text), fuse=True)
    )
    assert mixed.plan.fused == {"faces"}
    fs = mixed.running.router._fused["advise"]
    # the fused detectors' replies are read by an unfused step: encoded
    assert {s: f.encode for s, f in fs.items()} == {"face_boxes": True, "eye_boxes": True}
    assert _replies(servers(RawClient(mixed)), calls) == _replies(unfused, calls)


def test_fuse_false_keeps_a_model_a_process(tmp_path, bundle):
    text = _bundle_form(CASES["ok"][0], bundle).replace(
        f'advisor: {{bundle: "{bundle("advisor")}"}}',
        f'advisor: {{bundle: "{bundle("advisor")}", fuse: false}}',
    )
    plan, bundles, _ = check_file(write_blueprint(tmp_path / "mixed.yaml", text), fuse=True)
    assert plan.fused == {"faces"}
    assert plan.fusing["advisor"].describe() == "not fused (it could be: 'fuse: true')"
    assert set(bundles) == {"faces", "advisor"}


def test_independent_fused_steps_run_at_once_off_the_event_loop(both):
    _, fused, _ = both(FAN)
    t0 = time.monotonic()
    done: list[Any] = []
    # while three naps of 0.5 s run, the broker's loop still answers other calls at once
    caller = threading.Thread(target=lambda: done.append(fused("fan", seconds=0.5, timeout=30)))
    caller.start()
    time.sleep(0.1)
    quick = time.monotonic()
    fused("fan", seconds=0.0, timeout=30)
    assert time.monotonic() - quick < 0.4, "a fused model blocked the broker's event loop"
    caller.join(30)
    [reply] = done
    assert reply.overlapped, reply
    assert time.monotonic() - t0 < 1.4, "the naps ran one after another"


def test_quick_fused_steps_run_on_the_loop_until_one_call_takes_longer(both):
    """A hop to a thread costs more than a quick model's call: after 16 quick calls in a row
    a step runs on the loop itself; the first slow call there sends it back to threads for
    good."""
    _, fused, solution = both(FAN)
    steps = solution.running.router._fused["fan"]
    for _ in range(200):
        fused("fan", seconds=0.0, timeout=30)
        if all(f.inline for f in steps.values()):
            break
    assert {name: f.inline for name, f in steps.items()} == {
        "a": True,
        "b": True,
        "c": True,
        "all": True,
    }
    # the one call that holds the loop: the naps run one after another
    assert not fused("fan", seconds=0.2, timeout=30).overlapped
    assert {name: f.inline for name, f in steps.items()} == {
        "a": False,
        "b": False,
        "c": False,
        "all": True,
    }
    for _ in range(20):
        fused("fan", seconds=0.0, timeout=30)
    assert fused("fan", seconds=0.2, timeout=30).overlapped


def _without_where(details: str) -> str:
    return re.sub(r" at 127\.0\.0\.1:\d+\)|, fused\)", ")", details)


FAILING = """
name: failing
models:
  sleeper: {address: "@sleeper"}
methods:
  fall:
    steps:
      fell: {call: sleeper.fail, with: $input}
    output: fell
  late:
    steps:
      napped: {call: sleeper.nap, with: $input, timeout: 200ms}
    output: napped
"""


def test_a_failing_fused_model_fails_its_step_as_over_grpc(both):
    unfused, fused, solution = both(FAILING)
    for client in (unfused, fused):
        with pytest.raises(grpc.RpcError) as caught:
            client("fall", seconds=0.0, timeout=30)
        client.caught = caught.value  # type: ignore[attr-defined]
    a, b = unfused.caught, fused.caught  # type: ignore[attr-defined]
    assert b.code() == a.code() == grpc.StatusCode.INTERNAL
    assert "step 'fell' (sleeper.fail, fused) failed: INTERNAL" in b.details()
    assert _without_where(b.details()) == _without_where(a.details())
    text = solution.running.metrics.exposition().decode()
    assert 'modelwire_step_requests_total{code="INTERNAL",method="fall",step="fell"} 1.0' in text


def test_a_fused_step_times_out_as_its_timeout_says(both):
    _, fused, _ = both(FAILING)
    with pytest.raises(grpc.RpcError) as caught:
        fused("late", seconds=2.0, timeout=30)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert caught.value.details() == (
        "late: step 'napped' (sleeper.nap, fused) failed: DEADLINE_EXCEEDED: it did not "
        "finish in time (the step's timeout is 0.2 s)"
    )


def test_the_fused_solution_has_the_unfused_contract(both):
    unfused, fused, solution = both(CASES["ok"][0])
    assert fused.schema == unfused.schema
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    stub = health_pb2_grpc.HealthStub(fused.channel)
    reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    _replies(fused, _photo_calls(fused))
    text = solution.running.metrics.exposition().decode()
    for step in ("face_boxes", "eye_boxes", "advice"):
        assert f'modelwire_step_requests_total{{code="OK",method="advise",step="{step}"}}' in text
