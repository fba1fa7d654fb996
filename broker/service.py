"""The solution as a service: one rpc per blueprint method over gRPC and HTTP, plus
health, reflection, model info and per-step metrics.

Its proto is generated from the checked plan, so `modelwire stubs` and
`modelwire.connect()` work for a solution as for a model, and a running
solution can be an `address:` model in another blueprint. Its health tells the
truth about its models (`modelwire.broker.health`: a method is NOT_SERVING while
a model it calls is down), and its failed calls are logged bounded
(`modelwire.broker.failures`: each distinct failure once per interval, counted).
Its HTTP face (Connect, the Acumos contract, /docs; `modelwire.hosting.http_face`) runs
each call through the same `Router.execute` as its gRPC handlers, on the same event loop,
and announces itself as

    modelwire broker http on 127.0.0.1:8080
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from modelwire import __version__
from modelwire.broker.failures import FailureLog
from modelwire.broker.fused import FusedModel
from modelwire.broker.health import SolutionHealth
from modelwire.broker.metrics import BrokerMetrics
from modelwire.broker.plan import SolutionPlan
from modelwire.broker.router import Router
from modelwire.codegen.descriptors import file_descriptor
from modelwire.config import BrokerConfig
from modelwire.errors import StepFailed
from modelwire.hosting.host import AioServiceHost, HostSpec, Info, Listen, Service, ServingState
from modelwire.hosting.http_face import HttpFace
from modelwire.hosting.http_host import AioHttpListener, HttpListen
from modelwire.hosting.status import Status, status_of

__all__ = [
    "HTTP_LISTENING",
    "LISTENING",
    "RunningSolution",
    "solution_manifest",
    "start_solution",
]

logger = logging.getLogger(__name__)

LISTENING = "modelwire broker listening on"
HTTP_LISTENING = "modelwire broker http on"


def solution_manifest(plan: SolutionPlan, version: str = "1.0.0") -> dict[str, Any]:
    """What ModelInfoService reports for a solution: enough for `connect()` to be exact."""
    s = plan.schema
    return {
        "format": 1,
        "kind": "solution",
        "name": s.name,
        "version": version,
        "modelwire": __version__,
        "package": s.package,
        "service": f"{s.package}.{s.service}",
        "methods": [
            {
                "name": m.name,
                "rpc": m.rpc,
                "request": m.request,
                "response": m.response,
                "doc": m.doc,
            }
            for m in s.methods
        ],
        "models": {k: {"kind": v.kind, "ref": v.value} for k, v in plan.blueprint.models.items()},
        "schema": s.to_json(),
    }


@dataclass
class RunningSolution:
    """A solution served on this process's event loop, and the router it calls models with."""

    host: AioServiceHost
    router: Router
    metrics: BrokerMetrics
    health: SolutionHealth
    failures: FailureLog

    @property
    def port(self) -> int:
        return self.host.port

    @property
    def address(self) -> str:
        return self.host.address

    @property
    def metrics_port(self) -> int | None:
        return self.host.metrics_port

    @property
    def http_port(self) -> int | None:
        """The HTTP face's bound port; None without one."""
        for face in self.host.faces:
            if isinstance(face, AioHttpListener):
                port: int = face.port
                return port
        return None

    async def stop(self, grace: float | None = None) -> None:
        """NOT_SERVING, let in-flight calls finish (up to `grace` s), close the channels."""
        await self.host.stop(grace)
        await self.router.close()
        self.failures.close()

    async def run(self, announce: Callable[[str], None] | None = None) -> int:
        """Announce, serve until SIGTERM/SIGINT, drain, close the channels; the signal."""
        try:
            return await self.host.run(announce)
        finally:
            await self.router.close()
            self.failures.close()


def _handler(router: Router, method: str, metrics: BrokerMetrics, failures: FailureLog) -> Any:
    async def handle(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        t0 = time.perf_counter()
        remaining = context.time_remaining()
        deadline = time.monotonic() + remaining if remaining is not None else None
        try:
            reply = await router.execute(method, request, deadline)
        except asyncio.CancelledError:
            # the caller's deadline passed or it cancelled: the steps were cancelled with it
            expired = deadline is not None and time.monotonic() >= deadline
            code = "DEADLINE_EXCEEDED" if expired else "CANCELLED"
            metrics.observe_call(method, code, time.perf_counter() - t0)
            raise
        except Exception as exc:
            # a failed step (the status of its model, passed on) or a bug of the broker's
            status = status_of(exc, method)
            if status.internal:
                logger.exception("%s: internal error", method, extra={"rpc": method})
            else:
                _log_failed(failures, method, status, exc)
            metrics.observe_call(method, status.code.name, time.perf_counter() - t0)
            await context.abort(status.code, status.message)
        metrics.observe_call(method, "OK", time.perf_counter() - t0)
        return reply

    return handle


async def _http_call(
    router: Router, failures: FailureLog, method: str, request: bytes, deadline: float | None
) -> bytes:
    """One HTTP call of `method`: the router's, with a failed step logged as over gRPC (the
    face logs internal errors itself, with their traceback, and counts the call)."""
    try:
        return await router.execute(method, request, deadline)
    except Exception as exc:
        status = status_of(exc, method)
        if not status.internal:
            _log_failed(failures, method, status, exc)
        raise


def _log_failed(failures: FailureLog, method: str, status: Status, exc: Exception) -> None:
    """A call that failed in a step (not a bug of the broker's), into the bounded log."""
    step = exc.step if isinstance(exc, StepFailed) else ""
    failures.failed(method, status.code.name, step, status.message)


def _http_face(
    plan: SolutionPlan,
    router: Router,
    failures: FailureLog,
    metrics: BrokerMetrics,
    state: ServingState,
    manifest: dict[str, Any],
    config: BrokerConfig,
) -> AioHttpListener:
    s = plan.schema

    def observe(
        method: str,
        code: str,
        seconds: float,
        request_bytes: int,
        response_bytes: int,
        protocol: str,
    ) -> None:
        metrics.observe_call(method, code, seconds, protocol)

    app = HttpFace(
        s,
        {m.rpc: functools.partial(_http_call, router, failures, m.name) for m in s.methods},
        ready=lambda: state.ready,
        observe=observe,
        metrics=metrics.exposition,
        max_body_bytes=config.max_message_bytes,
        threads=None,
        info=manifest,
    )
    assert config.http_port is not None
    listen = HttpListen(
        config.host,
        config.http_port,
        grace=config.grace_seconds,
        listening=HTTP_LISTENING,
        tls=config.tls,
    )
    return AioHttpListener(app, listen)


async def start_solution(
    plan: SolutionPlan,
    addresses: Mapping[str, str | Sequence[str]],
    config: BrokerConfig,
    *,
    on_unresponsive: Callable[[str, str], None] | None = None,
    fused: Mapping[str, FusedModel] | None = None,
) -> RunningSolution:
    """Serve a checked blueprint whose models run at `addresses` (model name -> host:port,
    or a list of them: one per replica) or are loaded into this process (`fused`, model
    name -> its loaded model), over gRPC and (unless `config.http_port` is None) HTTP.

    `on_unresponsive(model, address)` is told when a model stops answering its health
    checks for `config.liveness_seconds` (its supervisor kills and restarts it).
    """
    metrics = BrokerMetrics(plan.schema.name)
    router = Router(
        plan,
        addresses,
        metrics,
        max_message_bytes=config.max_message_bytes,
        liveness=config.liveness_seconds,
        on_unresponsive=on_unresponsive,
        fused=fused,
    )
    await router.start()
    state = ServingState()
    health = SolutionHealth(plan, router.endpoints, state)
    failures = FailureLog(config.failure_log_seconds)
    s = plan.schema
    full = f"{s.package}.{s.service}"
    rpcs = grpc.method_handlers_generic_handler(
        full,
        {
            m.rpc: grpc.unary_unary_rpc_method_handler(_handler(router, m.name, metrics, failures))
            for m in s.methods
        },
    )
    manifest = solution_manifest(plan)
    spec = HostSpec(
        listening=LISTENING,
        services=(Service(full, rpcs, file_descriptor(s)),),
        listen=Listen(config.host, config.port, config.max_message_bytes, tls=config.tls),
        info=Info(s.name, "1.0.0", manifest),
        metrics=metrics.exposition,
        metrics_port=config.metrics_port,
        grace=config.grace_seconds,
    )
    faces = []
    if config.http_port is not None:
        faces.append(_http_face(plan, router, failures, metrics, state, manifest, config))
    try:
        host = await AioServiceHost(spec, faces, state=state).start()
    except BaseException:
        await router.close()
        raise
    return RunningSolution(host, router, metrics, health, failures)
