"""The HTTP face's documentation: /openapi.json and the /docs page.

The OpenAPI document is rendered once from the schema (`modelwire.codegen.openapi`).
The page is `docs.html`, package data of `modelwire.hosting`: one self-contained file
(its script and style inline, nothing fetched from elsewhere, as the machines it runs
on may have no internet) that reads /openapi.json and shows every method with its
example request, a Send button and the answer.
"""

from __future__ import annotations

from importlib import resources

import orjson

from modelwire.codegen.openapi import openapi
from modelwire.codegen.schema import ModelSchema
from modelwire.hosting.http_asgi import Request, Response

__all__ = ["DocsPages", "docs_html"]


def docs_html() -> bytes:
    """The /docs page, from the package data."""
    return resources.files("modelwire.hosting").joinpath("docs.html").read_bytes()


class DocsPages:
    """The two documentation routes of one service's face, rendered on first request."""

    def __init__(self, schema: ModelSchema, version: str = "") -> None:
        self._schema = schema
        self._version = version
        self._openapi: bytes | None = None
        self._page: bytes | None = None

    async def openapi(self, request: Request) -> Response:
        if self._openapi is None:
            document = openapi(self._schema, version=self._version)
            self._openapi = orjson.dumps(document, option=orjson.OPT_INDENT_2)
        return Response(200, "application/json", self._openapi)

    async def page(self, request: Request) -> Response:
        if self._page is None:
            self._page = docs_html()
        return Response(200, "text/html; charset=utf-8", self._page)
