"""TLS and mutual TLS on a model service's faces, with real certificates made for the session
(tests/tls_pki.py): what works, and each way it fails, said by its cause."""

from __future__ import annotations

import shutil
import socket
import ssl
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from modelwire import connect
from modelwire.bundle import dump
from modelwire.config import ClientTls, ServerTls
from modelwire.errors import ConfigError, ServiceError
from modelwire.hosting.http_client import HttpTarget, fetch_manifest
from modelwire.hosting.remote import health_status
from tests.fixtures.models import echo
from tests.runtime.serving import Served, serve
from tests.tls_pki import Pair


@pytest.fixture(scope="session")
def echo_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return dump(echo.model(), "echo", tmp_path_factory.mktemp("tls-bundle") / "echo")


def server_tls(pair: Pair, client_ca: Path | None = None) -> ServerTls:
    return ServerTls(str(pair.cert), str(pair.key), str(client_ca) if client_ca else None)


@pytest.fixture
def tls_server(echo_bundle: Path) -> Iterator[Callable[..., Served]]:
    """tls_server(tls, kind="sync", **config) -> the echo model served with `tls`."""
    running: list[Served] = []

    def start(tls: ServerTls | None, kind: str = "sync", **config: Any) -> Served:
        served = serve(echo_bundle, "in-process", kind, tls=tls, **config)
        running.append(served)
        return served

    yield start
    for s in running:
        s.stop()


def https_url(served: Served) -> str:
    assert served.http_address is not None
    return f"https://{served.http_address}"


def peer_certificate(address: str, ca: Path) -> bytes:
    """The DER certificate the server at `address` presents now, on a new connection."""
    host, _, port = address.rpartition(":")
    ctx = ssl.create_default_context(cafile=str(ca))
    with (
        socket.create_connection((host, int(port)), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname=host) as conn,
    ):
        der = conn.getpeercert(binary_form=True)
    assert der is not None
    return der


def der_of(pair: Pair) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pair.cert.read_text())


@pytest.mark.parametrize("kind", ["sync", "aio"])
def test_grpc_and_http_faces_serve_tls_that_clients_verify(kind, pki, tls_server):
    served = tls_server(server_tls(pki.server), kind, metrics_port=0)
    trust = ClientTls(ca=str(pki.ca))
    with connect(served.address, tls=trust) as model:
        assert model.add(1.5, 2.0) == 3.5
    assert health_status(served.address, tls=trust) == "SERVING"
    manifest = fetch_manifest(HttpTarget.parse(https_url(served), trust), 5)
    assert manifest["schema"]["name"] == "echo"
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    with urllib.request.urlopen(f"{https_url(served)}/readyz", context=ctx, timeout=5) as reply:
        assert reply.status == 200
    # the metrics endpoint follows the same setting
    running = served.handle.running if kind == "aio" else served.handle
    metrics = f"https://127.0.0.1:{running.metrics_port}/metrics"
    with urllib.request.urlopen(metrics, context=ctx, timeout=5) as reply:
        assert b"modelwire" in reply.read()


def test_plaintext_to_a_tls_server_says_to_use_tls(pki, tls_server):
    served = tls_server(server_tls(pki.server))
    with pytest.raises(ServiceError) as info:
        connect(served.address, timeout=5)
    assert str(info.value) == (
        f"cannot reach {served.address}: the server speaks TLS and this client plaintext: "
        "connect with TLS (--tls, and --ca FILE for a private CA)"
    )
    with pytest.raises(ServiceError, match="the server speaks TLS and this client plaintext"):
        health_status(served.address)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("wrong CA", "the server's certificate is not signed by the CA in {other_ca}: give the "),
        ("system CAs", "the server's certificate is not signed by the system's CAs: give the CA"),
        ("expired", "the server's certificate has expired"),
        ("other name", "the server's certificate is not for '127.0.0.1': dial a name it carries"),
    ],
)
def test_a_certificate_that_does_not_verify_names_the_cause(case, expected, pki, tls_server):
    pair = {"expired": pki.expired, "other name": pki.elsewhere}.get(case, pki.server)
    served = tls_server(server_tls(pair))
    ca = {"wrong CA": str(pki.other_ca), "system CAs": None}.get(case, str(pki.ca))
    with pytest.raises(ServiceError) as info:
        connect(served.address, tls=ClientTls(ca=ca), timeout=5)
    text = str(info.value)
    assert text.startswith(f"cannot reach {served.address}: ")
    assert expected.format(other_ca=pki.other_ca) in text


def test_server_name_overrides_the_name_checked(pki, tls_server):
    served = tls_server(server_tls(pki.elsewhere))
    tls = ClientTls(ca=str(pki.ca), server_name="example.org")
    with connect(served.address, tls=tls) as model:
        assert model.add(1, 1) == 2


def test_tls_to_a_plaintext_server_says_it_is_plaintext(pki, tls_server):
    served = tls_server(None)
    with pytest.raises(ServiceError) as info:
        connect(served.address, tls=ClientTls(ca=str(pki.ca)), timeout=5)
    assert str(info.value) == (
        f"cannot reach {served.address}: the server does not speak TLS (it serves plaintext): "
        "drop --tls"
    )


@pytest.mark.parametrize("kind", ["sync", "aio"])
def test_mutual_tls_refuses_a_client_without_a_certificate_of_its_ca(kind, pki, tls_server):
    served = tls_server(server_tls(pki.server, client_ca=pki.ca), kind)
    with pytest.raises(ServiceError) as info:
        connect(served.address, tls=ClientTls(ca=str(pki.ca)), timeout=5)
    assert str(info.value) == (
        f"cannot reach {served.address}: the server asks for a client certificate (mutual "
        "TLS): give one with --cert FILE --key FILE"
    )
    stranger = ClientTls(ca=str(pki.ca), cert=str(pki.stranger.cert), key=str(pki.stranger.key))
    with pytest.raises(ServiceError, match="does not accept this client's certificate"):
        connect(served.address, tls=stranger, timeout=5)
    alice = ClientTls(ca=str(pki.ca), cert=str(pki.client.cert), key=str(pki.client.key))
    with connect(served.address, tls=alice) as model:
        assert model.add(2, 2) == 4
    # the HTTP face asks for the same
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        urllib.request.urlopen(f"{https_url(served)}/readyz", context=ctx, timeout=5).read()
    ctx.load_cert_chain(str(pki.client.cert), str(pki.client.key))
    with urllib.request.urlopen(f"{https_url(served)}/readyz", context=ctx, timeout=5) as reply:
        assert reply.status == 200


@pytest.mark.parametrize("kind", ["sync", "aio"])
def test_a_renewed_certificate_serves_new_connections_without_a_restart(
    kind, pki, tls_server, tmp_path
):
    live = Pair(tmp_path / "live.crt", tmp_path / "live.key")
    shutil.copy(pki.server.cert, live.cert)
    shutil.copy(pki.server.key, live.key)
    served = tls_server(server_tls(live), kind)
    http = served.http_address
    assert http is not None
    assert peer_certificate(served.address, pki.ca) == der_of(pki.server)
    assert peer_certificate(http, pki.ca) == der_of(pki.server)
    trust = ClientTls(ca=str(pki.ca))
    before = connect(served.address, tls=trust)
    # the way a cert-manager or certbot renewal lands: new files moved into place
    shutil.copy(pki.renewed.cert, tmp_path / "new.crt")
    shutil.copy(pki.renewed.key, tmp_path / "new.key")
    (tmp_path / "new.key").replace(live.key)
    (tmp_path / "new.crt").replace(live.cert)
    assert peer_certificate(served.address, pki.ca) == der_of(pki.renewed)
    assert peer_certificate(http, pki.ca) == der_of(pki.renewed)
    assert before.add(1, 2) == 3  # a connection made before goes on
    before.close()
    # a broken renewal (a key of another certificate) is refused; the last good one serves
    shutil.copy(pki.client.key, live.key)
    assert peer_certificate(served.address, pki.ca) == der_of(pki.renewed)
    assert peer_certificate(http, pki.ca) == der_of(pki.renewed)


def test_server_files_that_do_not_load_name_the_option(pki, tls_server, tmp_path):
    (tmp_path / "notpem.crt").write_text("hello\n")
    cases = [
        (ServerTls(str(tmp_path / "missing.crt"), str(pki.server.key)), "tls_cert", "cannot read"),
        (ServerTls(str(tmp_path / "notpem.crt"), str(pki.server.key)), "tls_cert", "not a PEM"),
        (ServerTls(str(pki.server.cert), str(pki.client.key)), "tls_key", "is not the key of"),
        (
            ServerTls(str(pki.server.cert), str(pki.server.key), str(pki.server.key)),
            "tls_client_ca",
            "no CA",
        ),
    ]
    for tls, option, words in cases:
        with pytest.raises(ConfigError) as info:
            tls_server(tls)
        assert info.value.key == option, info.value
        assert words in str(info.value)


def test_server_options_go_together():
    assert ServerTls.from_options(None, None) is None
    with pytest.raises(ConfigError, match="needs --tls-key FILE"):
        ServerTls.from_options("a.crt", None)
    with pytest.raises(ConfigError, match="needs --tls-cert FILE"):
        ServerTls.from_options(None, "a.key")
    with pytest.raises(ConfigError, match="mutual TLS needs the server's own certificate"):
        ServerTls.from_options(None, None, "ca.crt")
    with pytest.raises(ConfigError, match="add --key"):
        ClientTls(cert="c.crt")
