"""The catalog over TLS: `catalog serve --tls-cert`, every client command with `--ca`, no token
sent in plaintext beyond loopback, and `run` pulling `catalog:` models through TLS."""

from __future__ import annotations

import json
import ssl
import textwrap
import urllib.request
from pathlib import Path

import pytest

from modelwire.catalog.channel import CatalogChannel
from modelwire.config import CatalogSettings, ClientTls
from modelwire.errors import ConfigError
from modelwire.runtime.client import connect
from tests.broker.helpers import BrokerProcess
from tests.catalog.helpers import CatalogProcess
from tests.catalog.test_blueprint_models import BLUEPRINT
from tests.tls_pki import Pki


def _tls_catalog(data: Path, pki: Pki, *args: str) -> CatalogProcess:
    return CatalogProcess(
        data,
        "--init",
        "--tls-cert",
        str(pki.server.cert),
        "--tls-key",
        str(pki.server.key),
        *args,
        tls=ClientTls(ca=str(pki.ca)),
    )


def test_every_catalog_command_speaks_tls(cli, pki, bundles, tmp_path):
    data = tmp_path / "data"
    catalog = _tls_catalog(data, pki)
    try:
        result = cli("catalog", "user", "add", "alice", "--data", str(data))
        token = result.output.splitlines()[-1]
        where = ("--catalog", catalog.address, "--token", token)
        ca = ("--ca", str(pki.ca))
        result = cli("push", str(bundles["tokenizer"]), *where, *ca)
        assert result.exit_code == 0, result.output
        publish = ("tokenizer:1.0.0", "--description", "splits text", "--category", "nlp")
        result = cli("publish", *publish, *where, *ca)
        assert result.exit_code == 0, result.output
        result = cli("search", "--json", *where, *ca)
        assert result.exit_code == 0, result.output
        assert [m["name"] for m in json.loads(result.output)] == ["tokenizer"]
        result = cli("show", "tokenizer", *where, env={"MODELWIRE_TLS_CA": str(pki.ca)})
        assert result.exit_code == 0, result.output
        result = cli("pull", "tokenizer", "-o", str(tmp_path / "t.zip"), *where, *ca)
        assert result.exit_code == 0, result.output
        result = cli("search", *where)
        assert result.exit_code == 1
        assert "the server speaks TLS and this client plaintext" in result.output
    finally:
        catalog.terminate()


def test_no_token_goes_in_plaintext_beyond_loopback(cli):
    result = cli("search", "--catalog", "10.1.2.3:50060", "--token", "secret")
    assert result.exit_code == 1
    assert result.output == (
        "error: catalog='10.1.2.3:50060': not a loopback address, and the token would cross "
        "the network in plaintext: connect with TLS (--tls, and --ca FILE for a private CA), "
        "or pass --insecure on a network you trust\n"
    )
    # said up front: nothing was dialled; --insecure (or its variable) lets it go
    CatalogChannel(CatalogSettings("10.1.2.3:50060", "secret", insecure=True)).close()
    CatalogChannel(CatalogSettings("10.1.2.3:50060", "secret", tls=ClientTls())).close()
    CatalogChannel(CatalogSettings("localhost:50060", "secret")).close()
    CatalogChannel(CatalogSettings("[::1]:50060", "secret")).close()
    settings = CatalogSettings.resolve(
        "10.1.2.3:50060", "secret", environ={"MODELWIRE_CATALOG_INSECURE": "1"}
    )
    CatalogChannel(settings).close()
    with pytest.raises(ConfigError, match="not a loopback address"):
        CatalogChannel(CatalogSettings("catalog.example.org:50060", "secret"))


def test_a_catalog_on_every_interface_without_tls_warns_at_start(tmp_path):
    catalog = CatalogProcess(tmp_path / "data", "--init", "--host", "0.0.0.0")
    try:
        warnings = [
            json.loads(line)["message"]
            for line in catalog.stderr.splitlines()
            if '"WARNING"' in line or '"warning"' in line
        ]
        assert (
            "serving the catalog on 0.0.0.0 without TLS: tokens cross the network in plaintext; "
            "give --tls-cert and --tls-key"
        ) in warnings
    finally:
        catalog.terminate()


def test_run_pulls_through_tls_and_serves_the_solution_on_tls(cli, pki, bundles, tmp_path):
    data = tmp_path / "data"
    catalog = _tls_catalog(data, pki)
    try:
        token = cli("catalog", "user", "add", "alice", "--data", str(data)).output.splitlines()[-1]
        for name in ("tokenizer", "summarizer"):
            where = ("--catalog", catalog.address, "--token", token, "--ca", str(pki.ca))
            assert cli("push", str(bundles[name]), *where).exit_code == 0
        path = tmp_path / "summary.yaml"
        path.write_text(textwrap.dedent(BLUEPRINT))
        env = {
            "MODELWIRE_CATALOG": catalog.address,
            "MODELWIRE_TOKEN": token,
            "MODELWIRE_TLS_CA": str(pki.ca),
            "XDG_CACHE_HOME": str(tmp_path / "xdg"),
            "HOME": str(tmp_path),
        }
        trust = ClientTls(ca=str(pki.ca))
        broker = BrokerProcess(
            path,
            "--tls-cert",
            str(pki.server.cert),
            "--tls-key",
            str(pki.server.key),
            env=env,
            serving=True,
            tls=trust,
        )
        try:
            with connect(broker.address, tls=trust) as solution:
                assert solution.summarize("the cat sat on the mat", 3) == "the cat sat (3 tokens)"
            # the solution's HTTP face is HTTPS with the same certificate
            ctx = ssl.create_default_context(cafile=str(pki.ca))
            url = f"https://{broker.http_address}/readyz"
            with urllib.request.urlopen(url, context=ctx, timeout=5) as reply:
                assert reply.status == 200
        finally:
            broker.close()
    finally:
        catalog.terminate()
