"""The compile pass: what the plan tells the router for each edge, decided before any call.

Each step's request is a tuple of pieces (how its bytes are made, from which reply, at
which field numbers, into which field, parsed by which class); each method's reply is one.
The router executes them as they are (test_router.py runs the same kinds of edges)."""

from __future__ import annotations

from typing import Any

from modelwire.broker.loader import parse_blueprint
from modelwire.broker.plan import Piece, SolutionPlan
from modelwire.broker.typecheck import check
from tests.fixtures.models import advisor, detector, widths


def compiled(text: str, **models: Any) -> SolutionPlan:
    """`text` checked against the schemas of fixture models (blueprint model -> module)."""
    bp, diags = parse_blueprint(text, "b.yaml")
    assert bp is not None and diags == []
    schemas = {
        key: module.model().named(module.__name__.rsplit(".", 1)[-1], "1.0.0")[0]
        for key, module in models.items()
    }
    plan, diags = check(bp, schemas)
    assert diags == [] and plan is not None
    return plan


def described(piece: Piece) -> tuple[Any, ...]:
    parser = piece.parser.DESCRIPTOR.full_name.rsplit(".", 1)[-1]
    return (piece.how.name, piece.key, piece.numbers, piece.number, piece.field, parser)


def pieces(plan: SolutionPlan) -> dict[str, Any]:
    """Per method: whether it is a chain, its reply, and its steps' pieces."""
    return {
        name: (
            m.chain,
            described(m.reply),
            {s.name: [described(p) for p in s.pieces] for s in m.steps.values()},
        )
        for name, m in plan.methods.items()
    }


SHAPES = """
name: shapes
models:
  d: {address: "127.0.0.1:1"}
  a: {address: "127.0.0.1:2"}
methods:
  advise:
    steps:
      found: {call: d.detect, with: $input}
      advice: {call: a.recommend, with: {faces: found, eyes: found.boxes}}
    output: advice
  faces:
    steps:
      seen: {call: d.scene, with: $input}
    output: seen.faces
"""


def test_forwarded_edges_are_cut_at_field_numbers():
    plan = compiled(SHAPES, d=detector, a=advisor)
    assert pieces(plan) == {
        "advise": (
            True,
            ("PASS", "advice", (), 0, "", "RecommendResponse"),
            {
                "found": [("PASS", None, (), 0, "", "AdviseRequest")],
                "advice": [
                    # the whole reply becomes field 1; its field 1 (boxes) becomes field 2
                    ("WRAP", "found", (), 1, "faces", "DetectResponse"),
                    ("RETAG", "found", (1,), 2, "eyes", "DetectResponse"),
                ],
            },
        ),
        # a message field of the reply: its records' values, merged into one message
        "faces": (
            True,
            ("MERGE", "seen", (1,), 0, "", "SceneResponse"),
            {"seen": [("PASS", None, (), 0, "", "FacesRequest")]},
        ),
    }
    advice = plan.methods["advise"].steps["advice"]
    assert advice.request_class.DESCRIPTOR.full_name == (
        "modelwire.models.advisor.v1.RecommendRequest"
    )
    assert (advice.forwarded, advice.transcoded) == (2, 0)


WIDTHS = """
name: widths
models:
  w: {address: "127.0.0.1:1"}
methods:
  renumbered:
    steps:
      narrow: {call: w.narrow, with: $input}
      wide: {call: w.reorder, with: narrow}
    output: wide
  widened:
    steps:
      narrow: {call: w.narrow, with: $input}
      wide: {call: w.measure, with: {scale: narrow.scale}}
    output: wide.label
  both:
    steps:
      counted: {call: w.count, with: $input}
      narrow: {call: w.narrow, with: $input}
      wide: {call: w.reorder, with: {label: counted.label, scale: narrow.scale, n: narrow.n}}
    output: wide
"""


def test_edges_the_wire_does_not_allow_are_transcoded_by_the_classes_named():
    plan = compiled(WIDTHS, w=widths)
    assert pieces(plan) == {
        # the same fields under other numbers: decoded with the reply's class
        "renumbered": (
            True,
            ("PASS", "wide", (), 0, "", "ReorderResponse"),
            {
                "narrow": [("PASS", None, (), 0, "", "RenumberedRequest")],
                "wide": [("TRANSCODE", "narrow", (), 0, "", "NarrowResponse")],
            },
        ),
        # float -> double: the field is decoded; a string reply field becomes field 1
        "widened": (
            True,
            ("RETAG", "wide", (3,), 1, "value", "MeasureResponse"),
            {
                "narrow": [("PASS", None, (), 0, "", "WidenedRequest")],
                "wide": [("TRANSCODE_FIELD", "narrow", (2,), 1, "scale", "NarrowResponse")],
            },
        ),
        # two producers: not a chain; each field retagged from its own reply
        "both": (
            False,
            ("PASS", "wide", (), 0, "", "ReorderResponse"),
            {
                "counted": [("PASS", None, (), 0, "", "BothRequest")],
                "narrow": [("PASS", None, (), 0, "", "BothRequest")],
                "wide": [
                    ("RETAG", "counted", (3,), 1, "label", "CountResponse"),
                    ("RETAG", "narrow", (2,), 2, "scale", "NarrowResponse"),
                    ("RETAG", "narrow", (1,), 3, "n", "NarrowResponse"),
                ],
            },
        ),
    }
    wide = plan.methods["renumbered"].steps["wide"]
    assert wide.request_class.DESCRIPTOR.full_name == "modelwire.models.widths.v1.ReorderRequest"
    assert (wide.forwarded, wide.transcoded) == (0, 1)
