"""The `modelwire` command line.

Commands are thin: parse, call one library function, render. stdout carries
results, stderr logs and errors. Exit status: 0 success, 1 a modelwire error
(printed once, without a traceback), 2 a usage error.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import click

from modelwire import __version__
from modelwire.bundle.requirements import SCRIPT_MODULE
from modelwire.cli._kit import catalog_resolver, logging_options, reports_errors, setup_logging
from modelwire.cli.validate import example_option, examples_of
from modelwire.config import (
    DEFAULT_MAX_MESSAGE_MB,
    DEFAULT_PORT,
    ENV_HOST,
    ENV_MAX_MESSAGE_MB,
    ENV_METRICS_PORT,
    ENV_PORT,
    ENV_SERVER,
    ENV_WORKERS,
    RuntimeConfig,
)
from modelwire.errors import ModelwireError

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="modelwire")
def main() -> None:
    """Turn typed Python models into gRPC services, share them, and compose them."""


# ---------------------------------------------------------------- dump


@contextlib.contextmanager
def _running(target: str, path: Path | None) -> Iterator[None]:
    """Report an error raised by the model's own code in one line: where, and what."""
    try:
        yield
    except SyntaxError as exc:
        raise ModelwireError(
            f"cannot load {target}: {exc.filename}, line {exc.lineno}: SyntaxError: {exc.msg}"
        ) from exc
    except ImportError:
        if path is None:  # MODULE:ATTR that does not import is a usage error
            raise
        _raise_from_code(target, path)
    except Exception:
        _raise_from_code(target, path)
    except SystemExit as exc:
        raise ModelwireError(
            f"cannot load {target}: it called sys.exit({exc.code!r}) while it ran"
        ) from exc


def _raise_from_code(target: str, path: Path | None) -> NoReturn:
    import traceback

    exc = sys.exc_info()[1]
    assert exc is not None
    frames = traceback.extract_tb(exc.__traceback__)
    own = [f for f in frames if path is not None and Path(f.filename) == path.resolve()]
    where = (own or frames)[-1]
    raise ModelwireError(
        f"cannot load {target}: running it raised {type(exc).__name__}: {exc} "
        f"({where.filename}, line {where.lineno})"
    ) from exc


def _load_object(ref: str) -> Any:
    """`path/to/file.py:attr` or `package.module:attr` -> the object."""
    target, sep, attr = ref.rpartition(":")
    if not sep or not target or not attr:
        raise click.BadParameter(
            f"{ref!r} is not MODULE:ATTRIBUTE (e.g. examples/iris/model.py:model)",
            param_hint="'MODEL'",
        )
    path = Path(target)
    if target.endswith(".py"):
        if not path.is_file():
            raise click.BadParameter(f"file {target!r} does not exist", param_hint="'MODEL'")
        sys.path.insert(0, str(path.parent.resolve()))
        # Run the file as the script it is: under its own module name (not the file's
        # stem, which could shadow a stdlib module), and pickled by value like
        # __main__, so the trained state goes into model.pkl and the script is not
        # re-run when the bundle loads.
        spec = importlib.util.spec_from_file_location(SCRIPT_MODULE, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[SCRIPT_MODULE] = module
        with _running(target, path):
            spec.loader.exec_module(module)
        import cloudpickle

        cloudpickle.register_pickle_by_value(module)
    else:
        sys.path.insert(0, str(Path.cwd()))
        try:
            with _running(target, None):
                module = importlib.import_module(target)
        except ImportError as exc:
            raise click.BadParameter(
                f"cannot import {target!r}: {exc}", param_hint="'MODEL'"
            ) from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        raise click.BadParameter(
            f"{target!r} has no attribute {attr!r}", param_hint="'MODEL'"
        ) from None


@main.command()
@click.argument("model_ref", metavar="MODEL")
@click.argument("name")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    required=True,
    help="Bundle directory to write, or a path ending in .zip.",
)
@click.option(
    "--version",
    "model_version",
    default="1.0.0",
    show_default=True,
    help="Model version; its major number picks the proto package.",
)
@click.option("--description", default=None, help="Free-text description.")
@click.option("--tag", "tags", multiple=True, help="A tag (repeatable).")
@click.option(
    "-r",
    "--requirement",
    "requirements",
    multiple=True,
    help="Requirement added to (or overriding) the inferred ones (repeatable).",
)
@example_option
@logging_options
@reports_errors
def dump(
    model_ref: str,
    name: str,
    output: Path,
    model_version: str,
    description: str | None,
    tags: tuple[str, ...],
    requirements: tuple[str, ...],
    examples: tuple[str, ...],
    log_level: str,
    log_format: str | None,
) -> None:
    """Write MODEL (a modelwire.Model at FILE.py:ATTR or MODULE:ATTR) as a bundle NAME."""
    setup_logging(log_level, log_format)
    from modelwire.bundle import dump as dump_bundle
    from modelwire.bundle import read_manifest
    from modelwire.bundle.model import Model

    model = _load_object(model_ref)
    if not isinstance(model, Model):
        raise click.BadParameter(
            f"{model_ref!r} is a {type(model).__name__}, not a modelwire.Model",
            param_hint="'MODEL'",
        )
    try:
        path = dump_bundle(
            model,
            name,
            output,
            version=model_version,
            description=description,
            tags=tags,
            requirements=list(requirements) or None,
            examples=examples_of(examples),
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    manifest = read_manifest(path)
    click.echo(f"wrote {path}")
    click.echo(f"  service   {manifest.schema.package}.{manifest.schema.service}")
    for m in manifest.schema.methods:
        click.echo(f"  rpc       {m.rpc}({m.request}) returns ({m.response})")
    click.echo(f"  requires  {', '.join(manifest.requirements) or '(nothing)'}")
    for method, listed in manifest.examples.items():
        click.echo(f"  example   {method}: {len(listed)} recorded")


# ---------------------------------------------------------------- serve


@main.command()
@click.argument("bundle", type=click.Path(path_type=str))
@click.option(
    "--host",
    envvar=ENV_HOST,
    default="127.0.0.1",
    show_default=True,
    help="Address to bind (0.0.0.0 for all interfaces).",
)
@click.option(
    "--port",
    envvar=ENV_PORT,
    type=click.IntRange(0, 65535),
    default=DEFAULT_PORT,
    show_default=True,
    help="Port to bind; 0 picks a free one.",
)
@click.option(
    "--workers",
    envvar=ENV_WORKERS,
    type=click.IntRange(1, 256),
    default=1,
    show_default=True,
    help="Processes sharing the port, for CPU-bound models.",
)
@click.option(
    "--threads",
    type=click.IntRange(1, 1024),
    default=8,
    show_default=True,
    help="Request threads per worker (sync server).",
)
@click.option(
    "--server",
    "server_kind",
    envvar=ENV_SERVER,
    type=click.Choice(["sync", "aio"]),
    default="sync",
    show_default=True,
    help="sync: thread pool, lowest latency; aio: asyncio, model on the event loop.",
)
@click.option(
    "--max-message-mb",
    envvar=ENV_MAX_MESSAGE_MB,
    type=click.IntRange(1, 2047),
    default=DEFAULT_MAX_MESSAGE_MB,
    show_default=True,
    help="Largest request or response, in MiB.",
)
@click.option(
    "--metrics-port",
    envvar=ENV_METRICS_PORT,
    type=click.IntRange(0, 65535),
    default=None,
    help="Serve Prometheus metrics at http://HOST:PORT/metrics.",
)
@click.option(
    "--grace",
    type=click.FloatRange(0),
    default=10.0,
    show_default=True,
    help="Seconds SIGTERM waits for in-flight calls.",
)
@click.option(
    "--access-log/--no-access-log", default=False, show_default=True, help="Log one line per call."
)
@logging_options
@reports_errors
def serve(
    bundle: str,
    host: str,
    port: int,
    workers: int,
    threads: int,
    server_kind: str,
    max_message_mb: int,
    metrics_port: int | None,
    grace: float,
    access_log: bool,
    log_level: str,
    log_format: str | None,
) -> None:
    """Serve BUNDLE as a gRPC service (health, reflection, metrics) until SIGTERM."""
    setup_logging(log_level, log_format)
    from modelwire.hosting.process import follow_parent
    from modelwire.runtime.server import serve as run

    follow_parent()  # started by `modelwire run` or a supervisor: die with it

    config = RuntimeConfig(
        host=host,
        port=port,
        workers=workers,
        threads=threads,
        server=server_kind,
        max_message_mb=max_message_mb,
        metrics_port=metrics_port,
        grace_seconds=grace,
        access_log=access_log,
    )
    sys.exit(run(bundle, config, announce=click.echo))


# ---------------------------------------------------------------- stubs


@main.command()
@click.argument("bundle", type=click.Path(path_type=str))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    required=True,
    help="Directory for the generated modules.",
)
@click.option(
    "--module",
    default="model",
    show_default=True,
    help="Base name of the modules (<module>_pb2.py ...).",
)
@reports_errors
def stubs(bundle: str, output: Path, module: str) -> None:
    """Write Python stubs (_pb2.py, _pb2_grpc.py, .pyi) for BUNDLE's service.

    BUNDLE may also be a blueprint (.yaml): the stubs are then the solution's.
    """
    from modelwire.codegen.stubs import compile_stubs

    if bundle.endswith((".yaml", ".yml")):
        from modelwire.broker.launch import check_file
        from modelwire.codegen.proto import render_proto

        plan, _, _ = check_file(bundle, catalog=catalog_resolver())
        proto = render_proto(plan.schema)
    else:
        from modelwire.bundle import Bundle
        from modelwire.bundle.manifest import PROTO

        proto = Bundle(bundle).read(PROTO).decode()
    try:
        files = compile_stubs(proto, output, module=module)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--module'") from None
    except OSError as exc:
        reason = f"{exc.strerror}: {exc.filename}" if exc.filename else str(exc.strerror or exc)
        raise ModelwireError(f"cannot write the stubs to {output} ({reason})") from exc
    for f in files:
        click.echo(f"wrote {f}")


# ---------------------------------------------------------------- call


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


@main.command()
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
    from modelwire.hosting.remote import reflect, wait_ready

    if not address.strip():
        raise click.BadParameter("is empty; write HOST:PORT", param_hint="'ADDRESS'")
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
        from modelwire.codegen.schema import rpc_name

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
            code = exc.code().name if isinstance(exc, grpc.Call) else "UNKNOWN"
            details = exc.details() if isinstance(exc, grpc.Call) else str(exc)
            click.echo(f"error: {code}: {details}", err=True)
            sys.exit(1)
        click.echo(json.dumps(_reply_json(reply), indent=2))
    finally:
        channel.close()


@main.command()
@click.argument("address")
@click.option("--service", default="", help="A service name; empty for the whole server.")
@click.option(
    "--timeout",
    type=click.FloatRange(0, min_open=True),
    default=3.0,
    show_default=True,
    help="Seconds to wait for an answer.",
)
def health(address: str, service: str, timeout: float) -> None:
    """Exit 0 if the server at ADDRESS reports SERVING over grpc.health.v1, else 1.

    Prints the status; container HEALTHCHECKs and scripts use it.
    """
    from modelwire.errors import ServiceError
    from modelwire.hosting.remote import health_status

    try:
        status = health_status(address, service, timeout=timeout)
    except ServiceError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo(status)
    sys.exit(0 if status == "SERVING" else 1)


def _register() -> None:
    from modelwire.cli.blueprints import check, graph, run
    from modelwire.cli.catalog import catalog, publish, pull, push, search, show
    from modelwire.cli.containers import build, export
    from modelwire.cli.validate import validate

    for command in (check, run, graph, build, export, push, pull, publish, search, show, catalog):
        main.add_command(command)
    main.add_command(validate)


_register()
