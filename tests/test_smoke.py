"""The shortest path through everything: dump, serve, connect, call."""

from __future__ import annotations

import numpy as np

from modelwire.runtime.client import connect
from tests.fixtures.models import echo


def test_echo_model_answers_through_connect(serve_model):
    server = serve_model(echo.model(), "echo")
    with connect(server.address) as client:
        assert client.add(1.5, b=2) == 3.5
        arr = np.arange(6, dtype=np.float32).reshape(2, 3)
        np.testing.assert_array_equal(client.echo_tensor(arr), arr)
        rec = echo.Record("a", [1.0], echo.Color.GREEN, echo.Point(1, 2), None)
        got = client.echo_record(rec)
        assert got.name == "a" and got.scores == [1.0] and got.note is None
        assert got.color.name == "GREEN" and (got.where.x, got.where.y) == (1.0, 2.0)
