"""CLI commands for bundles: `dump` (a model to a bundle) and `stubs` (its Python stubs)."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import click

from modelwire.bundle.requirements import SCRIPT_MODULE
from modelwire.cli._kit import catalog_resolver, reports_errors, setup_logging
from modelwire.cli.options import logging_options
from modelwire.cli.validate import example_option, examples_of
from modelwire.errors import ModelwireError

__all__ = ["dump", "stubs"]


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
        # re-run when the bundle loads. By value from the start: whatever the file
        # pickles while it runs must not refer to a module that exists only here.
        spec = importlib.util.spec_from_file_location(SCRIPT_MODULE, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[SCRIPT_MODULE] = module
        import cloudpickle

        from modelwire.bundle.writer import running_script

        cloudpickle.register_pickle_by_value(module)
        with _running(target, path), running_script(path):
            spec.loader.exec_module(module)
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


@click.command()
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
    """Write MODEL (a modelwire.Model at FILE.py:ATTR or MODULE:ATTR) as a bundle NAME.

    The file is run to get MODEL; dump() calls the file makes itself write nothing
    (only -o is written), and a push() in it is refused.
    """
    setup_logging(log_level, log_format)
    from modelwire.bundle import dump as dump_bundle
    from modelwire.bundle import read_manifest
    from modelwire.bundle.model import Model

    model = _load_object(model_ref)
    if not isinstance(model, Model):
        hint = ""
        if inspect.isfunction(model):
            target, _, attr = model_ref.rpartition(":")
            hint = f"; make one in the file, model = Model({attr}={attr}), and dump {target}:model"
        raise click.BadParameter(
            f"{model_ref!r} is a {type(model).__name__}, not a modelwire.Model{hint}",
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


@click.command()
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
        from modelwire.broker.check import check_file
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
