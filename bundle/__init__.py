"""The bundle: the modeling API (`Model`, `batched`), `dump` and `load`, the manifest,
pickling and requirement inference.

A bundle is what a contributor writes and the catalog stores: a directory (or the
same as a deterministic zip) with `modelwire.json`, `model.proto`, `model.pkl`,
`requirements.txt` and the source of local modules. This layer knows no gRPC.
"""

from __future__ import annotations

from modelwire.bundle.batching import BatchedMethod as BatchedMethod
from modelwire.bundle.batching import BatchPolicy as BatchPolicy
from modelwire.bundle.batching import batched as batched
from modelwire.bundle.manifest import Manifest as Manifest
from modelwire.bundle.model import Model as Model
from modelwire.bundle.model import create_namedtuple as create_namedtuple
from modelwire.bundle.reader import Bundle as Bundle
from modelwire.bundle.reader import LoadedModel as LoadedModel
from modelwire.bundle.reader import load as load
from modelwire.bundle.reader import peek_manifest as peek_manifest
from modelwire.bundle.reader import read_manifest as read_manifest
from modelwire.bundle.writer import build_files as build_files
from modelwire.bundle.writer import dump as dump

__all__ = [
    "BatchPolicy",
    "BatchedMethod",
    "Bundle",
    "LoadedModel",
    "Manifest",
    "Model",
    "batched",
    "build_files",
    "create_namedtuple",
    "dump",
    "load",
    "peek_manifest",
    "read_manifest",
]
