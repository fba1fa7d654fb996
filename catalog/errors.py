"""`CatalogError`: a catalog request that cannot be served, with the gRPC status to answer."""

from __future__ import annotations

from modelwire.errors import ModelwireError

__all__ = ["CatalogError"]


class CatalogError(ModelwireError):
    """A catalog request cannot be served.

    Attributes:
        code: the name of the gRPC status to answer with, e.g. ``'NOT_FOUND'``.
    """

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)
