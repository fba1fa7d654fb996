"""`modelwire graph FILE -o out.dot|out.svg|out.png`: the DAG of every method, the types on
its edges, forwarded edges solid and transcoded ones dashed."""

from __future__ import annotations

import shutil
import struct
import xml.etree.ElementTree as ET

import pytest

from tests.broker.test_check_golden import FIXTURES, UPDATE

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def photo(bundles_root):
    """The golden 'ok' blueprint, next to the bundles."""
    copy = bundles_root / "graph-ok"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(FIXTURES / "ok", copy)
    return copy / "blueprint.yaml"


def test_dot_text(cli, photo, tmp_path):
    out = tmp_path / "photo.dot"
    result = cli("graph", str(photo), "-o", str(out))
    assert (result.exit_code, result.stdout, result.stderr) == (0, f"wrote {out}\n", "")
    expected = FIXTURES / "ok" / "expected.dot"
    if UPDATE:
        expected.write_text(out.read_text())
    assert out.read_text() == expected.read_text()


def test_svg_is_an_svg_document_with_the_steps_and_types(cli, photo, tmp_path):
    out = tmp_path / "photo.svg"
    result = cli("graph", str(photo), "-o", str(out))
    assert (result.exit_code, result.stderr) == (0, "")
    root = ET.parse(out).getroot()
    assert root.tag == f"{SVG}svg"
    texts = [t.text for t in root.iter(f"{SVG}text")]
    # each line of a label is a text element of its own
    for line in (
        "face_boxes",
        "faces.detect",
        "timeout 2s, retry 2",
        "repeated Box",
        "(transcoded)",
    ):
        assert line in texts, texts
    assert not any("\\n" in (t or "") for t in texts)


def test_png_is_a_png_image(cli, photo, tmp_path):
    out = tmp_path / "docs" / "img" / "photo.png"  # folders are made as needed
    result = cli("graph", str(photo), "-o", str(out))
    assert (result.exit_code, result.stderr) == (0, "")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    length, kind, width, height = struct.unpack(">I4sII", data[8:24])
    assert (length, kind) == (13, b"IHDR")
    assert width > 200 and height > 100


def test_an_unknown_format_is_a_usage_error(cli, photo, tmp_path):
    out = tmp_path / "photo.gif"
    result = cli("graph", str(photo), "-o", str(out))
    assert result.exit_code == 2
    assert result.stderr.endswith(
        f"Error: Invalid value for '--output': {out}: write .dot, .svg or .png\n"
    )
    assert not out.exists()


def test_a_blueprint_with_errors_draws_nothing(cli, photo, tmp_path):
    text = photo.read_text().replace(
        "eye_boxes: {call: faces.detect", "eye_boxes: {call: faces.detct"
    )
    photo.write_text(text)
    out = tmp_path / "photo.svg"
    result = cli("graph", str(photo), "-o", str(out))
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        f"{photo}:11:25: error[MW102]: model 'faces' has no method 'detct'; did you mean "
        "'detect'?\n"
        "    its methods: detect, scene, histogram, blur, caption\n"
        f"1 error in {photo}\n"
    )
    assert not out.exists()
