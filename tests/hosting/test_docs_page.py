"""The /docs page in a real headless Chromium: it loads from this server alone, shows
every method with its example, sends each example with its Send button, and shows the
answer the service gives; a screenshot of the result is kept for people to look at."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.docker.engine import in_ci
from tests.hosting.browser import Chromium, chromium_path

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


@pytest.mark.timeout(180)
def test_the_docs_page_sends_each_example_and_shows_the_answer(http_face, chromium, tmp_path):
    s = http_face("rich", threads=2)
    base = f"http://127.0.0.1:{s.server.port}"
    chromium.navigate(f"{base}/docs")
    chromium.wait_for("document.body && document.body.dataset.ready === '1'")
    doc = s.client.get("/openapi.json").json()
    rpcs = [m.rpc for m in s.service.schema.methods]
    shown = chromium.evaluate(
        "Array.from(document.querySelectorAll('section.method')).map(e => e.id)"
    )
    assert shown == [f"method-{r}" for r in rpcs]
    assert chromium.evaluate("document.title") == doc["info"]["title"]
    for rpc in rpcs:
        path = s.connect_path(rpc)
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
        assert json.loads(answer) == s.client.post(path, example).json()
    # an edited request that is wrong shows the service's error on the page
    chromium.evaluate(
        "document.getElementById('request-Pick').value = '{\"kinds\": [\"DOGG\"]}';"
        "document.getElementById('send-Pick').click()"
    )
    chromium.wait_for("document.getElementById('status-Pick').textContent.startsWith('400')")
    error = json.loads(chromium.evaluate("document.getElementById('answer-Pick').textContent"))
    assert error["code"] == "invalid_argument" and "did you mean 'DOG'?" in error["message"]
    shot = Path(SCREENSHOT_DIR or tmp_path) / "docs-page.png"
    chromium.screenshot(shot)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
