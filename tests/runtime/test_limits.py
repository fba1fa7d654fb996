"""Message size limit: 256 MiB by default, `--max-message-mb` otherwise; a message over it
gets RESOURCE_EXHAUSTED, in either direction, and the server carries on."""

from __future__ import annotations

import pytest

from modelwire.config import DEFAULT_MAX_MESSAGE_MB, RuntimeConfig
from modelwire.errors import ServiceError
from tests.runtime.serving import PATHS
from tests.servers import health_status

MiB = 1024 * 1024


def test_default_limit_is_256_mib():
    assert DEFAULT_MAX_MESSAGE_MB == 256
    assert RuntimeConfig().max_message_bytes == 256 * MiB


@pytest.mark.parametrize("path", PATHS)
def test_message_over_max_message_mb_is_resource_exhausted(own_server, path):
    served = own_server("slow", *path, max_message_mb=1)
    client = served.client()
    assert client.measure(bytes(MiB - 1024)) == MiB - 1024
    with pytest.raises(ServiceError) as info:
        client.measure(bytes(MiB + 1))
    assert info.value.status == "RESOURCE_EXHAUSTED"
    assert info.value.details.startswith("SERVER: Received message larger than max (")
    assert info.value.details.endswith(f" vs. {MiB})")
    assert len(client.blob(MiB - 1024)) == MiB - 1024
    with pytest.raises(ServiceError) as info:
        client.blob(MiB + 1)
    assert info.value.status == "RESOURCE_EXHAUSTED"
    # the server checks the reply itself, so its message and its metrics say why
    assert info.value.details == (
        f"blob: the reply is {MiB + 5} bytes, over the server's limit of {MiB} bytes "
        "(modelwire serve --max-message-mb)"
    )
    assert health_status(served.address) == "SERVING"


@pytest.mark.parametrize("kind", ["sync", "aio"])
def test_default_limit_is_above_grpcs_4_mib(shared_server, kind):
    """grpcio's own default is 4 MiB; ours lets 5 MiB through each way."""
    served = shared_server("slow", "subprocess", kind)
    client = served.client()
    assert client.measure(bytes(5 * MiB)) == 5 * MiB
    assert len(client.blob(5 * MiB)) == 5 * MiB
