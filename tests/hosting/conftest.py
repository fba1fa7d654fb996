"""HTTP face fixtures: real bundles, loaded once, served by a real uvicorn on loopback.

`http_face(model, **options)` builds `HttpFace` from the bundle's schema and the unary
handlers of its `ModelService` (modelwire.runtime.http_handlers), serves it with
`HttpServer` on 127.0.0.1, a free port, and stops it after the test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from modelwire.bundle import dump, load
from modelwire.hosting.http_face import HttpFace
from modelwire.hosting.http_server import HttpServer
from modelwire.runtime.http_handlers import unary_handlers
from modelwire.runtime.service import ModelService
from tests.fixtures.models import echo, faulty, forest, rich, slow
from tests.hosting.client import Client


def echo_model() -> Any:
    from modelwire import Model

    return Model(echo_record=echo.echo_record, echo_tensor=echo.echo_tensor, add=echo.add)


MODELS: dict[str, Callable[[], Any]] = {
    "rich": rich.model,
    "faulty": faulty.model,
    "slow": slow.model,
    "forest": forest.model,
    "echo": echo_model,
}


@dataclass
class Observed:
    """What a face's `observe` hook was told, call by call."""

    calls: list[tuple[str, str, float, int, int, str]] = field(default_factory=list)

    def __call__(
        self, method: str, code: str, seconds: float, nreq: int, nresp: int, protocol: str
    ) -> None:
        self.calls.append((method, code, seconds, nreq, nresp, protocol))


@dataclass
class Served:
    """A face on a real server: `client` talks to it; `service` is the model's gRPC side."""

    face: HttpFace
    server: HttpServer
    service: ModelService
    client: Client
    observed: Observed

    @property
    def name(self) -> str:
        return self.service.service_name

    def connect_path(self, rpc: str) -> str:
        return f"/{self.name}/{rpc}"


@pytest.fixture(scope="session")
def loaded_bundle(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Any]:
    """loaded_bundle(name) -> the LoadedModel of fixture model `name`, dumped and loaded once."""
    root = tmp_path_factory.mktemp("http-bundles")
    made: dict[str, Any] = {}

    def get(name: str) -> Any:
        if name not in made:
            made[name] = load(dump(MODELS[name](), name, root / name))
        return made[name]

    return get


@pytest.fixture
def http_face(loaded_bundle: Callable[[str], Any]) -> Iterator[Callable[..., Served]]:
    """http_face(model, *, max_message_bytes=None, **face_options) -> Served, stopped after."""
    running: list[Served] = []

    def start(model: str, *, max_message_bytes: int | None = None, **options: Any) -> Served:
        service = ModelService(loaded_bundle(model), max_message_bytes=max_message_bytes)
        observed = Observed()
        options.setdefault("observe", observed)
        face = HttpFace(service.schema, unary_handlers(service), **options)
        server = HttpServer(face, "127.0.0.1", 0, grace=1)
        served = Served(face, server, service, Client(server.port), observed)
        running.append(served)
        return served

    yield start
    for s in running:
        s.client.close()
        s.server.stop(0)
        s.face.close()
