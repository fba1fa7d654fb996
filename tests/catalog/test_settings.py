"""Where a client finds the catalog and its token: flag > MODELWIRE_* env > config file,
value by value, each source tried through the CLI against a real catalog."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from tests.catalog.helpers import Catalog

pytestmark = pytest.mark.timeout(60)

WRONG_TOKEN = "mwt_wrong"
NOWHERE = "127.0.0.1:1"
OK = "ok"
REFUSED = "refused"  # UNAUTHENTICATED: the wrong token was the one used


def _config(path: Path, address: str | None, token: str | None) -> None:
    lines = ["[catalog]"]
    if address:
        lines.append(f'address = "{address}"')
    if token:
        lines.append(f'token = "{token}"')
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


# each source: (address, token) as "good", "bad" or None (not given there); the config file
# is named by MODELWIRE_CONFIG, or in its default place under ~/.config (`home`)
CASES = [
    pytest.param(("good", "good"), None, None, OK, id="flags-only"),
    pytest.param(None, ("good", "good"), None, OK, id="env-only"),
    pytest.param(None, None, ("good", "good"), OK, id="file-only"),
    pytest.param(None, None, ("good", "good"), OK, id="file-only-home"),
    pytest.param(None, ("good", "good"), ("bad", "bad"), OK, id="env-beats-file-home"),
    pytest.param(("good", "good"), ("bad", "bad"), ("bad", "bad"), OK, id="flags-beat-env"),
    pytest.param(None, ("good", "good"), ("bad", "bad"), OK, id="env-beats-file"),
    pytest.param((None, "bad"), ("good", "good"), None, REFUSED, id="a-wrong-flag-still-wins"),
    pytest.param(None, (None, "bad"), ("good", "good"), REFUSED, id="a-wrong-env-still-wins"),
    pytest.param(("good", None), (None, "good"), ("bad", "bad"), OK, id="value-by-value"),
    pytest.param(None, ("good", None), (None, "good"), OK, id="address-env-token-file"),
]


@pytest.mark.parametrize(("flags", "env", "file", "outcome"), CASES)
def test_settings_precedence(
    catalog: Catalog,
    cli: Callable[..., Result],
    tmp_path: Path,
    flags: tuple[str | None, str | None] | None,
    env: tuple[str | None, str | None] | None,
    file: tuple[str | None, str | None] | None,
    outcome: str,
    request: pytest.FixtureRequest,
):
    in_default_place = request.node.callspec.id.endswith("-home")
    token = catalog.user("alice")
    good = {"address": catalog.address, "token": token}
    bad = {"address": NOWHERE, "token": WRONG_TOKEN}

    def pick(values: tuple[str | None, str | None] | None, i: int) -> str | None:
        if values is None or values[i] is None:
            return None
        return (good if values[i] == "good" else bad)["address" if i == 0 else "token"]

    args = ["search", "--json"]
    if pick(flags, 0):
        args += ["--catalog", pick(flags, 0)]  # type: ignore[list-item]
    if pick(flags, 1):
        args += ["--token", pick(flags, 1)]  # type: ignore[list-item]
    environ: dict[str, str] = {}
    if pick(env, 0):
        environ["MODELWIRE_CATALOG"] = pick(env, 0)  # type: ignore[assignment]
    if pick(env, 1):
        environ["MODELWIRE_TOKEN"] = pick(env, 1)  # type: ignore[assignment]
    if file is not None:
        if in_default_place:
            path = Path.home() / ".config" / "modelwire" / "config.toml"
        else:
            path = tmp_path / "modelwire.toml"
            environ["MODELWIRE_CONFIG"] = str(path)
        _config(path, pick(file, 0), pick(file, 1))
    result = cli(*args, env=environ)
    if outcome == OK:
        assert (result.exit_code, result.stdout, result.stderr) == (0, "[]\n", "")
    else:
        assert (result.exit_code, result.stderr) == (
            1,
            f"error: {catalog.address} SearchModels: UNAUTHENTICATED: the token is not valid "
            "(modelwire catalog user token NAME issues a new one)\n",
        )


def test_missing_settings_say_where_to_put_them(cli: Callable[..., Result], tmp_path: Path):
    config = Path.home() / ".config" / "modelwire" / "config.toml"
    no_address = cli("search", env={})
    assert (no_address.exit_code, no_address.stderr) == (
        1,
        "error: no catalog address: pass --catalog HOST:PORT, set MODELWIRE_CATALOG, or put it "
        f"in {config} ([catalog] address = ...)\n",
    )
    no_token = cli("search", env={"MODELWIRE_CATALOG": NOWHERE})
    assert (no_token.exit_code, no_token.stderr) == (
        1,
        f"error: no catalog token: pass --token, set MODELWIRE_TOKEN, or put it in {config} "
        "([catalog] token = ...); modelwire catalog user add NAME prints one\n",
    )
    broken = tmp_path / "broken.toml"
    broken.write_text("[catalog\n")
    result = cli("search", env={"MODELWIRE_CONFIG": str(broken)})
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {broken}: not a valid config file (")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("catalog = 5\n", "catalog must be a [catalog] table, got 5"),
        ("[catalog]\naddress = 8080\n", "[catalog] address must be a string, got 8080"),
        ("[catalog]\ntoken = true\n", "[catalog] token must be a string, got True"),
    ],
    ids=["not-a-table", "address-number", "token-bool"],
)
def test_a_config_file_with_values_of_the_wrong_type_is_one_error_line(
    cli: Callable[..., Result], tmp_path: Path, text: str, problem: str
):
    config = tmp_path / "config.toml"
    config.write_text(text)
    result = cli("search", env={"MODELWIRE_CONFIG": str(config)})
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        f"error: {config}: {problem}\n",
    )


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        pytest.param(
            ["--catalog", "127.0.0.1:99999"],
            {},
            "--catalog='127.0.0.1:99999': port '99999' is not 1-65535",
            id="port-out-of-range",
        ),
        pytest.param(
            ["--catalog", "localhost"],
            {},
            "--catalog='localhost': expected HOST:PORT, e.g. localhost:50060",
            id="no-port",
        ),
        pytest.param(
            [],
            {"MODELWIRE_CATALOG": "localhost:0"},
            "MODELWIRE_CATALOG='localhost:0': port '0' is not 1-65535",
            id="env-port-zero",
        ),
        pytest.param(
            ["--catalog", "http://localhost:50060"],
            {},
            "--catalog='http://localhost:50060': expected HOST:PORT, e.g. localhost:50060 "
            "(a gRPC address has no http:// scheme)",
            id="scheme",
        ),
        pytest.param(
            ["--catalog", "50060"],
            {},
            "--catalog='50060': expected HOST:PORT, e.g. localhost:50060",
            id="no-host",
        ),
    ],
)
def test_a_malformed_catalog_address_is_refused_before_any_call(
    cli: Callable[..., Result], args: list[str], env: dict[str, str], message: str
):
    result = cli("search", *args, "--token", "t", env=env)
    assert (result.exit_code, result.stdout, result.stderr) == (1, "", f"error: {message}\n")
