"""A blueprint as frozen records, every element with its line and column.

The format (DESIGN.md "Broker and blueprints"):

    name: photo-advisor
    models:
      faces:   {bundle: ../examples/build/face-detector, replicas: 2}  # relative to this file
      smiles:  {catalog: smile-detector:1.0.0}
      advisor: {address: localhost:50070}
    fuse: true            # optional: bundle models run inside the broker (also per model)
    methods:
      advise:
        steps:
          face_boxes: {call: faces.detect, with: $input, timeout: 2s, retry: 2}
          advice:     {call: advisor.recommend,
                       with: {faces: face_boxes, eyes: eye_boxes.boxes}}
        output: advice

A reference is `$input`, `$input.field.path`, a step name, or `step.field.path`.
This module holds the records; `modelwire.broker.loader` reads them from YAML,
and nothing here resolves models or types.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from modelwire.config import ClientTls
from modelwire.diagnostics import Location

__all__ = ["INPUT", "Autoscale", "Blueprint", "ModelRef", "Ref", "SolutionMethod", "Step"]

INPUT = "$input"  # the variable a reference to the solution's request starts with


@dataclass(frozen=True, slots=True)
class Autoscale:
    """`autoscale: {min: 2, max: 8, cpu: 70}`: the Kubernetes export's
    HorizontalPodAutoscaler keeps between `min` and `max` pods, aiming at `cpu` percent
    of the pods' CPU requests."""

    min: int
    max: int
    cpu: int = 80


@dataclass(frozen=True, slots=True)
class ModelRef:
    """A model of the blueprint: `kind` is bundle, catalog or address."""

    name: str
    kind: str
    value: str
    location: Location
    path: Path | None = None  # a bundle's path, resolved against the blueprint's folder
    replicas: int = 1  # copies the runner starts (`replicas: N`; bundle and catalog only)
    autoscale: Autoscale | None = None  # opt-in bounds for the Kubernetes export
    fuse: bool | None = None  # `fuse:` of the model: None when it says nothing
    isolate: bool = False  # `isolate: true`: always a process of its own, never fused
    tls: ClientTls | None = None  # `tls:` of an address model: how the broker dials it


@dataclass(frozen=True, slots=True)
class Ref:
    """A reference: `$input` (step None) or a step, then a field path."""

    step: str | None
    path: tuple[str, ...]
    text: str
    location: Location

    @property
    def is_input(self) -> bool:
        return self.step is None


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    model: str
    method: str
    inputs: Ref | dict[str, Ref]  # `with:` -- one reference, or consumer field -> reference
    location: Location
    call_location: Location
    timeout: float | None = None
    retry: int = 0
    # False when a reference in `with:` could not be read (reported by the loader): the
    # inputs are partial, so the type check skips this step's request
    complete: bool = True

    def refs(self) -> Iterator[Ref]:
        if isinstance(self.inputs, Ref):
            yield self.inputs
        else:
            yield from self.inputs.values()


@dataclass(frozen=True, slots=True)
class SolutionMethod:
    name: str
    steps: dict[str, Step]
    output: Ref
    location: Location
    # steps the loader could not read at all (reported there): references to them are
    # not reported again as unknown steps
    unreadable: frozenset[str] = frozenset()
    fuse: bool = False  # top-level `fuse: true`: fuse every bundle model that does not opt out

    @property
    def complete(self) -> bool:
        """Every step was read whole (otherwise the loader reported what was not)."""
        return not self.unreadable and all(s.complete for s in self.steps.values())


@dataclass(frozen=True, slots=True)
class Blueprint:
    name: str
    file: str
    models: dict[str, ModelRef]
    methods: dict[str, SolutionMethod]
    location: Location = field(default_factory=lambda: Location("", 1, 1))
    # models the loader could not read (reported there): steps calling them are not
    # reported again as calling unknown models
    unreadable: frozenset[str] = frozenset()
    fuse: bool = False  # top-level `fuse: true`: fuse every bundle model that does not opt out
