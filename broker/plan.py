"""The plan a checked blueprint compiles to, and the router executes.

`SolutionPlan` holds, per solution method, a `MethodPlan`: its steps in a
topological order, and for each step where its inputs come from (`Source`,
`FieldInput`: what `modelwire graph` draws) and how its request is assembled
from the bytes the router holds (`Piece`s: the field numbers to cut at, the
message classes that parse and build, and whether bytes are forwarded or
transcoded), and the solution's own schema. Everything is decided here, so the
router only executes. Frozen records; `modelwire.broker.compiler` builds them.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

import networkx as nx

from modelwire.broker.blueprint import Blueprint
from modelwire.broker.fusing import Verdict
from modelwire.broker.splice import EnumMaps
from modelwire.codegen.compat import Typed
from modelwire.codegen.descriptors import MessageClass
from modelwire.codegen.schema import Method, ModelSchema

__all__ = ["FieldInput", "MethodPlan", "Piece", "SolutionPlan", "Source", "Splice", "StepPlan"]


@dataclass(frozen=True)
class Source:
    """Where a value comes from: a step's reply (or the solution's input), then a field path."""

    step: str | None
    path: tuple[str, ...]
    type: Typed

    @property
    def text(self) -> str:
        head = self.step if self.step is not None else "$input"
        return ".".join((head, *self.path))


@dataclass(frozen=True)
class FieldInput:
    """One field of a step's request, filled from a source (`with: {field: ref}`)."""

    field: str
    number: int
    source: Source
    forward: bool  # the source's bytes are wire-identical to the field's type


class Splice(enum.Enum):
    """How one piece of a message is made from the bytes of another."""

    PASS = "pass"  # the source's bytes, as they are
    MERGE = "merge"  # the value bytes of a sub-message's records, concatenated
    WRAP = "wrap"  # the source's bytes (a whole message) as field `number`
    RETAG = "retag"  # the records of the field at the path, under field `number`
    TRANSCODE = "transcode"  # decoded, and copied by name into the consumer's class
    TRANSCODE_FIELD = "transcode_field"  # the value at the path, into field `field`

    @property
    def forwards(self) -> bool:
        """The bytes pass untouched (no decoding)."""
        return self not in (Splice.TRANSCODE, Splice.TRANSCODE_FIELD)


@dataclass(frozen=True)
class Piece:
    """One part of a message the router assembles; a message is its pieces concatenated.

    Attributes:
        how: what is done with the source's bytes.
        key: the step whose reply holds the source; None for the solution's request.
        numbers: the source's field path as field numbers (() for the whole message).
        names: the same path as field names (for transcoding).
        parser: the class that parses the bytes the source lives in.
        number: the consumer's field this piece fills (WRAP, RETAG, TRANSCODE_FIELD);
            0 when it is the whole message (PASS, MERGE, TRANSCODE).
        field: that field's name; "" for a whole message.
    """

    how: Splice
    key: str | None
    numbers: tuple[int, ...]
    names: tuple[str, ...]
    parser: MessageClass
    number: int = 0
    field: str = ""


@dataclass(frozen=True)
class StepPlan:
    """One step: the model method it calls, what it reads, and how its request is made."""

    name: str
    model: str
    method: Method
    service: str  # full service name of the model
    deps: tuple[str, ...]  # steps this one waits for
    whole: Source | None  # `with: ref`
    forward: bool  # `with: ref` and the bytes can be passed on untouched
    fields: tuple[FieldInput, ...]  # `with: {field: ref, ...}`
    request: Typed
    response: Typed
    timeout: float | None
    retry: int
    pieces: tuple[Piece, ...]  # the request, assembled from the replies it reads
    request_class: MessageClass  # builds the request where a piece transcodes

    @property
    def rpc_path(self) -> str:
        return f"/{self.service}/{self.method.rpc}"

    @property
    def forwarded(self) -> int:
        """Edges into this step whose bytes are forwarded untouched."""
        return sum(1 for p in self.pieces if p.how.forwards)

    @property
    def transcoded(self) -> int:
        return len(self.pieces) - self.forwarded


@dataclass(frozen=True)
class MethodPlan:
    """One rpc of the solution: its steps, its request, and how its reply is cut."""

    name: str
    rpc: str
    steps: dict[str, StepPlan]  # in a topological order
    graph: nx.DiGraph[str]
    request: Typed  # the solution's request (in the solution schema)
    input_fields: dict[str, int] | None  # synthesized input: field -> number; None if copied
    output: Source  # in the models' schemas
    # the solution's reply, cut from the output step's reply: a copy of the output's type
    # with the same field numbers (a message as it is, anything else as field 1 'value'),
    # so its bytes always pass on untouched
    reply: Piece
    chain: bool  # the steps form one path: each runs after the one before


@dataclass(frozen=True)
class SolutionPlan:
    """A checked blueprint, compiled: every method's plan and the solution's schema."""

    blueprint: Blueprint
    schemas: Mapping[str, ModelSchema]
    methods: dict[str, MethodPlan]
    schema: ModelSchema  # the solution's service
    # the enum maps of the plan's transcoded edges, made on first use; they live with the
    # plan, like the message classes whose descriptors they are keyed by
    enum_maps: EnumMaps = field(default_factory=EnumMaps, compare=False)
    # per bundle model, whether it is fused into the broker (`modelwire.broker.fusing`);
    # set by `modelwire.broker.check.check_blueprint`, empty for a plan compiled alone
    fusing: Mapping[str, Verdict] = field(default_factory=dict, compare=False)

    @property
    def fused(self) -> frozenset[str]:
        """The models that run inside the broker."""
        return frozenset(name for name, v in self.fusing.items() if v.fused)

    def summary(self) -> list[str]:
        """`advise(AdviseRequest) returns (AdviseResponse)` per method."""
        return [
            f"{m.name}({self.schema.method(m.name).request}) returns "
            f"({self.schema.method(m.name).response})"
            for m in self.methods.values()
        ]
