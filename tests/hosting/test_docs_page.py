"""The /docs page in a real headless Chromium: it loads from this server alone, shows
every method with its example, sends each example with its Send button, and shows the
answer the service gives; a screenshot of the result is kept for people to look at
(MODELWIRE_SCREENSHOTS=DIR keeps it there). Once against the face alone, once against a
`modelwire serve` of a real bundle."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.docker.engine import in_ci
from tests.hosting.browser import Chromium, chromium_path
from tests.hosting.client import Client

SCREENSHOT_DIR = os.environ.get("MODELWIRE_SCREENSHOTS", "")


@pytest.fixture
def chromium():
    if chromium_path() is None:
        if in_ci():
            pytest.fail("chromium is not installed: CI must run the /docs browser test")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    browser = Chromium()
    yield browser
    browser.close()


def _send_every_example(chromium: Chromium, base: str, client: Client, rpcs: list[str]) -> None:
    """Load /docs from `base`, check it shows every method with the OpenAPI example, send
    each with its button and check the answer on the page is the service's."""
    chromium.navigate(f"{base}/docs")
    chromium.wait_for("document.body && document.body.dataset.ready === '1'")
    doc = client.get("/openapi.json").json()
    shown = chromium.evaluate(
        "Array.from(document.querySelectorAll('section.method')).map(e => e.id)"
    )
    assert shown == [f"method-{r}" for r in rpcs]
    assert chromium.evaluate("document.title") == doc["info"]["title"]
    service = next(p for p in doc["paths"] if p.endswith(f"/{rpcs[0]}")).rsplit("/", 1)[0]
    for rpc in rpcs:
        path = f"{service}/{rpc}"
        example = doc["paths"][path]["post"]["requestBody"]["content"]["application/json"][
            "example"
        ]
        shown_request = chromium.evaluate(f"document.getElementById('request-{rpc}').value")
        assert json.loads(shown_request) == example
        chromium.evaluate(f"document.getElementById('send-{rpc}').click()")
        chromium.wait_for(f"document.getElementById('method-{rpc}').dataset.answered === '1'")
        status = chromium.evaluate(f"document.getElementById('status-{rpc}').textContent")
        answer = chromium.evaluate(f"document.getElementById('answer-{rpc}').textContent")
        assert status.startswith("200 "), (rpc, status, answer)
        assert json.loads(answer) == client.post(path, example).json()


def _edit_and_send_a_wrong_request(chromium: Chromium) -> None:
    """An edited request that is wrong shows the service's error on the page."""
    chromium.evaluate(
        "document.getElementById('request-Pick').value = '{\"kinds\": [\"DOGG\"]}';"
        "document.getElementById('send-Pick').click()"
    )
    chromium.wait_for("document.getElementById('status-Pick').textContent.startsWith('400')")
    error = json.loads(chromium.evaluate("document.getElementById('answer-Pick').textContent"))
    assert error["code"] == "invalid_argument" and "did you mean 'DOG'?" in error["message"]


def _screenshot(chromium: Chromium, tmp_path: Path, name: str) -> None:
    shot = Path(SCREENSHOT_DIR or tmp_path) / name
    chromium.screenshot(shot)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


@pytest.mark.timeout(180)
def test_the_docs_page_sends_each_example_and_shows_the_answer(http_face, chromium, tmp_path):
    s = http_face("rich", threads=2)
    rpcs = [m.rpc for m in s.service.schema.methods]
    _send_every_example(chromium, f"http://127.0.0.1:{s.server.port}", s.client, rpcs)
    _edit_and_send_a_wrong_request(chromium)
    _screenshot(chromium, tmp_path, "docs-page.png")


@pytest.mark.timeout(180)
def test_the_docs_page_of_modelwire_serve_calls_the_served_bundle(
    loaded_bundle, serve_process, chromium, tmp_path
):
    """The same, against a real `modelwire serve` of a real bundle: its own HTTP port, the
    page and every call answered by the served model."""
    loaded = loaded_bundle("rich")
    served = serve_process(loaded.path)
    assert served.http_address is not None, served.stdout_lines
    port = int(served.http_address.rsplit(":", 1)[1])
    client = Client(port)
    try:
        rpcs = [m.rpc for m in loaded.schema.methods]
        _send_every_example(chromium, f"http://127.0.0.1:{port}", client, rpcs)
        _edit_and_send_a_wrong_request(chromium)
        _screenshot(chromium, tmp_path, "docs-page-served.png")
        metrics = client.get("/metrics").body.decode()
        for rpc in rpcs:  # the page's calls reached the model, counted as Connect calls
            method = next(m.name for m in loaded.schema.methods if m.rpc == rpc)
            assert f'method="{method}",protocol="connect"' in metrics
    finally:
        client.close()
    assert served.terminate() == 0, served.stderr
