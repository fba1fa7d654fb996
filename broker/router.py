"""Execute a checked blueprint: route each call's messages between model services.

For every call of a solution method the router starts all steps at once; each
waits only for the steps it reads from, so independent steps run concurrently.
A step's request is built from bytes (`modelwire.broker.splice`): forwarded
untouched where producer and consumer are wire-identical, transcoded by field
name otherwise. The client's deadline bounds every step; a step's own
`timeout` can only shorten it; `retry` re-sends on UNAVAILABLE. The first step
to fail cancels its siblings, and the call fails with a status naming the step
and the model -- never with an empty message passed on.

The router reaches models only over gRPC (grpc.aio channels, raw bytes).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc
import networkx as nx
from google.protobuf.message import DecodeError as PbDecodeError
from google.protobuf.message import Message as PbMessage

from modelwire.broker.metrics import BrokerMetrics
from modelwire.broker.plan import MethodPlan, SolutionPlan, Source, StepPlan
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
from modelwire.codegen.compat import Typed
from modelwire.codegen.descriptors import (
    MessageClass,
    MessageClasses,
    file_descriptor,
    message_classes,
)
from modelwire.codegen.schema import MessageType, ModelSchema, OptionalType

__all__ = ["Router", "StepFailed"]

logger = logging.getLogger(__name__)

_RETRY_BACKOFF = 0.05  # seconds, doubled per attempt
_RECONNECT_MS = 100
Parts = list[bytes | memoryview]


class StepFailed(Exception):
    """A step's call failed; carries the status the solution's caller gets."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(message)


@dataclass(frozen=True)
class _Extractor:
    """How to get a source's value out of the bytes it lives in."""

    key: str | None  # the step, or None for the solution's input
    numbers: tuple[int, ...]  # the field path as field numbers
    names: tuple[str, ...]
    root: MessageClass  # class that parses the source's bytes (for transcoding)


@dataclass(frozen=True)
class _Builder:
    """How to build one step's request bytes from its sources."""

    step: StepPlan
    build: Callable[[Mapping[str | None, bytes]], bytes]
    forwarded: int  # edges whose bytes are forwarded untouched
    transcoded: int


def _numbers(root: Typed, names: tuple[str, ...]) -> tuple[int, ...]:
    out = []
    t = root.type
    for name in names:
        inner = t.item if isinstance(t, OptionalType) else t
        assert isinstance(inner, MessageType)
        f = next(f for f in root.schema.message(inner.name).fields if f.name == name)
        out.append(f.number)
        t = f.type
    return tuple(out)


def _navigate(msg: PbMessage, names: tuple[str, ...]) -> Any:
    value: Any = msg
    for name in names:
        value = getattr(value, name)
    return value


def _forward_piece(ex: _Extractor, number: int) -> Callable[[Mapping[str | None, bytes]], Parts]:
    """A consumer field filled with a source's bytes, re-tagged, never decoded."""
    if not ex.numbers:  # a whole message becomes the field

        def whole(inputs: Mapping[str | None, bytes]) -> Parts:
            return wrap(number, inputs[ex.key])

        return whole

    def field(inputs: Mapping[str | None, bytes]) -> Parts:
        buf = inputs[ex.key]
        return retag(buf, extract(buf, ex.numbers), number)

    return field


class Router:
    """Runs a solution's methods against running model services.

    Args:
        plan: the checked blueprint.
        addresses: model name -> `host:port` of its running service.
        metrics: where to count step calls and forwarded/transcoded edges.
        max_message_bytes: the largest message sent to or accepted from a model.
    """

    def __init__(
        self,
        plan: SolutionPlan,
        addresses: Mapping[str, str],
        metrics: BrokerMetrics | None = None,
        *,
        max_message_bytes: int = 256 * 1024 * 1024,
    ) -> None:
        self.plan = plan
        self.addresses = dict(addresses)
        self.metrics = metrics or BrokerMetrics(plan.schema.name)
        self._max = max_message_bytes
        self._classes: dict[int, MessageClasses] = {}
        self._enums = EnumMaps()
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._calls: dict[tuple[str, str], Any] = {}
        self.builders: dict[str, dict[str, _Builder]] = {
            name: {s.name: self._builder(m, s) for s in m.steps.values()}
            for name, m in plan.methods.items()
        }
        self._outputs = {name: self._output(m) for name, m in plan.methods.items()}
        self._where = {
            s.name: f"step {s.name!r} ({s.model}.{s.method.name} at {self.addresses.get(s.model)})"
            for m in plan.methods.values()
            for s in m.steps.values()
        }
        # a method whose steps form one path runs them inline, without tasks
        self._chains = {
            name: all(len(gen) == 1 for gen in nx.topological_generations(m.graph))
            and all(len(s.deps) <= 1 for s in m.steps.values())
            for name, m in plan.methods.items()
        }
        self._edges = {
            name: [(b.step.name, b.forwarded, b.transcoded) for b in bs.values()]
            for name, bs in self.builders.items()
        }

    # ------------------------------------------------------------ set-up

    def classes(self, schema: ModelSchema) -> MessageClasses:
        got = self._classes.get(id(schema))
        if got is None:
            got = self._classes[id(schema)] = message_classes(file_descriptor(schema))
        return got

    def _root(self, method: MethodPlan, source: Source) -> tuple[Typed, MessageClass]:
        if source.step is None:
            req = method.request
            assert isinstance(req.type, MessageType)
            return req, self.classes(req.schema).get(req.type.name)
        step = method.steps[source.step]
        resp = step.response
        assert isinstance(resp.type, MessageType)
        return resp, self.classes(resp.schema).get(resp.type.name)

    def _extractor(self, method: MethodPlan, source: Source) -> _Extractor:
        root, cls = self._root(method, source)
        return _Extractor(source.step, _numbers(root, source.path), source.path, cls)

    def _builder(self, method: MethodPlan, step: StepPlan) -> _Builder:
        req = step.request
        assert isinstance(req.type, MessageType)
        consumer = self.classes(req.schema).get(req.type.name)
        if step.whole is not None:
            ex = self._extractor(method, step.whole)
            if step.forward:
                if not ex.numbers:
                    return _Builder(step, lambda inputs: inputs[ex.key], 1, 0)

                def forward_sub(inputs: Mapping[str | None, bytes]) -> bytes:
                    buf = inputs[ex.key]
                    return b"".join(merged_payload(buf, extract(buf, ex.numbers)))

                return _Builder(step, forward_sub, 1, 0)

            def transcode_whole(inputs: Mapping[str | None, bytes]) -> bytes:
                src = _navigate(ex.root.FromString(inputs[ex.key]), ex.names)
                out = consumer()
                transcode(src, out, self._enums)
                return out.SerializeToString()

            return _Builder(step, transcode_whole, 0, 1)

        pieces: list[Callable[[Mapping[str | None, bytes]], Parts]] = []
        forwarded = transcoded = 0
        for fi in step.fields:
            ex = self._extractor(method, fi.source)
            if fi.forward:
                forwarded += 1
                pieces.append(_forward_piece(ex, fi.number))
                continue
            transcoded += 1

            def piece(
                inputs: Mapping[str | None, bytes], ex: _Extractor = ex, field: str = fi.field
            ) -> Parts:
                msg = ex.root.FromString(inputs[ex.key])
                out = consumer()
                if ex.names:
                    parent = _navigate(msg, ex.names[:-1])
                    copy_field(parent, ex.names[-1], out, field, self._enums)
                else:
                    sub = getattr(out, field)
                    sub.SetInParent()
                    transcode(msg, sub, self._enums)
                return [out.SerializeToString()]

            pieces.append(piece)

        def build_fields(inputs: Mapping[str | None, bytes]) -> bytes:
            parts: Parts = []
            for p in pieces:
                parts.extend(p(inputs))
            return b"".join(parts)

        return _Builder(step, build_fields, forwarded, transcoded)

    def _output(self, method: MethodPlan) -> Callable[[Mapping[str | None, bytes]], bytes]:
        out = method.output
        ex = self._extractor(method, out)
        if not ex.numbers:
            return lambda results: results[ex.key]
        t = out.type.type.item if isinstance(out.type.type, OptionalType) else out.type.type
        if isinstance(t, MessageType):
            return lambda results: b"".join(
                merged_payload(results[ex.key], extract(results[ex.key], ex.numbers))
            )
        return lambda results: b"".join(
            retag(results[ex.key], extract(results[ex.key], ex.numbers), 1)
        )

    async def start(self) -> None:
        """Open one channel per model service."""
        options = [
            ("grpc.max_send_message_length", self._max),
            ("grpc.max_receive_message_length", self._max),
            # a restarted model is reached again within ~0.1 s, so that `retry` (on
            # UNAVAILABLE) helps; grpc's default waits 1 s, then 1.6 s, ... before reconnecting
            ("grpc.initial_reconnect_backoff_ms", _RECONNECT_MS),
            ("grpc.min_reconnect_backoff_ms", _RECONNECT_MS),
            ("grpc.max_reconnect_backoff_ms", 2000),
        ]
        for model, address in self.addresses.items():
            if model not in self._channels:
                self._channels[model] = grpc.aio.insecure_channel(address, options=options)

    async def close(self) -> None:
        for ch in self._channels.values():
            await ch.close()
        self._channels.clear()
        self._calls.clear()

    def _call(self, step: StepPlan) -> Any:
        key = (step.model, step.rpc_path)
        call = self._calls.get(key)
        if call is None:
            call = self._calls[key] = self._channels[step.model].unary_unary(step.rpc_path)
        return call

    # ------------------------------------------------------------ one call

    async def _run_step(
        self, method: str, b: _Builder, results: dict[str | None, bytes], deadline: float | None
    ) -> None:
        s = b.step
        where = self._where[s.name]
        try:
            request = b.build(results)
        except (SpliceError, PbDecodeError) as exc:
            raise StepFailed(
                grpc.StatusCode.INTERNAL,
                f"{method}: {where}: its request could not be built from the replies it reads "
                f"({exc})",
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
                grpc.StatusCode.INTERNAL,
                f"{method}: {where}: its request could not be built (internal error; "
                "see the broker's log)",
            ) from exc
        attempt = 0
        call = self._call(s)
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
                        grpc.StatusCode.DEADLINE_EXCEEDED, f"{method}: {where}: no time left"
                    )
            t0 = time.perf_counter()
            try:
                reply: bytes = await call(request, timeout=timeout)
            except grpc.aio.AioRpcError as exc:
                code = exc.code()
                self.metrics.observe_step(
                    method, s.name, code.name, time.perf_counter() - t0, len(request), 0
                )
                if code is grpc.StatusCode.UNAVAILABLE and attempt < s.retry:
                    pause = _RETRY_BACKOFF * 2**attempt
                    if deadline is None or time.monotonic() + pause < deadline:
                        attempt += 1
                        await asyncio.sleep(pause)
                        continue
                tries = f" after {attempt + 1} attempts" if attempt else ""
                details = exc.details() or "(no details)"
                if code is grpc.StatusCode.DEADLINE_EXCEEDED and by_step:
                    details += f" (the step's timeout is {s.timeout:g} s)"
                raise StepFailed(
                    code, f"{method}: {where} failed{tries}: {code.name}: {details}"
                ) from None
            except asyncio.CancelledError:
                # a sibling failed, or the caller went away: the model's call is cancelled too
                self.metrics.observe_step(
                    method, s.name, "CANCELLED", time.perf_counter() - t0, len(request), 0
                )
                raise
            self.metrics.observe_step(
                method, s.name, "OK", time.perf_counter() - t0, len(request), len(reply)
            )
            results[s.name] = reply
            return

    async def execute(self, method: str, request: bytes, deadline: float | None) -> bytes:
        """Run one call of `method`; raises StepFailed with the status to return."""
        builders = self.builders[method]
        plan = self.plan.methods[method]
        results: dict[str | None, bytes] = {None: request}
        if self._chains[method]:
            # one step after another: no concurrency to gain, so no tasks to pay for
            for b in builders.values():
                await self._run_step(method, b, results, deadline)
            self.metrics.count_call_edges(method, self._edges[method])
            return self._outputs[method](results)
        tasks: dict[str, asyncio.Task[None]] = {}

        async def run(b: _Builder) -> None:
            if b.step.deps:
                await asyncio.gather(*(tasks[d] for d in b.step.deps))
            await self._run_step(method, b, results, deadline)

        for name in plan.steps:  # topological order: dependencies exist first
            tasks[name] = asyncio.ensure_future(run(builders[name]))
        try:
            await asyncio.gather(*tasks.values())
        except BaseException:
            for t in tasks.values():
                t.cancel()
            await asyncio.gather(*tasks.values(), return_exceptions=True)
            raise
        self.metrics.count_call_edges(method, self._edges[method])
        return self._outputs[method](results)
