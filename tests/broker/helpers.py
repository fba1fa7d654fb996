"""Real servers for broker tests: model services backed by handler functions, a solution
served in this process, and `modelwire run` as a subprocess.

`HandlerServer` is the seam STYLE.md §11 asks for instead of a mock: a real gRPC server with
a fixture model's schema (health, reflection and ModelInfoService, like `modelwire serve`),
whose rpcs are Python functions that also get the grpc context, so a test can see what a
model cannot: the deadline it was called with and whether its call was cancelled.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.message import Message as PbMessage

from modelwire.broker.check import check_file
from modelwire.broker.fused import load_fused
from modelwire.broker.launch import LISTENING
from modelwire.broker.metrics import BrokerMetrics
from modelwire.broker.service import RunningSolution, start_solution
from modelwire.bundle.model import Model
from modelwire.codegen.descriptors import file_descriptor, message_classes
from modelwire.config import BrokerConfig, ClientTls
from modelwire.hosting.host import HostSpec, Info, Listen, Service, ServiceHost
from tests.servers import ModelwireProcess

# handler(request message, context) -> the reply's fields, or raw reply bytes
Handler = Callable[[Any, grpc.ServicerContext], "Mapping[str, Any] | bytes"]


class HandlerServer:
    """`model`'s service on 127.0.0.1, its rpcs answered by `handlers` (method name -> fn).

    Args:
        model: a fixture model, for its schema only (its functions are not called).
        name: the model's name, as `modelwire dump` would be given it.
        handlers: Python method name -> handler; other methods answer UNIMPLEMENTED.
        port: 0 for a free port, or a fixed one (to restart a server where it was).
        info: serve ModelInfoService (a modelwire service); without it, a client learns the
            schema through reflection alone, as from any gRPC service.
    """

    def __init__(
        self,
        model: Model,
        name: str,
        handlers: Mapping[str, Handler],
        *,
        port: int = 0,
        info: bool = True,
    ) -> None:
        self.schema, _ = model.named(name, "1.0.0")
        self.service = f"{self.schema.package}.{self.schema.service}"
        fdp = file_descriptor(self.schema)
        classes = message_classes(fdp)
        self.calls: list[str] = []  # method names, in the order the calls arrived
        rpcs = {}
        for m in self.schema.methods:
            if m.name not in handlers:
                continue
            rpcs[m.rpc] = grpc.unary_unary_rpc_method_handler(
                self._wrap(m.name, handlers[m.name], classes.get(m.response)),
                request_deserializer=classes.get(m.request).FromString,
                response_serializer=_serialize,
            )
        manifest = {"service": self.service, "schema": self.schema.to_json()}
        spec = HostSpec(
            listening="",
            services=(
                Service(
                    self.service, grpc.method_handlers_generic_handler(self.service, rpcs), fdp
                ),
            ),
            listen=Listen("127.0.0.1", port, 1 << 20),
            info=Info(name, "1.0.0", manifest) if info else None,
        )
        self.host = ServiceHost(spec).start()
        self.port = self.host.port

    def _wrap(
        self, method: str, handler: Handler, reply_cls: type[PbMessage]
    ) -> Callable[[Any, grpc.ServicerContext], PbMessage | bytes]:
        def handle(request: Any, context: grpc.ServicerContext) -> PbMessage | bytes:
            self.calls.append(method)
            reply = handler(request, context)
            return reply if isinstance(reply, bytes) else reply_cls(**reply)

        return handle

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.host.stop(0)


def _serialize(reply: PbMessage | bytes) -> bytes:
    return reply if isinstance(reply, bytes) else reply.SerializeToString()


def write_blueprint(path: Path, text: str, **addresses: str) -> Path:
    """Write blueprint `text` to `path`, each `@name` replaced by `addresses[name]`."""
    for name, address in sorted(addresses.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(f"@{name}", address)
    path.write_text(text)
    return path


class InProcessSolution:
    """A blueprint whose models all run already (`address:`) or are fused (with `fuse`, or
    the blueprint's own `fuse:`), checked and served by `start_solution` on an event loop
    of its own, in a daemon thread."""

    def __init__(self, blueprint: Path, *, fuse: bool = False, **config: Any) -> None:
        plan, bundles, addresses = check_file(blueprint, fuse=fuse)
        self.fused = load_fused({m: p for m, p in bundles.items() if m in plan.fused})
        assert set(bundles) == set(self.fused), "start the models first and give their addresses"
        self.plan = plan
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        cfg = BrokerConfig(**{"port": 0, "http_port": 0, **config})
        self.running: RunningSolution = asyncio.run_coroutine_threadsafe(
            start_solution(plan, addresses, cfg, fused=self.fused), self.loop
        ).result(30)
        self._stopped = False

    @property
    def address(self) -> str:
        return self.running.address

    @property
    def metrics(self) -> BrokerMetrics:
        return self.running.metrics

    @property
    def metrics_port(self) -> int:
        assert self.running.metrics_port is not None
        return self.running.metrics_port

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        asyncio.run_coroutine_threadsafe(self.running.stop(0), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()
        for model in self.fused.values():
            model.close()


def children_of(pid: int) -> list[int]:
    """The live processes whose parent is `pid`."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(entry))
    return sorted(out)


class BrokerProcess(ModelwireProcess):
    """`modelwire run BLUEPRINT --port 0 --http-port 0 ...` as a subprocess, once it announced
    its address.

    Any failure message includes the broker's captured stderr (its log and its models').
    """

    def __init__(
        self,
        blueprint: Path,
        *args: str,
        timeout: float = 60.0,
        env: dict[str, str] | None = None,
        serving: bool = False,
        tls: ClientTls | None = None,
    ) -> None:
        super().__init__(
            "run",
            str(blueprint),
            "--port",
            "0",
            "--http-port",
            "0",
            "--log-format",
            "json",
            *args,
            listening=LISTENING,
            what="run",
            timeout=timeout,
            env={**os.environ, **(env or {})},
            serving=serving,
            tls=tls,
        )

    def signal(self, signum: int, timeout: float = 30.0) -> int | None:
        """Send `signum`; wait for the exit status (None after SIGKILL: nobody cleans up)."""
        self.proc.send_signal(signum)
        code = self.proc.wait(timeout)
        self.drained.wait(10)
        return None if signum == signal.SIGKILL else code

    def close(self) -> None:
        """SIGKILL if still running; stdout is closed, but stderr is not waited for: the
        models, which hold it too, may take their time to follow the broker."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._close_stdout()


class RawClient:
    """Calls a solution's rpcs with protobuf messages built from its own schema (the plan's),
    so a test sees the exact status code and details the solution sends."""

    def __init__(self, solution: InProcessSolution) -> None:
        schema = solution.plan.schema
        self.schema = schema
        self.service = f"{schema.package}.{schema.service}"
        self.classes = message_classes(file_descriptor(schema))
        self.channel = grpc.insecure_channel(solution.address)

    def __call__(self, method: str, *, timeout: float | None = None, **fields: Any) -> Any:
        m = self.schema.method(method)
        call = self.channel.unary_unary(
            f"/{self.service}/{m.rpc}",
            request_serializer=lambda msg: msg.SerializeToString(),
            response_deserializer=self.classes.get(m.response).FromString,
        )
        return call(self.classes.get(m.request)(**fields), timeout=timeout)

    def close(self) -> None:
        self.channel.close()
