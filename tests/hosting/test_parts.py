"""A host alive and SERVING can be not ready for a dependency's sake: the parts of its
`ServingState` (a solution's methods) move both ways, gRPC health reports each part under
its own name and the whole server as ready only while every part is, and the drain states
keep their meaning (a draining host is never ready, whatever its parts say)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import pytest

from modelwire.hosting.host import AioServiceHost, ServiceHost, Serving, ServingState
from modelwire.hosting.remote import health_status
from tests.hosting.servers import SERVICE, ReadinessFace, spec

pytestmark = pytest.mark.timeout(60)

PART = f"{SERVICE}/Add"


def test_parts_move_both_ways_and_say_why():
    state = ServingState()
    changes: list[bool] = []
    state.subscribe(lambda: changes.append(state.ready))
    assert state.set_part(PART, True)  # a new part is a change
    assert not state.ready  # STARTING
    state.advance(Serving.SERVING)
    assert state.ready and state.part_ready(PART)
    assert state.set_part(PART, False, "model 'echo' is down")
    assert not state.set_part(PART, False, "model 'echo' failed")  # still not ready
    assert (state.ready, state.part_ready(PART)) == (False, False)
    assert state.not_ready == {PART: "model 'echo' failed"}
    assert state.set_part(PART, True)
    assert state.ready and state.not_ready == {}
    assert not state.part_ready("unknown")
    state.set_part(PART, False, "model 'echo' is down")
    state.advance(Serving.DRAINING)
    assert state.set_part(PART, True)
    assert not state.ready and not state.part_ready(PART)  # parts cannot undo a drain
    assert changes == [False, True, False, True, False, False, False]


def _wait(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def test_health_of_the_sync_host_follows_its_parts():
    state = ServingState()
    state.set_part(PART, True)
    face = ReadinessFace(state)
    host = ServiceHost(spec(), faces=[face], state=state).start()
    try:
        assert [health_status(host.address, n) for n in ("", SERVICE, PART)] == ["SERVING"] * 3
        # from another thread, as a supervisor's would
        threading.Thread(target=state.set_part, args=(PART, False, "model down")).start()
        _wait(lambda: health_status(host.address) == "NOT_SERVING", "health to follow")
        assert [health_status(host.address, n) for n in (SERVICE, PART)] == ["NOT_SERVING"] * 2
        assert face.ask() == "not ready"  # /readyz reads the same state
        state.set_part(PART, True)
        assert [health_status(host.address, n) for n in ("", SERVICE, PART)] == ["SERVING"] * 3
        assert face.ask() == "ready"
    finally:
        host.stop(0)


def test_health_of_the_aio_host_follows_its_parts_from_any_thread():
    state = ServingState()
    state.set_part(PART, True)
    other = f"{SERVICE}/Fail"
    state.set_part(other, True)

    async def main() -> list[list[str]]:
        host = await AioServiceHost(spec(), state=state).start()
        seen = []
        try:
            names = ("", SERVICE, PART, other)

            def statuses() -> list[str]:
                return [health_status(host.address, n) for n in names]

            seen.append(await asyncio.to_thread(statuses))
            state.set_part(PART, False, "model down")  # on the loop
            await asyncio.sleep(0.2)
            seen.append(await asyncio.to_thread(statuses))
            await asyncio.to_thread(state.set_part, PART, True)  # from a thread
            await asyncio.sleep(0.2)
            seen.append(await asyncio.to_thread(statuses))
            state.set_part(other, False, "model down")
            await host.stop(0)  # draining wins over every part
            seen.append([state.status.value])
        finally:
            await host.stop(0)
        return seen

    assert asyncio.run(main()) == [
        ["SERVING"] * 4,
        ["NOT_SERVING", "NOT_SERVING", "NOT_SERVING", "SERVING"],
        ["SERVING"] * 4,
        ["stopped"],
    ]
