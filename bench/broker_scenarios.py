"""The scenarios of bench/broker.py: the blueprints it runs, each scenario's client and
servers, and the goals."""

from __future__ import annotations

from dataclasses import dataclass

CONC = 16
GOAL_A, GOAL_B = 1.6, 1.3
# fused (issue 17): against ONE direct call of one model (a, c) or one branch (b)
GOAL_FUSED = {"a": 1.15, "b": 1.1, "c": 1.2}


def blueprint(
    comment: str, name: str, models: dict[str, str], steps: dict[str, str], output: str
) -> str:
    """A blueprint's YAML: `models` maps a model to its bundle under bundles/, `steps` a
    step to 'model.method, with' (what it is called with)."""
    lines = [*(f"# {c}" for c in comment.splitlines()), f"name: {name}", "models:"]
    lines += [f"  {m}: {{bundle: bundles/{b}}}" for m, b in models.items()]
    lines += ["methods:", "  run:", "    steps:"]
    for step, spec in steps.items():
        call, _, with_ = spec.partition(", with ")
        lines.append(f"      {step}: {{call: {call}, with: {with_}}}")
    return "\n".join([*lines, f"    output: {output}", ""])


def _tensor(producer: str, name: str, comment: str) -> str:
    """(c): `producer`'s reply {x, scale} goes on to take(x, double scale)."""
    models = {"p": producer, "c": "take"}
    steps = {"s1": f"p.{producer}, with $input", "s2": "c.take, with s1"}
    return blueprint(comment, name, models, steps, "s2")


BLUEPRINTS = {
    "chain.yaml": blueprint(
        "bench/broker.py (a): three trivial steps in a row; every edge is wire-identical",
        "chain3",
        {"m1": "add1", "m2": "add1", "m3": "add1"},
        {"s1": "m1.add1, with $input", "s2": "m2.add1, with s1", "s3": "m3.add1, with s2"},
        "s3",
    ),
    "fanin.yaml": blueprint(
        "bench/broker.py (b): three 20 ms branches in parallel, then a fan-in step",
        "fanin",
        {"b1": "slow", "b2": "slow", "b3": "slow", "j": "join3"},
        {
            "r1": "b1.slow, with $input",
            "r2": "b2.slow, with $input",
            "r3": "b3.slow, with $input",
            "sum": "j.join3, with {a: r1.value, b: r2.value, c: r3.value}",
        },
        "sum",
    ),
    "tensor-fwd.yaml": _tensor(
        "scale64",
        "tensorfwd",
        "bench/broker.py (c): 4 MB Tensor; scale64's reply {x, double scale} is wire-identical\n"
        "to take's request {x, double scale}: forwarded as bytes",
    ),
    "tensor-tx.yaml": _tensor(
        "scale32",
        "tensortx",
        "bench/broker.py (c): 4 MB Tensor; scale32's reply {x, float scale} is assignable to\n"
        "take's request {x, double scale} (float -> double), not wire-identical: transcoded",
    ),
}


@dataclass(frozen=True)
class Scenario:
    name: str
    part: str
    payload: str  # broker_clients.py --payload
    conc: int = 1
    blueprint: str | None = None  # through the broker: this blueprint
    bundles: tuple[str, ...] = ()  # direct: these bundles, called in this order
    hops: int = 1  # model calls per call (broker: its steps)
    expect: int | None = None
    label: str = ""
    fuse: bool = False  # `modelwire run --fuse`: the models run inside the broker


def _chain(conc: int, tag: str) -> list[Scenario]:
    how = "sync client, 1 in flight" if conc == 1 else f"grpc.aio, {conc} in flight"
    return [
        Scenario(
            f"chain/fused-{tag}",
            "a",
            "chain",
            conc,
            "chain.yaml",
            hops=3,
            expect=4,
            label=f"client -> broker --fuse -> 3 steps in its process; {how}",
            fuse=True,
        ),
        Scenario(
            f"chain/broker-{tag}",
            "a",
            "chain",
            conc,
            "chain.yaml",
            hops=3,
            expect=4,
            label=f"client -> broker -> 3 steps; {how}",
        ),
        Scenario(
            f"chain/direct-{tag}",
            "a",
            "chain",
            conc,
            bundles=("add1",) * 3,
            hops=3,
            expect=4,
            label=f"client -> 3 models in sequence; {how}",
        ),
    ]


# (name, part, payload, blueprint or the bundles called directly, hops, expect, label)
_FIXED: list[tuple[str, str, str, str | tuple[str, ...], int, int | None, str]] = [
    ("fanin/broker", "b", "fanin", "fanin.yaml", 4, 6,
     "client -> broker -> 3 x 20 ms in parallel -> fan-in"),
    ("branch/direct", "b", "fanin", ("slow",), 1, 2,
     "client -> one 20 ms branch"),
    ("tensor/broker-fwd", "c", "tensor", "tensor-fwd.yaml", 2, None,
     "broker, 2 steps, s1 -> s2 forwarded"),
    ("tensor/broker-tx", "c", "tensor", "tensor-tx.yaml", 2, None,
     "broker, 2 steps, s1 -> s2 transcoded (float -> double)"),
    ("tensor/direct", "c", "tensor", ("scale64", "take"), 2, None,
     "client -> scale64 -> take, reply bytes sent on"),
    ("tensor/direct-one", "c", "tensor", ("scale64",), 1, None,
     "client -> scale64: one direct call of one step"),
]  # fmt: skip

# fused (`modelwire run --fuse`), beside the unfused ones: (name, part, payload, blueprint,
# hops, expect, label)
_FUSED: list[tuple[str, str, str, str, int, int | None, str]] = [
    ("fanin/fused", "b", "fanin", "fanin.yaml", 4, 6,
     "broker --fuse: 3 x 20 ms in threads -> fan-in"),
    ("tensor/fused-fwd", "c", "tensor", "tensor-fwd.yaml", 2, None,
     "broker --fuse, 2 steps, the array passed as a value"),
]  # fmt: skip


def scenarios(parts: set[str]) -> list[Scenario]:
    out: list[Scenario] = []
    if "a" in parts:
        out += _chain(1, "seq") + _chain(CONC, f"c{CONC}")
        out.append(
            Scenario(
                "add1/direct-seq",
                "a",
                "chain",
                1,
                bundles=("add1",),
                hops=1,
                expect=2,
                label="client -> one add1 model; sync client, 1 in flight",
            )
        )
    for name, part, payload, via, hops, expect, label in _FIXED:
        if part in parts:
            bp, bundles = (via, ()) if isinstance(via, str) else (None, via)
            out.append(Scenario(name, part, payload, 1, bp, bundles, hops, expect, label))
    for name, part, payload, bp, hops, expect, label in _FUSED:
        if part in parts:
            out.append(Scenario(name, part, payload, 1, bp, (), hops, expect, label, fuse=True))
    return out
