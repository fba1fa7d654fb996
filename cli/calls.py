"""CLI commands of the client side: `call` (one rpc, JSON in and out) and `health`."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from modelwire.cli._kit import reports_errors

__all__ = ["call", "health"]


def _reply_json(reply: Any) -> Any:
    """A reply as JSON: Python field names, every field (a model's 0 is an answer, not an
    absence), 64-bit integers as numbers where the protobuf release can do it exactly."""
    from google.protobuf import json_format

    options: dict[str, Any] = {
        "preserving_proto_field_name": True,
        "always_print_fields_with_no_presence": True,
    }
    try:
        return json_format.MessageToDict(reply, **options, unquote_int64_if_possible=True)
    except TypeError:  # older protobuf releases quote every int64
        return json_format.MessageToDict(reply, **options)


def _check_address(address: str) -> None:
    """A malformed ADDRESS is a usage error at once, with the right example."""
    from modelwire.config import address_problem

    if not address.strip():
        raise click.BadParameter("is empty; write HOST:PORT", param_hint="'ADDRESS'")
    problem = address_problem(address)
    if problem is not None:
        raise click.BadParameter(f"{address!r}: {problem}", param_hint="'ADDRESS'")


@click.command()
@click.argument("address")
@click.argument("method")
@click.argument("request_json", metavar="[JSON]", default="{}")
@click.option(
    "--timeout",
    type=click.FloatRange(0, min_open=True),
    default=30.0,
    show_default=True,
    help="Deadline in seconds.",
)
@reports_errors
def call(address: str, method: str, request_json: str, timeout: float) -> None:
    """Call METHOD on the service at ADDRESS with a JSON request; print the JSON reply.

    The request's fields are given by name, e.g. '{"sepal_length": [5.1]}'; JSON is
    '{}' (every field at its default) when left out, and read from stdin when '-'.
    The schema is read through server reflection, as grpcurl does. The reply is
    protobuf's JSON mapping, with every field: bytes and Tensor data are base64.
    """
    import grpc
    from google.protobuf import json_format

    from modelwire.codegen.descriptors import message_classes
    from modelwire.hosting.remote import reflect, rpc_error, wait_ready

    _check_address(address)
    if request_json == "-":
        request_json = sys.stdin.read()
    try:
        payload = json.loads(request_json)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="'JSON'") from None
    if not isinstance(payload, dict):
        raise click.BadParameter(
            f"expected a JSON object of the request's fields, got {type(payload).__name__}",
            param_hint="'JSON'",
        )
    channel = grpc.insecure_channel(address)
    try:
        wait_ready(channel, address, min(timeout, 10))
        found = reflect(channel, address)
        fdp, service = found.file, found.service
        svc = next(s for s in fdp.service if service in (f"{fdp.package}.{s.name}", s.name))
        rpcs = {m.name: m for m in svc.method}
        from modelwire.codegen.naming import rpc_name

        rpc = rpcs.get(method) or rpcs.get(rpc_name(method))
        if rpc is None:
            raise click.BadParameter(
                f"{service} has no method {method!r}; it has {', '.join(rpcs)}",
                param_hint="'METHOD'",
            )
        classes = message_classes(fdp)
        req_cls = classes.get(rpc.input_type.rsplit(".", 1)[-1])
        resp_cls = classes.get(rpc.output_type.rsplit(".", 1)[-1])
        fields = [f.name for f in req_cls.DESCRIPTOR.fields]
        json_names = {f.json_name for f in req_cls.DESCRIPTOR.fields}
        for key in payload:
            if key not in fields and key not in json_names:
                from modelwire.broker.references import did_you_mean

                raise click.BadParameter(
                    f"{rpc.name} takes no field {key!r}{did_you_mean(key, fields)} "
                    f"(its fields: {', '.join(fields) or 'none'})",
                    param_hint="'JSON'",
                )
        try:
            request = json_format.ParseDict(payload, req_cls())
        except json_format.ParseError as exc:
            raise click.BadParameter(str(exc), param_hint="'JSON'") from None
        stub: grpc.UnaryUnaryMultiCallable[Any, Any] = channel.unary_unary(
            f"/{service}/{rpc.name}",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=resp_cls.FromString,
        )
        try:
            reply = stub(request, timeout=timeout)
        except grpc.RpcError as exc:
            raise rpc_error(address, rpc.name, exc) from None
        click.echo(json.dumps(_reply_json(reply), indent=2))
    finally:
        channel.close()


@click.command()
@click.argument("address")
@click.option("--service", default="", help="A service name; empty for the whole server.")
@click.option(
    "--timeout",
    type=click.FloatRange(0, min_open=True),
    default=3.0,
    show_default=True,
    help="Seconds to wait for an answer.",
)
@reports_errors
def health(address: str, service: str, timeout: float) -> None:
    """Exit 0 if the server at ADDRESS reports SERVING over grpc.health.v1, else 1.

    Prints the status; container HEALTHCHECKs and scripts use it.
    """
    from modelwire.hosting.remote import health_status

    _check_address(address)
    status = health_status(address, service, timeout=timeout)
    click.echo(status)
    sys.exit(0 if status == "SERVING" else 1)
