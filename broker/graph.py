"""Draw a checked blueprint: Graphviz DOT text, rendered to SVG or PNG by `dot`.

One cluster per solution method; nodes are `$input`, the steps (with the model
method they call) and the output; edges carry the producer's type and say
whether the router forwards their bytes or transcodes them.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from modelwire.broker.plan import SolutionPlan, Source
from modelwire.codegen.compat import render_type
from modelwire.errors import ToolError

__all__ = ["render_dot", "write_graph"]


def _q(text: str) -> str:
    """A DOT string; a line break in `text` becomes DOT's centred line break."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _label(source: Source, field: str | None, forward: bool = True) -> str:
    what = render_type(source.type.type)
    head = f"{source.text}" + (f" -> {field}" if field else "")
    return f"{head}\n{what}" + ("" if forward else "\n(transcoded)")


def render_dot(plan: SolutionPlan) -> str:
    """The plan as a Graphviz digraph (deterministic text)."""
    name = plan.schema.name
    out = [
        f"digraph {_q(name)} {{",
        "  rankdir=LR;",
        '  node [shape=box, style="rounded", fontname="Helvetica", fontsize=11];',
        '  edge [fontname="Helvetica", fontsize=9];',
    ]
    for mname, m in plan.methods.items():
        sm = plan.schema.method(mname)
        out.append(f"  subgraph {_q('cluster_' + mname)} {{")
        out.append(f"    label={_q(f'{mname}({sm.request}) returns ({sm.response})')};")
        inp = f"{mname}/$input"
        outp = f"{mname}/$output"
        out.append(f"    {_q(inp)} [label={_q('$input')}, shape=ellipse];")
        out.append(f"    {_q(outp)} [label={_q('output')}, shape=ellipse];")
        for s in m.steps.values():
            label = f"{s.name}\n{s.model}.{s.method.name}"
            if s.timeout or s.retry:
                extra = []
                if s.timeout:
                    extra.append(f"timeout {s.timeout:g}s")
                if s.retry:
                    extra.append(f"retry {s.retry}")
                label += "\n" + ", ".join(extra)
            out.append(f"    {_q(mname + '/' + s.name)} [label={_q(label)}];")
        for s in m.steps.values():
            target = _q(f"{mname}/{s.name}")
            inputs = (
                [(s.whole, None, s.forward)]
                if s.whole is not None
                else [(fi.source, fi.field, fi.forward) for fi in s.fields]
            )
            for src, field, forward in inputs:
                assert src is not None
                origin = inp if src.step is None else f"{mname}/{src.step}"
                style = "solid" if forward else "dashed"
                out.append(
                    f"    {_q(origin)} -> {target} "
                    f"[label={_q(_label(src, field, forward))}, style={style}];"
                )
        o = m.output
        out.append(f"    {_q(f'{mname}/{o.step}')} -> {_q(outp)} [label={_q(_label(o, None))}];")
        out.append("  }")
    out.append("}")
    return "\n".join(out) + "\n"


def write_graph(plan: SolutionPlan, dest: Path) -> Path:
    """Write `dest` as .dot, or render .svg/.png with Graphviz's `dot`.

    Raises:
        ToolError: `dot` is missing or fails.
        ValueError: the suffix is not .dot, .svg or .png.
    """
    dot_text = render_dot(plan)
    suffix = dest.suffix.lower()
    if suffix not in (".dot", ".svg", ".png"):
        raise ValueError(f"{dest}: write .dot, .svg or .png")
    dest.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".dot":
        dest.write_text(dot_text)
        return dest
    dot = shutil.which("dot")
    if dot is None:
        raise ToolError(
            "rendering needs Graphviz's 'dot' (apt-get install graphviz); or write a .dot file"
        )
    argv = [dot, f"-T{suffix[1:]}", "-o", str(dest)]
    proc = subprocess.run(argv, input=dot_text, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ToolError(
            "dot failed",
            argv=argv,
            returncode=proc.returncode,
            stderr_tail=proc.stderr.strip()[-2000:],
        )
    return dest
