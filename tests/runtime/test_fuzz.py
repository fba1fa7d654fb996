"""Random bytes to every rpc of a model with rich types: each is answered INVALID_ARGUMENT (or
OK, when the bytes happen to be an acceptable request), never UNKNOWN or INTERNAL, and the
server stays healthy."""

from __future__ import annotations

import random
from collections import Counter

import grpc
import numpy as np
import pytest

from tests.fixtures.models import rich
from tests.runtime.serving import SERVER_KINDS, Served
from tests.servers import health_status


def _valid_requests(served: Served) -> dict[str, bytes]:
    """One well-formed request per rpc, encoded by the client codec."""
    codec = served.client().codec
    box = rich.Box(0, 0, 2, 3, rich.Kind.DOG)
    detection = rich.Detection(
        [box, rich.Box(1, 1, 4, 4, rich.Kind.BIRD)],
        np.array([0.5, 0.25, 1.0], np.float32),
        {"a": 1, "bb": -300},
        [[1.0, 2.0], [], [3.5]],
        box,
        "note",
        [rich.Kind.CAT, rich.Kind.DOG],
    )
    calls = {
        "summarize": ((detection,), {}),
        "echo": ((detection,), {}),
        "scale": ((np.arange(12, dtype=np.uint8).reshape(3, 4), 2.0, np.int32(-1)), {}),
        "tally": (
            ({1: ["a", "b"], -5: []}, {"w": box}, [[1, 2], [3]], [True, False], b"xyz"),
            {"kind": rich.Kind.BIRD, "limit": 4},
        ),
        "pick": (([rich.Kind.CAT, rich.Kind.BIRD], rich.Kind.DOG), {}),
    }
    return {
        m.rpc: codec.method(m.name).encode_request(*calls[m.name]) for m in codec.schema.methods
    }


def _mutate(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(5)
        if op == 0 and out:
            out[rng.randrange(len(out))] = rng.getrandbits(8)
        elif op == 1:
            out.insert(rng.randint(0, len(out)), rng.getrandbits(8))
        elif op == 2 and out:
            del out[rng.randrange(len(out))]
        elif op == 3:
            out = out[: rng.randint(0, len(out))]
        elif out:  # flip one bit
            i = rng.randrange(len(out))
            out[i] ^= 1 << rng.randrange(8)
    return bytes(out)


def _inputs(rng: random.Random, valid: bytes, count: int) -> list[bytes]:
    """Half random byte strings of length 0-200, half mutations of a valid request."""
    inputs = []
    for _ in range(count):
        if rng.random() < 0.5:
            inputs.append(rng.randbytes(rng.randint(0, 200)))
        else:
            inputs.append(_mutate(rng, valid))
    return inputs


def _fuzz(served: Served, count: int, seed: int) -> Counter[tuple[str, str]]:
    valid = _valid_requests(served)
    assert len(valid) == 5
    names = {m.rpc: m.name for m in served.client().schema.methods}
    seen: Counter[tuple[str, str]] = Counter()
    with grpc.insecure_channel(served.address) as channel:
        for rpc, request in valid.items():
            call = channel.unary_unary(f"/{served.service}/{rpc}")
            call(request, timeout=10)  # the unmutated request is accepted
            rng = random.Random(f"{seed}-{rpc}")
            for data in _inputs(rng, request, count):
                try:
                    call(data, timeout=10)
                except grpc.RpcError as exc:
                    code = exc.code()
                    assert code is grpc.StatusCode.INVALID_ARGUMENT, (
                        f"{rpc}({data!r}) -> {code.name}: {exc.details()}\n{served.stderr()}"
                    )
                    assert exc.details().startswith(f"{names[rpc]}: "), exc.details()
                    seen[(rpc, code.name)] += 1
                else:
                    seen[(rpc, "OK")] += 1
    return seen


def _assert_still_serving(served: Served) -> None:
    assert health_status(served.address) == "SERVING", served.stderr()
    assert served.client().pick([rich.Kind.BIRD], None).name == "BIRD"
    if served.process is not None:
        assert served.process.proc.poll() is None, served.stderr()


@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_fuzz_in_process(shared_server, kind):
    served = shared_server("rich", "in-process", kind)
    seen = _fuzz(served, 1000, seed=20240601)
    assert sum(seen.values()) == 5000
    for rpc in ("Summarize", "Echo", "Scale", "Tally", "Pick"):
        assert seen[(rpc, "INVALID_ARGUMENT")] > 500, seen
    _assert_still_serving(served)


@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_fuzz_serve_subprocess(shared_server, kind):
    served = shared_server("rich", "subprocess", kind)
    seen = _fuzz(served, 200, seed=7)
    assert sum(seen.values()) == 1000
    _assert_still_serving(served)
