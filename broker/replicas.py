"""How many copies of each model `modelwire run` starts, and the names it gives them.

A blueprint's `replicas: N` (default 1) holds unless `run --replicas MODEL=N` says
otherwise; only the models the runner starts (`bundle:`, `catalog:`) have replicas. Each
copy is supervised on its own under a name of its own: the model's name when it has one
copy (so the logs of a model without replicas read as before), `model#1`, `model#2`, ...
otherwise. The broker holds the copies of a model as its endpoints, in that order
(`modelwire.broker.endpoints`).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from modelwire.broker.blueprint import Blueprint
from modelwire.errors import ConfigError

__all__ = ["Replica", "plan_replicas"]


@dataclass(frozen=True, slots=True)
class Replica:
    """One copy of a model: its supervised name, its model and its index (from 0)."""

    key: str
    model: str
    index: int


def plan_replicas(
    bp: Blueprint, bundles: Mapping[str, Path], overrides: Mapping[str, int] | None = None
) -> list[Replica]:
    """The copies to start of every model in `bundles` (model -> bundle), in order.

    Args:
        overrides: model -> replicas, from `run --replicas` (over the blueprint's).

    Raises:
        ConfigError: an override names no model of the blueprint, a model modelwire
            does not start, or is below 1.
    """
    for name, n in (overrides or {}).items():
        given = f"{name}={n}"
        if name not in bp.models:
            near = difflib.get_close_matches(name, list(bp.models), n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            known = ", ".join(repr(m) for m in bp.models)
            raise ConfigError(
                "--replicas", given, f"the blueprint has no model {name!r}{hint} (it has {known})"
            )
        if name not in bundles:
            raise ConfigError(
                "--replicas",
                given,
                f"model {name!r} runs at an address: only models modelwire starts ('bundle' "
                "or 'catalog') have replicas",
            )
        if n < 1:
            raise ConfigError("--replicas", given, "a model needs at least 1 replica")
    out = []
    for model in bundles:
        n = (overrides or {}).get(model, bp.models[model].replicas)
        for i in range(n):
            out.append(Replica(model if n == 1 else f"{model}#{i + 1}", model, i))
    return out
