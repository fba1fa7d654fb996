"""Blueprint YAML -> the records of `modelwire.broker.blueprint`, with lines and columns.

Locations come from the nodes `yaml.compose` makes (0-based marks, printed 1-based).
Reading collects every structural problem as a `Diagnostic` instead of stopping at
the first, and keeps what it could read, so the type check can still report the
rest; nothing here resolves models or types.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from modelwire.broker.blueprint import (
    INPUT,
    Autoscale,
    Blueprint,
    ModelRef,
    Ref,
    SolutionMethod,
    Step,
)
from modelwire.broker.yaml_nodes import NodeReader
from modelwire.config import address_problem
from modelwire.diagnostics import Diagnostic, Location

__all__ = ["load_blueprint", "parse_blueprint"]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _Reader(NodeReader):
    # ------------------------------------------------------------ parts

    def model(self, name: str, key: yaml.Node, node: yaml.Node) -> ModelRef | None:
        if not _NAME.match(name):
            self.error(
                key, f"model name {name!r} must be a letter or '_' then letters, digits, '_' or '-'"
            )
            return None
        items = self.mapping(node, f"model {name!r}")
        if items is None:
            return None
        kinds = [(k, kn, v) for k, kn, v in items if k in ("bundle", "catalog", "address")]
        flags: dict[str, bool] = {}
        for k, kn, v in items:
            if k in ("fuse", "isolate"):
                flag = self.flag(v, f"'{k}' of model {name!r}")
                if flag is not None:
                    flags[k] = flag
            elif k not in ("bundle", "catalog", "address", "replicas", "autoscale", "tls"):
                self.error(
                    kn,
                    f"unknown key {k!r} in model {name!r}",
                    help="a model has exactly one of 'bundle', 'catalog' or 'address', "
                    "and may have 'replicas', 'autoscale', 'fuse', 'isolate' and 'tls'",
                )
        if len(kinds) != 1:
            self.error(
                node,
                f"model {name!r} needs exactly one of 'bundle', 'catalog' or "
                f"'address' (found {len(kinds)})",
            )
            return None
        kind, _, vnode = kinds[0]
        value = self.scalar(vnode, f"'{kind}' of model {name!r}")
        if not value:
            if value == "":
                self.error(vnode, f"'{kind}' of model {name!r} is empty")
            return None
        if kind == "address":
            problem = address_problem(value)
            if problem is not None:
                self.error(vnode, f"'address' of model {name!r} is {value!r}: {problem}")
                return None
        replicas = 1
        autoscale = None
        tls = None
        for k, kn, rnode in items:
            if k == "tls":
                if kind != "address":
                    self.error(
                        kn,
                        f"'tls' of model {name!r}: only 'address' models take it",
                        help="modelwire reaches the models it starts on loopback or on a "
                        "network of its own",
                    )
                    return None
                got = self.tls(rnode, f"'tls' of model {name!r}")
                if got is False:
                    return None
                tls = got
            if k == "replicas":
                n = self.replicas(name, kind, kn, rnode)
                if n is None:
                    return None
                replicas = n
            elif k == "autoscale":
                autoscale = self.autoscale(name, kind, kn, rnode)
                if autoscale is None:
                    return None
        path = None
        if kind == "bundle":
            p = Path(value)
            path = p if p.is_absolute() else (self.base / p)
        fuse, isolate = flags.get("fuse"), flags.get("isolate", False)
        if fuse and isolate:
            self.error(
                node,
                f"model {name!r} says both 'fuse: true' and 'isolate: true'",
                help="'isolate: true' keeps a model in a process of its own; drop one of them",
            )
            fuse = None
        if fuse and kind == "address":
            self.error(
                node,
                f"model {name!r} runs at an address and cannot be fused into the broker",
                help="fusing loads a model from its bundle: use 'bundle:' or 'catalog:'",
            )
            fuse = None
        return ModelRef(
            name, kind, value, self.loc(key), path, replicas, autoscale, fuse, isolate, tls
        )

    def flag(self, node: yaml.Node, what: str) -> bool | None:
        text = self.scalar(node, what)
        if text is None:
            return None
        if text.lower() not in ("true", "false"):
            self.error(node, f"{what} must be true or false, not {text!r}")
            return None
        return text.lower() == "true"

    def _started_only(self, what: str, name: str, kind: str, key: yaml.Node) -> bool:
        if kind != "address":
            return True
        self.error(
            key,
            f"'{what}' of model {name!r}: only models modelwire starts ('bundle' or "
            "'catalog') have replicas",
            help="scale the service at that address where it runs, and give the broker "
            "an address like dns:///NAME:PORT that resolves to every replica",
        )
        return False

    def replicas(self, name: str, kind: str, key: yaml.Node, node: yaml.Node) -> int | None:
        """`replicas: N` of a model modelwire starts: a whole number from 1."""
        if not self._started_only("replicas", name, kind, key):
            return None
        return self.count(node, f"'replicas' of model {name!r}", 1)

    def autoscale(self, name: str, kind: str, key: yaml.Node, node: yaml.Node) -> Autoscale | None:
        """`autoscale: {min: N, max: M, cpu: P}` (cpu optional) of a model modelwire starts."""
        if not self._started_only("autoscale", name, kind, key):
            return None
        what = f"'autoscale' of model {name!r}"
        items = self.mapping(node, what)
        if items is None:
            return None
        got: dict[str, int] = {}
        ok = True
        for k, kn, v in items:
            if k not in ("min", "max", "cpu"):
                self.error(kn, f"unknown key {k!r} in {what}", help="it has 'min', 'max', 'cpu'")
                ok = False
                continue
            n = self.count(v, f"'{k}' of {what}", 1, 100 if k == "cpu" else None)
            if n is None:
                ok = False
            else:
                got[k] = n
        if not ok:
            return None
        missing = [k for k in ("min", "max") if k not in got]
        if missing:
            self.error(node, f"{what} needs 'min' and 'max' (e.g. {{min: 2, max: 8}})")
            return None
        if got["max"] < got["min"]:
            self.error(node, f"{what}: 'max' ({got['max']}) is below 'min' ({got['min']})")
            return None
        return Autoscale(got["min"], got["max"], got.get("cpu", 80))

    def ref(self, node: yaml.Node, what: str) -> Ref | None:
        text = self.scalar(node, what)
        if text is None:
            return None
        text = text.strip()
        parts = text.split(".")
        if not text or any(not p for p in parts):
            self.error(
                node,
                f"{what}: {text!r} is not a reference",
                help="write $input, $input.field, a step name, or step.field",
            )
            return None
        head, path = parts[0], tuple(parts[1:])
        for p in path:
            if not _IDENT.match(p):
                self.error(node, f"{what}: {p!r} in {text!r} is not a field name")
                return None
        if head == INPUT:
            return Ref(None, path, text, self.loc(node))
        if head.startswith("$"):
            self.error(
                node, f"{what}: unknown variable {head!r}", help="the only variable is $input"
            )
            return None
        return Ref(head, path, text, self.loc(node))

    def step(self, name: str, key: yaml.Node, node: yaml.Node, method: str) -> Step | None:
        what = f"step {name!r} of method {method!r}"
        if not _IDENT.match(name):
            self.error(key, f"step name {name!r} must be an identifier")
            return None
        items = self.mapping(node, what)
        if items is None:
            return None
        values = {k: (kn, v) for k, kn, v in items}
        for k, (kn, _) in values.items():
            if k not in ("call", "with", "timeout", "retry"):
                self.error(
                    kn,
                    f"unknown key {k!r} in {what}",
                    help="a step has 'call', 'with', and optionally 'timeout' and 'retry'",
                )
        if "call" not in values:
            self.error(key, f"{what} has no 'call' (e.g. call: model.method)")
            return None
        call_node = values["call"][1]
        call = self.scalar(call_node, f"'call' of {what}")
        if call is None:
            return None
        model, dot, mname = call.partition(".")
        if not dot or not model or not mname or "." in mname:
            self.error(call_node, f"'call' of {what} must be model.method, not {call!r}")
            return None
        if "with" not in values:
            self.error(key, f"{what} has no 'with' (e.g. with: $input)")
            return None
        wnode = values["with"][1]
        inputs: Ref | dict[str, Ref] | None
        complete = True
        if isinstance(wnode, yaml.MappingNode):
            fields = self.mapping(wnode, f"'with' of {what}")
            if fields is None:
                return None
            inputs = {}
            for fname, fkey, fval in fields:
                if not _IDENT.match(fname):
                    self.error(fkey, f"'with' of {what}: {fname!r} is not a field name")
                    complete = False
                    continue
                r = self.ref(fval, f"'with.{fname}' of {what}")
                if r is None:
                    complete = False
                else:
                    inputs[fname] = r
            if not inputs and not fields:
                self.error(wnode, f"'with' of {what} is empty")
                return None
        else:
            inputs = self.ref(wnode, f"'with' of {what}")
            if inputs is None:  # the step is kept, so the rest of the method is checked
                inputs, complete = {}, False
        timeout = None
        if "timeout" in values:
            timeout = self.duration(values["timeout"][1], f"'timeout' of {what}")
        retry = 0
        if "retry" in values:
            rnode = values["retry"][1]
            text = self.scalar(rnode, f"'retry' of {what}")
            if text is not None:
                if not text.isdigit() or int(text) > 10:
                    self.error(
                        rnode,
                        f"'retry' of {what} must be a whole number from 0 to 10, not {text!r}",
                    )
                else:
                    retry = int(text)
        return Step(
            name, model, mname, inputs, self.loc(key), self.loc(call_node), timeout, retry, complete
        )

    def method(self, name: str, key: yaml.Node, node: yaml.Node) -> SolutionMethod | None:
        if not _IDENT.match(name):
            self.error(key, f"method name {name!r} must be an identifier")
            return None
        items = self.mapping(node, f"method {name!r}")
        if items is None:
            return None
        values = {k: (kn, v) for k, kn, v in items}
        for k, (kn, _) in values.items():
            if k not in ("steps", "output"):
                self.error(
                    kn,
                    f"unknown key {k!r} in method {name!r}",
                    help="a method has 'steps' and 'output'",
                )
        steps: dict[str, Step] = {}
        unreadable: set[str] = set()
        if "steps" not in values:
            self.error(key, f"method {name!r} has no 'steps'")
        else:
            for sname, skey, snode in self.mapping(values["steps"][1], f"steps of {name!r}") or ():
                s = self.step(sname, skey, snode, name)
                if s is not None:
                    steps[sname] = s
                else:
                    unreadable.add(sname)
        if "output" not in values:
            self.error(key, f"method {name!r} has no 'output' (the step whose reply it returns)")
            return None
        output = self.ref(values["output"][1], f"'output' of method {name!r}")
        if output is None:
            return None
        return SolutionMethod(name, steps, output, self.loc(key), frozenset(unreadable))

    def blueprint(self, root: yaml.Node) -> Blueprint | None:
        items = self.mapping(root, "the blueprint")
        if items is None:
            return None
        values = {k: (kn, v) for k, kn, v in items}
        for k, (kn, _) in values.items():
            if k not in ("name", "models", "methods", "description", "fuse"):
                self.error(
                    kn,
                    f"unknown top-level key {k!r}",
                    help="a blueprint has 'name', 'models' and 'methods'",
                )
        fuse = False
        if "fuse" in values:
            fuse = bool(self.flag(values["fuse"][1], "'fuse'"))
        name = ""
        if "name" in values:
            name = self.scalar(values["name"][1], "'name'") or ""
            if name and not _NAME.match(name):
                self.error(
                    values["name"][1],
                    f"name {name!r} must be a letter or '_' then letters, digits, '_' or '-'",
                )
        else:
            self.error(root, "the blueprint has no 'name'")
        models: dict[str, ModelRef] = {}
        unreadable_models: set[str] = set()
        if "models" not in values:
            self.error(root, "the blueprint has no 'models'")
        else:
            for mname, mkey, mnode in self.mapping(values["models"][1], "'models'") or ():
                m = self.model(mname, mkey, mnode)
                if m is not None:
                    models[mname] = m
                else:
                    unreadable_models.add(mname)
        methods: dict[str, SolutionMethod] = {}
        if "methods" not in values:
            self.error(root, "the blueprint has no 'methods'")
        else:
            for mname, mkey, mnode in self.mapping(values["methods"][1], "'methods'") or ():
                meth = self.method(mname, mkey, mnode)
                if meth is not None:
                    methods[mname] = meth
        return Blueprint(
            name, self.file, models, methods, self.loc(root), frozenset(unreadable_models), fuse
        )


def parse_blueprint(
    text: str, file: str = "<blueprint>", base: Path | None = None
) -> tuple[Blueprint | None, list[Diagnostic]]:
    """Parse blueprint text; returns the blueprint (None if unusable) and every problem found."""
    reader = _Reader(file, base or Path.cwd())
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        loc = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file, 1, 1)
        problem = getattr(exc, "problem", None) or str(exc)
        notes: tuple[str, ...] = ()
        context, where = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and where is not None and mark is not None and where.line != mark.line:
            notes = (f"{context} at line {where.line + 1}, column {where.column + 1}",)
        return None, [Diagnostic("MW001", f"invalid YAML: {problem}", loc, notes)]
    if root is None:
        return None, [Diagnostic("MW002", "the blueprint is empty", Location(file, 1, 1))]
    bp = reader.blueprint(root)
    return bp, reader.diags


def load_blueprint(path: str | Path) -> tuple[Blueprint | None, list[Diagnostic]]:
    """Read and parse a blueprint file; relative bundle paths resolve against its folder.

    Raises:
        OSError: the file cannot be read.
    """
    p = Path(path)
    text = p.read_text(encoding="utf-8")
    return parse_blueprint(text, str(path), p.resolve().parent)
