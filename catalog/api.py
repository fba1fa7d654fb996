"""`modelwire.catalog.v1.CatalogService`: the catalog's gRPC API, as schema IR.

Built with the same IR as model services, so the checked-in
`proto/modelwire/catalog/v1/catalog.proto` (its rendering; a test keeps them
equal), the run-time descriptors and reflection cannot drift, and no protoc
output is shipped.
"""

from __future__ import annotations

from modelwire.codegen.descriptors import MessageClass, MessageClasses, build_file, message_classes
from modelwire.codegen.lowering import lower
from modelwire.codegen.schema import (
    Field,
    ListType,
    Message,
    MessageType,
    Method,
    ModelSchema,
    Scalar,
    ScalarType,
)
from modelwire.codegen.wire import WireError, encode_varint, read_varint

__all__ = [
    "CATALOG_FILE",
    "CATALOG_SCHEMA",
    "CATALOG_SERVICE",
    "CHUNK_FIELD",
    "CatalogMessages",
    "catalog_classes",
    "chunk_message",
    "chunk_of",
]

_S = ScalarType(Scalar.STRING)
_B = ScalarType(Scalar.BYTES)
_I = ScalarType(Scalar.INT64)
_BOOL = ScalarType(Scalar.BOOL)


def _m(name: str, *fields: tuple[str, object], doc: str | None = None) -> Message:
    return Message(
        name,
        tuple(Field(n, i, t) for i, (n, t) in enumerate(fields, start=1)),  # type: ignore[arg-type]
        doc=doc,
    )


def _rpc(name: str, rpc: str, doc: str, streaming: str = "") -> Method:
    return Method(name, rpc, f"{rpc}Request", f"{rpc}Response", None, "message", doc, streaming)


_STRINGS = ListType(_S)

MESSAGES = (
    _m(
        "PushBundleRequest",
        ("header", MessageType("UploadHeader")),
        ("chunk", _B),
        doc="The first message carries the header, every following one a chunk of the zip.",
    ),
    _m(
        "PushBundleResponse",
        ("model", MessageType("ModelSummary")),
        ("created", _BOOL),
        doc="`created` is false when the same bytes were already stored under that version.",
    ),
    _m(
        "PullBundleRequest",
        ("name", _S),
        ("version", _S),
        doc="An empty version means the latest version visible to the caller.",
    ),
    _m(
        "PullBundleResponse",
        ("header", MessageType("DownloadHeader")),
        ("chunk", _B),
        doc="The first message carries the header, every following one a chunk of the zip.",
    ),
    _m(
        "PublishModelRequest",
        ("name", _S),
        ("version", _S),
        ("description", _S),
        ("category", _S),
        ("tags", _STRINGS),
        ("force", _BOOL),
        doc="Publishing a version whose validation failed or is still pending is refused "
        "unless `force` (its owner's choice, recorded in its validation).",
    ),
    _m("PublishModelResponse", ("model", MessageType("ModelSummary"))),
    _m("GetModelRequest", ("name", _S), ("version", _S)),
    _m(
        "GetModelResponse",
        ("model", MessageType("ModelSummary")),
        ("proto", _S),
        ("manifest_json", _S),
        ("versions", _STRINGS),
        ("validation", MessageType("ValidationStatus")),
    ),
    _m(
        "SearchModelsRequest",
        ("text", _S),
        ("category", _S),
        ("tags", _STRINGS),
        ("accepts", MessageType("MethodRef")),
        ("produces", MessageType("MethodRef")),
        ("all_versions", _BOOL),
        ("limit", _I),
        ("validated", _BOOL),
        doc="All given criteria must hold; `validated`: only versions whose validation "
        "passed. `accepts`: a method whose request is assignable "
        "from that method's response (it can follow it in a blueprint); `produces`: a "
        "method whose response is assignable to that method's request; with both, one "
        "method must do both. The answer lists, by name, the latest matching version of "
        "each model (every matching version, newest first, with `all_versions`), at most "
        "`limit` (100 when 0).",
    ),
    _m("SearchModelsResponse", ("models", ListType(MessageType("ModelSummary")))),
    _m(
        "UploadHeader",
        ("name", _S),
        ("version", _S),
        ("size", _I),
        ("sha256", _S),
        ("allow_breaking", _BOOL),
    ),
    _m("DownloadHeader", ("model", MessageType("ModelSummary")), ("size", _I), ("sha256", _S)),
    _m(
        "MethodRef",
        ("model", _S),
        ("version", _S),
        ("method", _S),
        doc="A method of a catalog model; an empty version means the latest.",
    ),
    _m(
        "MethodSummary",
        ("name", _S),
        ("rpc", _S),
        ("request", _S),
        ("response", _S),
        ("doc", _S),
        ("input", _S),
        ("output", _S),
        doc="`input` and `output` list the request's and the response's fields as the proto "
        "declares them, e.g. `text: string, limit: int32`.",
    ),
    _m(
        "ModelSummary",
        ("name", _S),
        ("version", _S),
        ("owner", _S),
        ("published", _BOOL),
        ("description", _S),
        ("category", _S),
        ("tags", _STRINGS),
        ("methods", ListType(MessageType("MethodSummary"))),
        ("sha256", _S),
        ("size", _I),
        ("created", _S),
        ("service", _S),
        ("validation", _S),
        doc="A model version as the catalog lists it; `sha256` identifies its bundle; "
        "`validation` is `pending`, `passed`, `failed` or `unvalidated` (no validating "
        "catalog has queued it).",
    ),
    _m(
        "ValidationStatus",
        ("status", _S),
        ("mode", _S),
        ("reason", _S),
        ("report_json", _S),
        ("note", _S),
        ("attempts", _I),
        ("running", _BOOL),
        ("ahead", _I),
        ("queued", _S),
        ("finished", _S),
        ("forced_status", _S),
        ("forced_by", _S),
        ("forced_at", _S),
        doc="A version's validation. `status` as in ModelSummary; `mode`: docker or venv; "
        "`reason`: why it failed; `report_json`: the report once it ended (REPORT_FORMAT 1); "
        "while pending, `note` says its step or why the validator retries, `running` whether "
        "it runs now and `ahead` how many jobs are before it; `forced_*`: the status it had "
        "when its owner published it with force, who and when.",
    ),
)

CATALOG_SCHEMA = ModelSchema(
    name="catalog",
    package="modelwire.catalog.v1",
    service="CatalogService",
    methods=(
        _rpc(
            "push_bundle",
            "PushBundle",
            "Upload a bundle (zip) in chunks; private to its owner until published.",
            "client",
        ),
        _rpc("pull_bundle", "PullBundle", "Download a bundle (zip) in chunks.", "server"),
        _rpc(
            "publish_model",
            "PublishModel",
            "Make a model version public, with its description and category.",
        ),
        _rpc("get_model", "GetModel", "A model version's metadata, proto and manifest."),
        _rpc(
            "search_models",
            "SearchModels",
            "Models by text, category, tag, and by the types they accept or produce.",
        ),
    ),
    messages=MESSAGES,
)
CATALOG_SERVICE = "modelwire.catalog.v1.CatalogService"
CATALOG_FILE = "modelwire/catalog/v1/catalog.proto"


class CatalogMessages:
    """The API's message classes, in a private descriptor pool, each resolved once.

    They are held here on purpose: protobuf (upb) keeps a message class only as
    long as something references it, so asking the pool again per request would
    build a new class each time and leave the old one, with its descriptors, to
    the cyclic garbage collector -- under load, in a server thread, where that
    ended in segfaults.
    """

    def __init__(self) -> None:
        self.classes: MessageClasses = message_classes(
            build_file(lower(CATALOG_SCHEMA), CATALOG_FILE)
        )
        self._by_name = {m.name: self.classes.get(m.name) for m in MESSAGES}

    def get(self, name: str) -> MessageClass:
        return self._by_name[name]


def catalog_classes() -> CatalogMessages:
    """The API's message classes (build one set per servicer or client, and keep it)."""
    return CatalogMessages()


# ---------------------------------------------------------------- chunk framing

# `chunk` is field 2 of both PushBundleRequest and PullBundleResponse, a length-delimited field
CHUNK_FIELD = 2
_CHUNK_TAG = bytes([CHUNK_FIELD << 3 | 2])


def chunk_message(data: bytes) -> bytes:
    """The wire form of a message holding only `chunk = data`.

    The same bytes protobuf would write, without building a message object and
    copying a MiB twice on the way.
    """
    return b"".join((_CHUNK_TAG, encode_varint(len(data)), data))


def chunk_of(message: bytes) -> memoryview | None:
    """The chunk of a serialized message that holds only a chunk (no copy); else None.

    Anything else (the header, or an unusual but valid encoding) is None, and
    the caller parses it with the message class.
    """
    if len(message) < 2 or message[0] != _CHUNK_TAG[0]:
        return None
    try:
        length, pos = read_varint(message, 1, len(message))
    except WireError:
        return None
    return memoryview(message)[pos:] if pos + length == len(message) else None
