"""Random bodies to every method of the rich model over HTTP (Connect JSON, Connect
protobuf, Acumos JSON): each is answered 2xx or 4xx with Connect's error body, never 5xx,
and the server stays healthy and still answers correctly afterwards; against the face
alone, and against a `modelwire serve` of the bundle (its HTTP port, its thread pool)."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from modelwire.codegen.json_codec import JsonCodec
from modelwire.codegen.openapi import openapi
from modelwire.runtime.service import ModelService
from tests.hosting.client import Client

PER_METHOD = 1000


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(10 if depth < 3 else 7)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 1, 2**31, 2**63, -(2**63) - 1, 2**64, rng.randint(-999, 999)])
    if kind == 3:
        return rng.choice([0.5, -0.0, 1e308, -1e-320, 3.4e38, 1e39, rng.uniform(-1e6, 1e6)])
    if kind == 4:
        return rng.choice(
            [
                "",
                "x",
                "NaN",
                "Infinity",
                "-Infinity",
                "1e3",
                "KIND_CAT",
                "cat",
                "9223372036854775808",
                "AAAA",
                "@@",
                "ü✓",
                "1.5",
                "-5",
            ]
        )
    if kind == 5:
        return rng.choice(["DATA_TYPE_FLOAT32", "UINT8", "float64", "KIND_DOG", 3, 99])
    if kind == 6:
        return [rng.uniform(-3, 3) for _ in range(rng.randint(0, 4))]
    if kind == 7:
        return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if kind == 8:
        return [[rng.randint(-2, 300) for _ in range(rng.randint(0, 3))] for _ in range(2)]
    keys = ["x0", "label", "values", "dtype", "shape", "data", "zz", "1", "-2", "true", "a"]
    return {rng.choice(keys): _random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))}


def _mutate_structure(rng: random.Random, value: Any) -> Any:
    """`value` with one random node replaced, a key added, or a key dropped."""
    if isinstance(value, dict) and value and rng.random() < 0.7:
        key = rng.choice(list(value))
        out = dict(value)
        op = rng.randrange(4)
        if op == 0:
            out[key] = _random_value(rng)
        elif op == 1:
            del out[key]
        elif op == 2:
            out[key + rng.choice(["_", "x", ""])] = _random_value(rng)
        else:
            out[key] = _mutate_structure(rng, value[key])
        return out
    if isinstance(value, list) and value and rng.random() < 0.7:
        out = list(value)
        i = rng.randrange(len(out))
        out[i] = _mutate_structure(rng, out[i]) if rng.random() < 0.5 else _random_value(rng)
        return out
    return _random_value(rng)


def _mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(4)
        if op == 0 and out:
            out[rng.randrange(len(out))] = rng.getrandbits(8)
        elif op == 1:
            out.insert(rng.randint(0, len(out)), rng.choice(b'{}[],:"\\0e-.\xff'))
        elif op == 2 and out:
            del out[rng.randrange(len(out))]
        else:
            out = out[: rng.randint(0, len(out))]
    return bytes(out)


@dataclass
class _Face:
    """What the fuzz reads of the face: its codec (for the examples' protobuf form)."""

    codec: JsonCodec


@dataclass
class ServedBundle:
    """A `modelwire serve` subprocess of a bundle, seen as the `http_face` fixture's Served:
    a client of its HTTP port, and the bundle's service and codec loaded here too."""

    service: ModelService
    face: _Face
    client: Client

    def connect_path(self, rpc: str) -> str:
        return f"/{self.service.service_name}/{rpc}"


@pytest.fixture(params=["face", "served"])
def fuzzed(request, http_face, loaded_bundle, serve_process) -> Iterator[Any]:
    if request.param == "face":
        yield http_face("rich", threads=2)
        return
    loaded = loaded_bundle("rich")
    served = serve_process(loaded.path, "--threads", "2")
    assert served.http_address is not None, served.stdout_lines
    client = Client(int(served.http_address.rsplit(":", 1)[1]))
    service = ModelService(loaded)
    yield ServedBundle(service, _Face(JsonCodec(service.schema, service.classes)), client)
    client.close()
    assert served.terminate() == 0, served.stderr


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_random_bodies_get_2xx_or_4xx_and_the_server_stays_correct(fuzzed):
    s = fuzzed
    doc = openapi(s.service.schema)
    rng = random.Random(11)
    statuses: Counter[int] = Counter()
    checks = {}
    for m in s.service.schema.methods:
        path = s.connect_path(m.rpc)
        example = doc["paths"][path]["post"]["requestBody"]["content"]["application/json"][
            "example"
        ]
        good = s.client.post(path, example)
        assert good.status == 200, good.body
        checks[path] = (example, good.body)
        valid_proto = s.service.codec.method(m.name).encode_request(
            *_python_args(s, m.name, example)
        )
        for i in range(PER_METHOD):
            choice = i % 4
            headers: dict[str, str] = {}
            target = path
            if choice == 0:
                body = json.dumps(_mutate_structure(rng, example)).encode()
            elif choice == 1:
                body = _mutate_bytes(rng, json.dumps(example).encode())
            elif choice == 2:
                body = _mutate_bytes(rng, valid_proto)
                headers["content_type"] = "application/proto"
            else:
                body = json.dumps(_mutate_structure(rng, example)).encode()
                target = f"/model/methods/{m.name}"
                headers["accept"] = rng.choice(["application/json", "*/*"])
            r = s.client.post(target, body, **headers)
            statuses[r.status] += 1
            assert r.status < 500, (target, body[:300], r.status, r.body[:300])
            if r.status != 200:
                error = r.json()
                assert set(error) == {"code", "message"} and error["message"], r.body
    assert sum(statuses.values()) == PER_METHOD * len(s.service.schema.methods)
    assert statuses[200] > 0 and statuses[400] > 0
    assert s.client.get("/healthz").status == 200
    for path, (example, expected) in checks.items():
        assert s.client.post(path, example).body == expected


def _python_args(s, method: str, example: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The example request as the Python values the client codec encodes."""
    m = s.service.schema.method(method)
    data = s.face.codec.to_proto(m.request, json.dumps(example).encode())
    args, kwargs = s.service.codec.method(method).decode_request(data)
    return args, kwargs
