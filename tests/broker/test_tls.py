"""A blueprint's `address:` model served with TLS: `tls: {ca, cert, key, server_name}` says how
the broker reaches it (its schema, its health, every call), and bad settings are diagnostics."""

from __future__ import annotations

import shutil

import pytest

from modelwire.broker.check import check_file
from modelwire.bundle import load
from modelwire.config import RuntimeConfig, ServerTls
from modelwire.errors import BlueprintError
from modelwire.runtime.client import connect
from modelwire.runtime.server import start
from tests.broker.helpers import InProcessSolution, write_blueprint

RATE = """
name: rating
models:
  advisor: {address: "@advisor", tls: @tls}
methods:
  rate:
    steps:
      rating: {call: advisor.rate, with: {count: $input.count}}
    output: rating.text
"""


@pytest.fixture
def mtls_advisor(bundle, pki, servers):
    """The advisor model served with mutual TLS: clients need a certificate of the test CA."""
    tls = ServerTls(str(pki.server.cert), str(pki.server.key), str(pki.ca))
    return servers(start(load(bundle("advisor")), RuntimeConfig(port=0, http_port=None, tls=tls)))


def test_the_broker_reaches_an_address_model_over_mutual_tls(mtls_advisor, pki, tmp_path, servers):
    # files relative to the blueprint's folder, as a checkout of a solution would have them
    for name, src in {
        "ca.crt": pki.ca,
        "me.crt": pki.client.cert,
        "me.key": pki.client.key,
    }.items():
        shutil.copy(src, tmp_path / name)
    tls = "{ca: ca.crt, cert: me.crt, key: me.key, server_name: localhost}"
    path = write_blueprint(tmp_path / "r.yaml", RATE, advisor=mtls_advisor.address, tls=tls)
    solution = servers(InProcessSolution(path))
    with connect(solution.address) as client:
        assert client.rate(3) == "items: 3"


def test_without_a_client_certificate_the_check_says_why(mtls_advisor, pki, tmp_path):
    path = write_blueprint(
        tmp_path / "r.yaml", RATE, advisor=mtls_advisor.address, tls=f"{{ca: {pki.ca}}}"
    )
    with pytest.raises(BlueprintError) as info:
        check_file(path)
    assert "the server asks for a client certificate (mutual TLS)" in str(info.value)


@pytest.mark.parametrize(
    ("tls", "message"),
    [
        ("{ca: nowhere.crt}", "'ca' of 'tls' of model 'advisor': no file 'nowhere.crt'"),
        ("{ca: ca.crt, cert: ca.crt}", "a client certificate needs its key"),
        ("{pem: ca.crt}", "unknown key 'pem' in 'tls' of model 'advisor'"),
        ("[ca.crt]", "'tls' of model 'advisor' (true, or a mapping of ca, cert, key"),
    ],
)
def test_bad_tls_settings_are_diagnostics(tls, message, pki, tmp_path):
    shutil.copy(pki.ca, tmp_path / "ca.crt")
    path = write_blueprint(tmp_path / "r.yaml", RATE, advisor="127.0.0.1:1", tls=tls)
    with pytest.raises(BlueprintError) as info:
        check_file(path)
    assert message in str(info.value)


def test_only_address_models_take_tls(tmp_path, bundle):
    text = RATE.replace(
        '{address: "@advisor", tls: @tls}', f"{{bundle: {bundle('advisor')}, tls: true}}"
    )
    path = tmp_path / "r.yaml"
    path.write_text(text)
    with pytest.raises(BlueprintError) as info:
        check_file(path)
    assert "'tls' of model 'advisor': only 'address' models take it" in str(info.value)
