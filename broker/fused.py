"""Fused models: bundles loaded into the broker's process, and their steps run there.

A fused model is another kind of endpoint for the router: where an unfused step sends
its request bytes over gRPC, a fused step calls the model's function directly, with
the runtime's own call path (`modelwire.runtime.service.ModelService`: decoding,
batching, encoding, and the errors a model service answers with), in a thread of the
broker's pool, so a model that blocks does not block the event loop and independent
steps run at once (truly at once for models that release the GIL: numpy, OpenCV, a
sleep).

A fused step's request is made of Python values where it reads only other fused
steps (`modelwire.broker.fused_values`), and of bytes otherwise (the solution's
request, an unfused step's reply), decoded as a model service decodes them. Its
reply stays a Python value for the fused steps after it, and is encoded only where
bytes are needed: for an unfused step, or as the solution's reply.

A step whose model has answered within 0.5 ms 16 times in a row runs on the event loop
itself instead, where the hop to a thread would cost more than the call; the first
call there that takes longer sends it back to threads for good. Batched methods and
steps with a `timeout` always run in threads.

A step that fails fails as it does over gRPC: the same status and message (the
model service's, passed on by the router), naming the step and the model.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelwire.broker.fused_values import NoValuePath, ValueRequest, value_request
from modelwire.broker.metrics import BrokerMetrics
from modelwire.broker.plan import MethodPlan, StepPlan
from modelwire.bundle.manifest import CODE_DIR
from modelwire.codegen.schema import Method
from modelwire.codegen.values import ValueCodec
from modelwire.errors import ModelwireError, ServiceError, StepFailed

if TYPE_CHECKING:
    from modelwire.runtime.service import ModelService

__all__ = ["FusedModel", "FusedStep", "compile_fused", "load_fused", "run_fused"]

logger = logging.getLogger(__name__)

Inputs = Mapping[str | None, bytes]

# A step runs on the event loop itself once its model answered this quickly _LEARN times
# in a row (in threads): a hop to a thread and back costs ~0.15 ms on a loaded machine,
# several times the call of a small model. The first call on the loop that takes longer
# sends the step back to threads for good, so a model that blocks holds the loop at most
# once, that long.
_INLINE_SECONDS = 0.0005
_LEARN = 16


class FusedModel:
    """A model loaded from its bundle into this process, called with Python values."""

    def __init__(self, name: str, path: Path, service: ModelService) -> None:
        self.name = name
        self.path = path
        self.service = service

    @classmethod
    def load(cls, name: str, path: Path, *, max_message_bytes: int | None = None) -> FusedModel:
        """Load the bundle at `path` as model `name`.

        Raises:
            ServiceError: it cannot be loaded here (the bundle's own error, quoted).
        """
        from modelwire.bundle import load
        from modelwire.runtime.service import ModelService

        _join_packages(path)
        try:
            loaded = load(path)
        except ModelwireError as exc:
            raise ServiceError(
                f"model {name!r} ({path}) could not be loaded into the broker: {exc}",
                target=str(path),
            ) from exc
        return cls(name, path, ModelService(loaded, max_message_bytes=max_message_bytes))

    def close(self) -> None:
        self.service.close()


def _join_packages(path: Path) -> None:
    """Let packages that another fused model's local code imported already find this
    bundle's modules too.

    Each bundle's code/ goes on `sys.path`, but a package (`tests/__init__.py`) is
    imported once, from the first bundle that has it, and its `__path__` would hide the
    modules only a later bundle ships. `modelwire.broker.fusing` made sure that files at
    the same path hold the same source, so extending `__path__` only adds modules.
    """
    code = Path(path).resolve() / CODE_DIR
    if not code.is_dir():
        return  # a zipped bundle, or one without local code: nothing to join
    for init in sorted(code.rglob("__init__.py")):
        package = init.parent
        dotted = ".".join(package.relative_to(code).parts)
        module = sys.modules.get(dotted)
        search = getattr(module, "__path__", None)
        if isinstance(search, list) and str(package) not in search:
            search.append(str(package))


def load_fused(
    bundles: Mapping[str, Path], *, max_message_bytes: int | None = None
) -> dict[str, FusedModel]:
    """Load every bundle (model -> path) into this process, in order.

    Raises:
        ServiceError: one could not be loaded (those loaded before it are closed).
    """
    loaded: dict[str, FusedModel] = {}
    try:
        for name, path in bundles.items():
            t0 = time.perf_counter()
            loaded[name] = FusedModel.load(name, path, max_message_bytes=max_message_bytes)
            logger.info(
                "model %s fused into the broker (%s, loaded in %.2f s)",
                name,
                path,
                time.perf_counter() - t0,
                extra={"model": name},
            )
    except BaseException:
        for model in loaded.values():
            model.close()
        raise
    return loaded


class FusedStep:
    """One fused step of a solution method, compiled: how its arguments are made, and
    whether its reply must also be bytes.

    Args:
        method: the solution's method.
        step: the step's plan.
        model: the fused model it calls.
        values: its arguments from the fused steps it reads, or None to decode bytes.
        request: its request bytes from the replies at hand (when `values` is None).
        encode: whether its reply is needed as bytes (an unfused reader, the output).
        metrics: where the step's call is counted.
    """

    def __init__(
        self,
        method: str,
        step: StepPlan,
        model: FusedModel,
        values: ValueRequest | None,
        request: Callable[[Inputs], bytes],
        encode: bool,
        metrics: BrokerMetrics,
    ) -> None:
        self.method = method
        self.step = step
        self.model = model
        self.values = values
        self.request = request
        self.encode = encode
        self.metrics = metrics
        self.where = f"step {step.name!r} ({step.model}.{step.method.name}, fused)"
        # batched methods wait for their batch, and a step's own timeout needs a thread
        self._may_inline = step.method.name not in model.service.batching and step.timeout is None
        self._quick = 0  # calls in a row within _INLINE_SECONDS (-1: one took longer)

    @property
    def inline(self) -> bool:
        """Whether to run on the event loop itself: the last _LEARN calls (in threads)
        each took under _INLINE_SECONDS, less than a hop to a thread costs, and none on
        the loop took longer."""
        return self._quick >= _LEARN

    def _learn(self, seconds: float) -> None:
        if self._quick < 0:
            return
        if not self._may_inline:
            self._quick = -1
        elif seconds <= _INLINE_SECONDS:
            self._quick += 1
        elif self.inline:
            self._quick = -1  # it held the loop: threads from now on, for good
        else:
            self._quick = 0  # in a thread, a wait for the GIL may be all it was

    def run(
        self, results: dict[str | None, bytes], values: dict[str, Any], deadline: float | None
    ) -> None:
        """Call the model (from a worker thread, or on the loop once `inline`): its value
        into `values`, and its reply bytes into `results` where they are needed.

        Raises:
            StepFailed: the step failed, with the status its model service would answer.
        """
        s, method = self.step, self.method
        if deadline is not None and deadline <= time.monotonic():
            raise StepFailed(
                f"{method}: {self.where}: no time left",
                method=method,
                step=s.name,
                status="DEADLINE_EXCEEDED",
            )
        service = self.model.service
        name = s.method.name
        t0 = time.perf_counter()
        sent = received = 0
        try:
            if self.values is not None:
                try:
                    args, kwargs = self.values(values)
                except Exception as exc:
                    raise self._unbuildable(exc) from exc
            else:
                request = self.request(results)
                sent = len(request)
                args, kwargs = service.decode_request(name, request)
            value = service.call_values(name, args, kwargs, deadline)
            if self.encode:
                reply = service.encode_reply(name, value)
                received = len(reply)
                results[s.name] = reply
        except StepFailed:
            self.metrics.observe_step(method, s.name, "INTERNAL", time.perf_counter() - t0, 0, 0)
            raise
        except Exception as exc:
            code, message = service.failed(name, exc)
            self.metrics.observe_step(method, s.name, code.name, time.perf_counter() - t0, sent, 0)
            raise StepFailed(
                f"{method}: {self.where} failed: {code.name}: {message}",
                method=method,
                step=s.name,
                status=code.name,
            ) from None
        values[s.name] = value
        seconds = time.perf_counter() - t0
        self._learn(seconds)
        self.metrics.observe_step(method, s.name, "OK", seconds, sent, received)

    def _unbuildable(self, exc: Exception) -> StepFailed:
        # a bug of ours, not the model's: the traceback stays in the broker's log
        logger.error(
            "%s: building the arguments of fused step %s failed",
            self.method,
            self.step.name,
            exc_info=exc,
            extra={"rpc": self.method, "step": self.step.name},
        )
        return StepFailed(
            f"{self.method}: {self.where}: its arguments could not be made from the values "
            "it reads (internal error; see the broker's log)",
            method=self.method,
            step=self.step.name,
            status="INTERNAL",
        )


def compile_fused(
    plan: MethodPlan,
    fused: Mapping[str, FusedModel],
    metrics: BrokerMetrics,
    build: Callable[[StepPlan, Inputs], bytes],
) -> dict[str, FusedStep]:
    """The fused steps of one solution method, each told where its arguments come from.

    Args:
        plan: the method's plan.
        fused: the models loaded into the broker, by name.
        metrics: where the steps' calls are counted.
        build: a step's request bytes from the replies at hand (the router's, which
            names the step when they cannot be made).
    """
    producers: dict[str, tuple[Method, ValueCodec]] = {}
    by_values: dict[str, ValueRequest | None] = {}
    for s in plan.steps.values():  # topological order: every producer comes first
        model = fused.get(s.model)
        if model is None:
            continue
        codec = model.service.codec
        try:
            by_values[s.name] = value_request(s, producers, codec)
        except NoValuePath as why:
            logger.debug("%s: fused step %s is fed bytes: %s", plan.name, s.name, why)
            by_values[s.name] = None
        producers[s.name] = (s.method, codec)
    # the replies some reader takes as bytes: an unfused step, a fused one fed bytes,
    # and the solution's own reply
    as_bytes = {plan.reply.key}
    for s in plan.steps.values():
        if by_values.get(s.name) is None:
            as_bytes.update(p.key for p in s.pieces)
    return {
        name: FusedStep(
            plan.name,
            plan.steps[name],
            fused[plan.steps[name].model],
            request_values,
            _bound(build, plan.steps[name]),
            name in as_bytes,
            metrics,
        )
        for name, request_values in by_values.items()
    }


def _bound(build: Callable[[StepPlan, Inputs], bytes], s: StepPlan) -> Callable[[Inputs], bytes]:
    return lambda results: build(s, results)


async def run_fused(
    pool: Executor,
    steps: list[FusedStep],
    results: dict[str | None, bytes],
    values: dict[str, Any],
    deadline: float | None,
) -> None:
    """Run fused steps one after another in one job of `pool`, never on the loop.

    A single step's `timeout` (and the call's deadline) bound the wait; a model still
    running then cannot be interrupted, and its result is dropped.

    Raises:
        StepFailed: a step failed, or did not finish in time.
    """

    if all(f.inline for f in steps):
        # quick every time so far: a hop to a thread would cost more than the calls
        for f in steps:
            f.run(results, values, deadline)
        return

    def job() -> None:
        for f in steps:
            f.run(results, values, deadline)

    future = asyncio.get_running_loop().run_in_executor(pool, job)
    first = steps[0]
    own = first.step.timeout if len(steps) == 1 else None
    timeout = own
    if deadline is not None:
        left = deadline - time.monotonic()
        timeout = left if timeout is None else min(timeout, left)
    if timeout is None:
        await future
        return
    try:
        await asyncio.wait_for(future, max(timeout, 0.0))
    except asyncio.TimeoutError:
        s = first.step
        why = f" (the step's timeout is {own:g} s)" if own is not None and timeout == own else ""
        first.metrics.observe_step(first.method, s.name, "DEADLINE_EXCEEDED", timeout, 0, 0)
        raise StepFailed(
            f"{first.method}: {first.where} failed: DEADLINE_EXCEEDED: it did not finish "
            f"in time{why}",
            method=first.method,
            step=s.name,
            status="DEADLINE_EXCEEDED",
        ) from None
