"""TLS from the command line: `serve --tls-cert/--tls-key` (or their variables), and `call` and
`health` with `--ca` (or MODELWIRE_TLS_CA, or the config file's [tls])."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelwire import connect
from modelwire.config import ClientTls
from tests.servers import ServeProcess
from tests.tls_pki import Pki


@pytest.fixture(scope="module")
def tls_serve(bundles: dict[str, Path], pki: Pki) -> Iterator[ServeProcess]:
    """`modelwire serve` of the echo bundle with TLS, its files given by variables."""
    env = {"MODELWIRE_TLS_CERT": str(pki.server.cert), "MODELWIRE_TLS_KEY": str(pki.server.key)}
    proc = ServeProcess(str(bundles["echo"]), env=env, tls=ClientTls(ca=str(pki.ca)))
    yield proc
    proc.kill()


def test_call_and_health_with_ca(cli, tls_serve, pki):
    ca = str(pki.ca)
    result = cli("health", tls_serve.address, "--ca", ca)
    assert (result.exit_code, result.output) == (0, "SERVING\n"), result.output
    result = cli("call", tls_serve.address, "add", '{"a": 1, "b": 2.5}', "--ca", ca)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"value": 3.5}
    url = f"https://{tls_serve.http_address}"
    result = cli("call", "--http", url, "add", '{"a": 1, "b": 2.5}', "--ca", ca)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"value": 3.5}


def test_the_ca_from_the_environment_or_the_config_file(cli, tls_serve, pki, tmp_path):
    result = cli("health", tls_serve.address, env={"MODELWIRE_TLS_CA": str(pki.ca)})
    assert (result.exit_code, result.output) == (0, "SERVING\n"), result.output
    config = tmp_path / "config.toml"
    config.write_text(f'[tls]\nca = "{pki.ca}"\n')
    result = cli("health", tls_serve.address, env={"MODELWIRE_CONFIG": str(config)})
    assert (result.exit_code, result.output) == (0, "SERVING\n"), result.output


def test_plaintext_and_untrusted_clients_are_told_why(cli, tls_serve, pki):
    result = cli("health", tls_serve.address)
    assert result.exit_code == 1
    assert result.output == (
        f"error: cannot reach {tls_serve.address}: the server speaks TLS and this client "
        "plaintext: connect with TLS (--tls, and --ca FILE for a private CA)\n"
    )
    result = cli("call", tls_serve.address, "add", "{}", "--ca", str(pki.other_ca))
    assert result.exit_code == 1
    assert f"is not signed by the CA in {pki.other_ca}" in result.output
    url = f"https://{tls_serve.http_address}"
    result = cli("call", "--http", url, "add", "{}", "--ca", str(pki.other_ca))
    assert result.exit_code == 1
    assert "the server's certificate does not verify: unable to get local issuer" in result.output


def test_bad_tls_arguments_are_usage_errors(cli, bundles, pki, tmp_path):
    result = cli("serve", str(bundles["echo"]), "--tls-cert", str(tmp_path / "nope.crt"))
    assert result.exit_code == 2
    assert "Invalid value for '--tls-cert': File" in result.output
    assert "does not exist" in result.output
    result = cli("serve", str(bundles["echo"]), "--port", "0", "--tls-cert", str(pki.server.cert))
    assert result.exit_code == 1
    assert "tls_cert=" in result.output and "needs --tls-key FILE, its private key" in result.output
    result = cli("health", "127.0.0.1:1", "--cert", str(pki.client.cert))
    assert result.exit_code == 1
    assert "a client certificate needs its key and the other way round: add --key" in result.output


def test_workers_share_a_tls_port_and_the_supervisor_still_sees_their_health(bundles, pki):
    """Each worker's own health port stays plaintext on loopback, for its supervisor; the
    shared ports present the certificate."""
    trust = ClientTls(ca=str(pki.ca))
    tls = ("--tls-cert", str(pki.server.cert), "--tls-key", str(pki.server.key))
    proc = ServeProcess(str(bundles["echo"]), "--workers", "2", *tls, tls=trust)
    try:
        with connect(proc.address, tls=trust) as model:
            assert [model.add(i, 1) for i in range(4)] == [1, 2, 3, 4]
    finally:
        proc.kill()
