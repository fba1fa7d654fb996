"""Execute a checked blueprint: route each call's messages between model services.

For every call of a solution method the router starts all steps at once; each
waits only for the steps it reads from, so independent steps run concurrently.
A step's request is assembled from bytes as the compiled plan's pieces say
(`modelwire.broker.plan.Piece`, executed with `modelwire.broker.splice`):
forwarded untouched where producer and consumer are wire-identical, transcoded
by field name otherwise; the router works out no field numbers or classes
itself. The client's deadline bounds every step; a step's own `timeout` can
only shorten it; `retry` re-sends on UNAVAILABLE. The first step to fail
cancels its siblings, and the call fails with `modelwire.errors.StepFailed`,
naming the step and the model -- never with an empty message passed on.

Each step's call goes to an endpoint picked by health, round robin over the model's
SERVING replicas (`modelwire.broker.endpoints`; a retry goes to the next one): while a
model is down or not answering its health checks, its steps fail at once with
UNAVAILABLE (or retry, as `retry` says), never hang.

Models are reached over gRPC (grpc.aio, raw bytes; TLS as an address model's `tls:` says),
except fused ones (`.fused`): in this process, with Python values between steps."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
from google.protobuf.message import DecodeError as PbDecodeError
from google.protobuf.message import Message as PbMessage

from modelwire.broker.endpoints import Endpoints
from modelwire.broker.fused import FusedModel, FusedStep, compile_fused, run_fused
from modelwire.broker.metrics import BrokerMetrics
from modelwire.broker.plan import Piece, SolutionPlan, Splice, StepPlan
from modelwire.broker.splice import (
    EnumMaps,
    SpliceError,
    copy_field,
    extract,
    merged_payload,
    retag,
    transcode,
    wrap,
)
from modelwire.codegen.descriptors import MessageClass
from modelwire.errors import StepFailed

__all__ = ["Router"]

logger = logging.getLogger(__name__)

_RETRY_BACKOFF = 0.05  # seconds, doubled per attempt
_FUSED_THREADS = 64  # fused steps in flight at once (models that sleep or release the GIL)
Parts = list[bytes | memoryview]
Inputs = Mapping[str | None, bytes]  # the solution's request (None) and the replies so far


def _navigate(msg: PbMessage, names: tuple[str, ...]) -> Any:
    value: Any = msg
    for name in names:
        value = getattr(value, name)
    return value


def _whole(p: Piece, consumer: MessageClass, enums: EnumMaps) -> Callable[[Inputs], bytes]:
    """A request that is one piece: a whole message, forwarded or transcoded."""
    key, numbers, names = p.key, p.numbers, p.names
    if p.how is Splice.PASS:
        return lambda inputs: inputs[key]
    if p.how is Splice.MERGE:
        return lambda inputs: b"".join(merged_payload(inputs[key], extract(inputs[key], numbers)))
    assert p.how is Splice.TRANSCODE, p.how

    def transcoded(inputs: Inputs) -> bytes:
        out = consumer()
        transcode(_navigate(p.parser.FromString(inputs[key]), names), out, enums)
        return out.SerializeToString()

    return transcoded


def _field(p: Piece, consumer: MessageClass, enums: EnumMaps) -> Callable[[Inputs], Parts]:
    """One field of a request, as the records that encode it."""
    key, numbers, names, number = p.key, p.numbers, p.names, p.number
    if p.how is Splice.WRAP:  # a whole message becomes the field, never decoded
        return lambda inputs: wrap(number, inputs[key])
    if p.how is Splice.RETAG:  # the field's records under the consumer's number

        def retagged(inputs: Inputs) -> Parts:
            buf = inputs[key]
            return retag(buf, extract(buf, numbers), number)

        return retagged
    assert p.how is Splice.TRANSCODE_FIELD, p.how

    def transcoded(inputs: Inputs) -> Parts:
        msg = p.parser.FromString(inputs[key])
        out = consumer()
        if names:
            copy_field(_navigate(msg, names[:-1]), names[-1], out, p.field, enums)
        else:
            sub = getattr(out, p.field)
            sub.SetInParent()
            transcode(msg, sub, enums)
        return [out.SerializeToString()]

    return transcoded


def _request(step: StepPlan, enums: EnumMaps) -> Callable[[Inputs], bytes]:
    """How `step`'s request bytes are made from the bytes at hand."""
    consumer = step.request_class
    if step.whole is not None:
        [piece] = step.pieces
        return _whole(piece, consumer, enums)
    fields = [_field(p, consumer, enums) for p in step.pieces]

    def assembled(inputs: Inputs) -> bytes:
        parts: Parts = []
        for f in fields:
            parts.extend(f(inputs))
        return b"".join(parts)

    return assembled


def _reply(p: Piece) -> Callable[[Inputs], bytes]:
    """The solution's reply, cut from the output step's reply (never decoded)."""
    key, numbers = p.key, p.numbers
    if p.how is Splice.PASS:
        return lambda results: results[key]
    if p.how is Splice.MERGE:
        return lambda results: b"".join(
            merged_payload(results[key], extract(results[key], numbers))
        )
    assert p.how is Splice.RETAG, p.how
    return lambda results: b"".join(retag(results[key], extract(results[key], numbers), p.number))


class Router:
    """Runs a solution's methods against running model services.

    Args:
        plan: the checked blueprint.
        addresses: model name -> `host:port` of its running service (a list: of each
            of its replicas).
        metrics: where to count step calls and forwarded/transcoded edges.
        max_message_bytes: the largest message sent to or accepted from a model.
        liveness: seconds a model may leave its health checks unanswered before
            `on_unresponsive` is told.
        on_unresponsive: told (model, address) when a model stops answering (its
            supervisor kills and restarts it); None where nobody supervises the models.
        fused: the models loaded into this process, by name (not in `addresses`).
    """

    def __init__(
        self,
        plan: SolutionPlan,
        addresses: Mapping[str, str | Sequence[str]],
        metrics: BrokerMetrics | None = None,
        *,
        max_message_bytes: int = 256 * 1024 * 1024,
        liveness: float = 3.0,
        on_unresponsive: Callable[[str, str], None] | None = None,
        fused: Mapping[str, FusedModel] | None = None,
    ) -> None:
        self.plan = plan
        self.endpoints = Endpoints(
            addresses,
            max_message_bytes=max_message_bytes,
            liveness=liveness,
            on_unresponsive=on_unresponsive,
            tls={n: m.tls for n, m in plan.blueprint.models.items() if m.tls is not None},
        )
        self.metrics = metrics or BrokerMetrics(plan.schema.name)
        self._requests = {
            name: {s.name: _request(s, plan.enum_maps) for s in m.steps.values()}
            for name, m in plan.methods.items()
        }
        self._replies = {name: _reply(m.reply) for name, m in plan.methods.items()}
        self._edges = {
            name: [(s.name, s.forwarded, s.transcoded) for s in m.steps.values()]
            for name, m in plan.methods.items()
        }
        self.fused = dict(fused or {})
        self._fused: dict[str, dict[str, FusedStep]] = {
            name: compile_fused(m, self.fused, self.metrics, self._builder(name))
            for name, m in plan.methods.items()
        }
        self._pool = (
            ThreadPoolExecutor(_FUSED_THREADS, thread_name_prefix="modelwire-fused")
            if self.fused
            else None
        )

    def _builder(self, method: str) -> Callable[[StepPlan, Inputs], bytes]:
        return lambda s, results: self._build(method, s, results)

    async def start(self) -> None:
        """Open one channel per model service, and start watching their health."""
        await self.endpoints.start()

    async def close(self) -> None:
        await self.endpoints.close()
        if self._pool is not None:
            # a fused call still running cannot be interrupted; it ends on its own
            self._pool.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------ one call

    def _where(self, s: StepPlan) -> str:
        """`step 's' (m.method at ADDRESS)`: the step, its model, where that runs now."""
        if s.model in self.fused:
            return f"step {s.name!r} ({s.model}.{s.method.name}, fused)"
        endpoints = self.endpoints.models[s.model].endpoints
        at = f" at {endpoints[0].address}" if endpoints else ""
        return f"step {s.name!r} ({s.model}.{s.method.name}{at})"

    def _build(self, method: str, s: StepPlan, results: Inputs) -> bytes:
        """The request of step `s`, from the replies it reads."""
        where = self._where(s)
        try:
            return self._requests[method][s.name](results)
        except (SpliceError, PbDecodeError) as exc:
            raise StepFailed(
                f"{method}: {where}: its request could not be built from the replies it reads "
                f"({exc})",
                method=method,
                step=s.name,
                status="INTERNAL",
            ) from exc
        except Exception as exc:
            # a bug of ours, not the models': the traceback stays in the broker's log
            logger.exception(
                "%s: building the request of step %s failed",
                method,
                s.name,
                extra={"rpc": method, "step": s.name},
            )
            raise StepFailed(
                f"{method}: {where}: its request could not be built (internal error; "
                "see the broker's log)",
                method=method,
                step=s.name,
                status="INTERNAL",
            ) from exc

    async def _run_step(
        self, method: str, s: StepPlan, results: dict[str | None, bytes], deadline: float | None
    ) -> None:
        request = self._build(method, s, results)
        model = self.endpoints.models[s.model]
        attempt = 0
        while True:
            timeout = None
            by_step = False
            if deadline is not None or s.timeout is not None:
                if deadline is not None:
                    timeout = deadline - time.monotonic()
                by_step = s.timeout is not None and (timeout is None or s.timeout < timeout)
                if s.timeout is not None:
                    timeout = s.timeout if timeout is None else min(timeout, s.timeout)
                if timeout is not None and timeout <= 0:
                    raise StepFailed(
                        f"{method}: {self._where(s)}: no time left",
                        method=method,
                        step=s.name,
                        status="DEADLINE_EXCEEDED",
                    )
            endpoint = model.pick()
            tries = f" after {attempt + 1} attempts" if attempt else ""
            if endpoint is None:
                # down, restarting, or hung: fail at once rather than wait for the deadline
                self.metrics.observe_step(method, s.name, "UNAVAILABLE", 0.0, len(request), 0)
                if await self._pause_to_retry(s, attempt, deadline):
                    attempt += 1
                    continue
                raise StepFailed(
                    f"{method}: step {s.name!r} ({s.model}.{s.method.name}) failed{tries}: "
                    f"UNAVAILABLE: {model.why_not()}",
                    method=method,
                    step=s.name,
                    status="UNAVAILABLE",
                )
            where = f"step {s.name!r} ({s.model}.{s.method.name} at {endpoint.address})"
            t0 = time.perf_counter()
            try:
                reply: bytes = await endpoint.call(s.rpc_path)(request, timeout=timeout)
            except grpc.aio.AioRpcError as exc:
                code = exc.code()
                self.metrics.observe_step(
                    method, s.name, code.name, time.perf_counter() - t0, len(request), 0
                )
                self.metrics.count_replica(s.model, endpoint.replica, code.name)
                if code is grpc.StatusCode.UNAVAILABLE and await self._pause_to_retry(
                    s, attempt, deadline
                ):
                    attempt += 1
                    continue
                details = exc.details() or "(no details)"
                if code is grpc.StatusCode.DEADLINE_EXCEEDED and by_step:
                    details += f" (the step's timeout is {s.timeout:g} s)"
                raise StepFailed(
                    f"{method}: {where} failed{tries}: {code.name}: {details}",
                    method=method,
                    step=s.name,
                    status=code.name,
                ) from None
            except asyncio.CancelledError:
                # a sibling failed, or the caller went away: the model's call is cancelled too
                self.metrics.observe_step(
                    method, s.name, "CANCELLED", time.perf_counter() - t0, len(request), 0
                )
                self.metrics.count_replica(s.model, endpoint.replica, "CANCELLED")
                raise
            self.metrics.observe_step(
                method, s.name, "OK", time.perf_counter() - t0, len(request), len(reply)
            )
            self.metrics.count_replica(s.model, endpoint.replica, "OK")
            results[s.name] = reply
            return

    @staticmethod
    async def _pause_to_retry(s: StepPlan, attempt: int, deadline: float | None) -> bool:
        """Wait before the next attempt if `retry` and the deadline leave one; whether to."""
        if attempt >= s.retry:
            return False
        pause = _RETRY_BACKOFF * 2**attempt
        if deadline is not None and time.monotonic() + pause >= deadline:
            return False
        await asyncio.sleep(pause)
        return True

    async def _run_fused(
        self,
        steps: list[FusedStep],
        results: dict[str | None, bytes],
        values: dict[str, Any],
        deadline: float | None,
    ) -> None:
        assert self._pool is not None
        await run_fused(self._pool, steps, results, values, deadline)

    async def execute(self, method: str, request: bytes, deadline: float | None) -> bytes:
        """Run one call of `method`.

        Raises:
            StepFailed: a step failed (its status is the one the caller gets: the step's
                model's, or the broker's own when it could not make the step's request).
        """
        plan = self.plan.methods[method]
        results: dict[str | None, bytes] = {None: request}
        values: dict[str, Any] = {}  # the fused steps' return values
        fused = self._fused[method]
        if plan.chain:
            # one step after another: no concurrency to gain, so no tasks to pay for;
            # consecutive fused steps (without a timeout of their own) share one hop
            group: list[FusedStep] = []
            for s in plan.steps.values():
                f = fused.get(s.name)
                if f is not None and s.timeout is None:
                    group.append(f)
                    continue
                if group:
                    await self._run_fused(group, results, values, deadline)
                    group = []
                if f is not None:
                    await self._run_fused([f], results, values, deadline)
                else:
                    await self._run_step(method, s, results, deadline)
            if group:
                await self._run_fused(group, results, values, deadline)
            self.metrics.count_call_edges(method, self._edges[method])
            return self._replies[method](results)
        tasks: dict[str, asyncio.Task[None]] = {}

        async def run(s: StepPlan) -> None:
            if s.deps:
                await asyncio.gather(*(tasks[d] for d in s.deps))
            f = fused.get(s.name)
            if f is not None:
                await self._run_fused([f], results, values, deadline)
            else:
                await self._run_step(method, s, results, deadline)

        for name, s in plan.steps.items():  # topological order: dependencies exist first
            tasks[name] = asyncio.ensure_future(run(s))
        try:
            await asyncio.gather(*tasks.values())
        except BaseException:
            for t in tasks.values():
                t.cancel()
            await asyncio.gather(*tasks.values(), return_exceptions=True)
            raise
        self.metrics.count_call_edges(method, self._edges[method])
        return self._replies[method](results)
