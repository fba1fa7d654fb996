"""The solution's health: each method is ready while every model it calls serves.

Each method of the solution is a part of the host's `ServingState`, named like the rpc's
path without its leading slash, `<package>.<Service>/<Method>` (gRPC health suggests
`package.Service` names for services and says nothing of methods; the slash keeps a
method's name from reading as a nested service's). grpc.health.v1 reports each method
under that name, and the server ('') and the solution's service as SERVING only while
every method is; /readyz reads the same state. A method is not ready while a model it
calls has no SERVING endpoint (`modelwire.broker.endpoints`): down, restarting, failed,
or not answering its health checks. A fused model (`modelwire.broker.fused`) runs in
the broker's own process and serves as long as it does. Each change is logged once,
saying why, and again when the reason changes while it is down.
"""

from __future__ import annotations

import logging

from modelwire.broker.endpoints import Endpoints
from modelwire.broker.plan import SolutionPlan
from modelwire.hosting.faces import ServingState

__all__ = ["SolutionHealth", "method_health_name"]

logger = logging.getLogger(__name__)


def method_health_name(plan: SolutionPlan, method: str) -> str:
    """The health name of a solution method: `<package>.<Service>/<Method>`."""
    s = plan.schema
    return f"{s.package}.{s.service}/{s.method(method).rpc}"


class SolutionHealth:
    """Keeps the parts of `state` (one per method) as the models' endpoints say."""

    def __init__(self, plan: SolutionPlan, endpoints: Endpoints, state: ServingState) -> None:
        self.endpoints = endpoints
        self.state = state
        # method -> (its health name, the models it calls, in the order of its steps)
        self.needs = {
            name: (
                method_health_name(plan, name),
                tuple(dict.fromkeys(s.model for s in m.steps.values())),
            )
            for name, m in plan.methods.items()
        }
        self.why: dict[str, str] = {}  # method -> why it is not ready, as last logged
        for part, _ in self.needs.values():
            state.set_part(part, True)
        endpoints.subscribe(self.update)
        self.update()

    def update(self) -> None:
        """Set every method's readiness from its models' endpoints; log what changed."""
        for method, (part, models) in self.needs.items():
            # a fused model (in this process, not an endpoint) serves while the broker does
            down = [self.endpoints.models[m] for m in models if m in self.endpoints.models]
            reasons = [m.why_not() for m in down if not m.serving]
            ready = not reasons
            why = "; ".join(reasons)
            if self.state.set_part(part, ready, why):
                if ready:
                    logger.info("method %s is SERVING again", method, extra={"rpc": method})
                else:
                    logger.warning(
                        "method %s is NOT_SERVING: %s", method, why, extra={"rpc": method}
                    )
            elif not ready and why != self.why.get(method):
                # e.g. its probe found the model unreachable, then its supervisor saw it die
                logger.warning(
                    "method %s is still NOT_SERVING: %s", method, why, extra={"rpc": method}
                )
            self.why[method] = why
