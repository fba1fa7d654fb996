"""What the host tests serve: a fixture model's service with no rpcs (health, reflection
and info are the host's), and a second face of the HTTP face's kind, made with the host's
serving state."""

from __future__ import annotations

import socket
import threading

import grpc

from modelwire.codegen.descriptors import file_descriptor
from modelwire.hosting.host import HostSpec, Info, Listen, Service, ServingState
from tests.fixtures.models import echo

SCHEMA, _ = echo.model().named("echo", "1.0.0")
SERVICE = f"{SCHEMA.package}.{SCHEMA.service}"


def spec(**fields: object) -> HostSpec:
    """The echo model's service (no rpcs answered) on 127.0.0.1, a free port."""
    defaults: dict[str, object] = {
        "listening": "test listening on",
        "services": (
            Service(
                SERVICE, grpc.method_handlers_generic_handler(SERVICE, {}), file_descriptor(SCHEMA)
            ),
        ),
        "listen": Listen("127.0.0.1", 0),
        "info": Info("echo", "1.0.0", {"name": "echo"}),
    }
    return HostSpec(**{**defaults, **fields})  # type: ignore[arg-type]


class ReadinessFace:
    """A real second listener: a TCP port that answers each connection with one line,
    `ready` or `not ready`, read from the host's shared state (as /readyz will), and that
    records the hooks the host called, with the state at the time."""

    def __init__(self, state: ServingState, port: int = 0) -> None:
        self.state = state
        self.events: list[tuple[str, object, str]] = []
        self._wanted = port
        self.port = 0
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def announcement(self) -> str:
        return f"readiness on 127.0.0.1:{self.port}"

    def _record(self, hook: str, arg: object) -> None:
        self.events.append((hook, arg, self.state.status.value))

    def start(self) -> None:
        sock = socket.socket()
        try:
            sock.bind(("127.0.0.1", self._wanted))
        except OSError as exc:
            sock.close()
            from modelwire.errors import ConfigError

            raise ConfigError(
                "readiness_port", self._wanted, f"cannot listen ({exc.strerror})"
            ) from None
        sock.listen()
        self._sock, self.port = sock, sock.getsockname()[1]
        self._thread = threading.Thread(target=self._answer, daemon=True)
        self._thread.start()
        self._record("start", None)

    def _answer(self) -> None:
        assert self._sock is not None
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b"ready\n" if self.state.ready else b"not ready\n")

    def set_serving(self, serving: bool) -> None:
        self._record("set_serving", serving)

    def stop(self, grace: float | None) -> None:
        self._record("stop", grace)
        if self._sock is not None:
            self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()
        if self._thread is not None:
            self._thread.join(5)

    def ask(self) -> str:
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as conn:
            return conn.makefile().readline().strip()
