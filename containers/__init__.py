"""Containers: image builds from a host-side wheelhouse, models run as containers, and
the orchestration of compose and Kubernetes exports.

The Dockerfile, compose and manifest text is rendered by `modelwire.codegen`; this
layer talks to the Docker engine and the file system.
"""

from __future__ import annotations

__all__: list[str] = []
