"""CLI commands of the client side: `call` (one rpc, JSON in and out, over gRPC or the HTTP
face) and `health`."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import click

from modelwire.cli._kit import reports_errors
from modelwire.cli.options import tls_client_options

if TYPE_CHECKING:
    from modelwire.config import ClientTls

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
@click.option(
    "--http",
    "over_http",
    is_flag=True,
    help="ADDRESS is the URL of the service's HTTP face (http://HOST:PORT, or https://); "
    "call it there with the Connect protocol.",
)
@tls_client_options
@reports_errors
def call(
    address: str,
    method: str,
    request_json: str,
    timeout: float,
    over_http: bool,
    tls: ClientTls | None,
) -> None:
    """Call METHOD on the service at ADDRESS with a JSON request; print the JSON reply.

    The request's fields are given by name, e.g. '{"sepal_length": [5.1]}'; JSON is
    '{}' (every field at its default) when left out, and read from stdin when '-'.
    The schema is read through server reflection, as grpcurl does (with --http, from
    the service's /model/info). The reply is protobuf's JSON mapping, with every field:
    bytes and Tensor data are base64. gRPC and --http print the same.
    """
    if over_http:
        if not address.strip():
            raise click.BadParameter("is empty; write http://HOST:PORT", param_hint="'ADDRESS'")
    else:
        _check_address(address)
    payload = _payload(sys.stdin.read() if request_json == "-" else request_json)
    reply = (_call_http if over_http else _call_grpc)(address, method, payload, timeout, tls)
    click.echo(json.dumps(_reply_json(reply), indent=2))


def _payload(request_json: str) -> dict[str, Any]:
    try:
        payload = json.loads(request_json)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="'JSON'") from None
    if not isinstance(payload, dict):
        raise click.BadParameter(
            f"expected a JSON object of the request's fields, got {type(payload).__name__}",
            param_hint="'JSON'",
        )
    return payload


def _request(fdp: Any, service: str, method: str, payload: dict[str, Any]) -> tuple[str, Any, Any]:
    """(rpc name, request message, response class) of `method` in `fdp`'s `service`;
    usage errors name what is wrong with METHOD or JSON."""
    from google.protobuf import json_format

    from modelwire.codegen.descriptors import message_classes
    from modelwire.codegen.naming import rpc_name

    svc = next(s for s in fdp.service if service in (f"{fdp.package}.{s.name}", s.name))
    rpcs = {m.name: m for m in svc.method}
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
    return str(rpc.name), request, resp_cls


def _call_grpc(
    address: str, method: str, payload: dict[str, Any], timeout: float, tls: ClientTls | None
) -> Any:
    import grpc

    from modelwire.hosting.remote import reflect, rpc_error, wait_ready
    from modelwire.hosting.tls import open_channel

    channel = open_channel(address, tls)
    try:
        wait_ready(channel, address, min(timeout, 10), tls=tls)
        found = reflect(channel, address)
        rpc, request, resp_cls = _request(found.file, found.service, method, payload)
        stub: grpc.UnaryUnaryMultiCallable[Any, Any] = channel.unary_unary(
            f"/{found.service}/{rpc}",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=resp_cls.FromString,
        )
        try:
            return stub(request, timeout=timeout)
        except grpc.RpcError as exc:
            raise rpc_error(address, rpc, exc) from None
    finally:
        channel.close()


def _call_http(
    url: str, method: str, payload: dict[str, Any], timeout: float, tls: ClientTls | None
) -> Any:
    from modelwire.codegen.descriptors import file_descriptor
    from modelwire.codegen.schema import ModelSchema
    from modelwire.errors import ServiceError
    from modelwire.hosting.http_client import HttpTarget, fetch_manifest, unary_call

    try:
        target = HttpTarget.parse(url, tls)
    except ServiceError as exc:
        raise click.BadParameter(str(exc), param_hint="'ADDRESS'") from None
    manifest = fetch_manifest(target, min(timeout, 10))
    try:
        schema = ModelSchema.from_json(manifest["schema"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ServiceError(
            f"{target.url} GET /model/info: its schema is malformed ({exc!r})", target=target.url
        ) from None
    service = f"{schema.package}.{schema.service}"
    rpc, request, resp_cls = _request(file_descriptor(schema), service, method, payload)
    reply = unary_call(target, service, rpc, request.SerializeToString(), timeout)
    try:
        return resp_cls.FromString(reply)
    except Exception as exc:  # protobuf's DecodeError: the server sent something else
        raise ServiceError(
            f"{target.url} {rpc}: the reply is not a {resp_cls.DESCRIPTOR.name} ({exc})",
            target=target.url,
            rpc=rpc,
        ) from None


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
@tls_client_options
@reports_errors
def health(
    address: str,
    service: str,
    timeout: float,
    tls: ClientTls | None,
) -> None:
    """Exit 0 if the server at ADDRESS reports SERVING over grpc.health.v1, else 1.

    Prints the status; container HEALTHCHECKs and scripts use it.
    """
    from modelwire.hosting.remote import health_status

    _check_address(address)
    status = health_status(address, service, timeout=timeout, tls=tls)
    click.echo(status)
    sys.exit(0 if status == "SERVING" else 1)
