"""A loaded model's methods called in-process, with the arguments its served methods take.

`load(bundle).classify(...)` binds its arguments as `connect(address).classify(...)`
does (`modelwire.codegen.arguments`), encodes them as the request, and calls the
Python function with what the server would decode from those bytes. So a call
shape, a wrong value or a missing field gives the same answer with or without a
server, and what the function receives is what it receives when served (a Tensor
is a read-only view, a dict becomes the model's NamedTuple). The function's return
value comes back as it is, without being encoded. A batched method also has its
`.batch` function (called as it is) and its `.policy`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from modelwire.bundle.batching import BatchedMethod
from modelwire.codegen.descriptors import file_descriptor, message_classes
from modelwire.codegen.python_types import Binding
from modelwire.codegen.schema import ModelSchema
from modelwire.codegen.values import MethodCodec, ValueCodec

__all__ = ["LocalMethod", "local_codec"]


def local_codec(schema: ModelSchema, binding: Binding) -> ValueCodec:
    """The codec a server of `schema` would use, bound to the model's own classes."""
    return ValueCodec(schema, message_classes(file_descriptor(schema)), binding)


class LocalMethod:
    """One method of a loaded model; call it like the served method."""

    def __init__(self, model_name: str, fn: Callable[..., Any], codec: MethodCodec) -> None:
        self._fn = fn
        self._codec = codec
        self._model_name = model_name
        self.name = codec.method.name
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn  # inspect.signature() shows the function's parameters
        if isinstance(fn, BatchedMethod):
            # a batched method's batch function and policy, as on the Model itself
            self.batch = fn.batch
            self.policy = fn.policy

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Bind and check the arguments as a request, then call the function.

        Raises:
            TypeError: the arguments do not bind to the request, or a value does not
                fit its field (`EncodeError`).
            ValueError: the request is incomplete below its top level (`DecodeError`).
        """
        request = self._codec.encode_request(args, kwargs)
        call_args, call_kwargs = self._codec.decode_request(request)
        return self._fn(*call_args, **call_kwargs)

    def __repr__(self) -> str:
        return f"<local method {self._model_name}.{self.name}>"
