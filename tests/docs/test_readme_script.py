"""How tests.docs.readme_script reads a README: blocks, markers, servers, comments."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.docs.readme_script import Block, blocks, script, server_ports

ROOT = Path(__file__).resolve().parents[2]

DOC = """# t

<!-- readme-test: skip it runs this test -->
```sh
make test
```

Save it as `m.py`:

<!-- readme-test: file m.py -->
```python
print("hi")
```

```sh
modelwire serve build/m --port 5 # leave it running
modelwire call localhost:5 f '{"a": "#not a comment"}' # a comment
docker run --rm -p 1:2 img
docker run -d img
```

<!-- readme-test: output -->
```json
{}
```

```yaml
not: run
```
"""


def test_blocks_carry_their_line_language_and_marker() -> None:
    found = blocks(DOC)
    assert [(b.language, b.line, b.marker) for b in found] == [
        ("sh", 5, ("skip", "it runs this test")),
        ("python", 12, ("file", "m.py")),
        ("sh", 16, None),
        ("json", 24, ("output", "")),
        ("yaml", 28, None),
    ]
    assert found[1] == Block("python", 12, 'print("hi")\n', ("file", "m.py"))


def test_the_script_runs_what_it_should_and_nothing_else() -> None:
    text = script(DOC)
    assert "make test" not in text
    assert "cat > m.py <<'README_BLOCK_END'\nprint(\"hi\")\n" in text
    assert "not: run" not in text
    # servers go to the background and are waited for; the rest runs in this shell
    assert "modelwire serve build/m --port 5 > .readme-server-$__n.log 2>&1 &" in text
    assert "docker run --rm -p 1:2 img > .readme-server-$__n.log 2>&1 &" in text
    assert "__rc=0; docker run -d img > .readme-last.out" in text
    # a trailing comment goes, a '#' inside quotes stays
    assert (
        '__rc=0; modelwire call localhost:5 f \'{"a": "#not a comment"}\' > .readme-last.out'
        in text
    )
    assert "diff -u --label printed --label README .readme-last.out -" in text
    assert text.index("@@readme:16") < text.index("@@readme:17") < text.index("@@readme:24")


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("<!-- readme-test: later -->\n```sh\nx\n```\n", "unknown readme-test marker 'later'"),
        ("<!-- readme-test: skip -->\n```sh\nx\n```\n", "readme-test skip needs an argument"),
        ("```sh\nx\n", "the block is never closed"),
    ],
)
def test_a_bad_marker_or_an_open_block_is_refused(doc: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        blocks(doc)


def test_a_marker_applies_to_the_next_block_only_if_nothing_is_between() -> None:
    doc = "<!-- readme-test: output -->\ntext\n```json\n{}\n```\n"
    assert blocks(doc)[0].marker is None


def _run(doc: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    (tmp_path / "doc.sh").write_text(script(doc))
    return subprocess.run(
        ["bash", "doc.sh"], cwd=tmp_path, capture_output=True, text=True, check=False, timeout=60
    )


def test_the_first_failing_command_stops_the_walk_at_its_line(tmp_path: Path) -> None:
    proc = _run("```sh\necho one\nfalse\necho never\n```\n", tmp_path)
    assert proc.returncode == 1
    assert proc.stdout.splitlines() == ["@@readme:2", "one", "@@readme:3"]


def test_an_output_block_must_be_what_the_command_printed(tmp_path: Path) -> None:
    good = "```sh\necho 42\n```\n<!-- readme-test: output -->\n```\n42\n```\n"
    assert _run(good, tmp_path).returncode == 0
    bad = good.replace("```\n42\n```", "```\n41\n```")
    proc = _run(bad, tmp_path)
    assert proc.returncode == 1
    assert "-42\n+41" in proc.stdout


def test_a_server_is_waited_for_and_stopped_at_the_end(tmp_path: Path) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "modelwire").write_text(
        "#!/bin/bash\nsleep 0.3; echo listening on 1; trap 'echo stopped > stopped; exit 0' TERM\n"
        "while true; do sleep 0.05; done\n"
    )
    (fake / "modelwire").chmod(0o755)
    doc = f"```sh\n{fake}/modelwire serve b --port 1\ngrep -c listening .readme-server-1.log\n```\n"
    proc = _run(doc, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "1"
    assert (tmp_path / "stopped").read_text() == "stopped\n"


def test_the_servers_the_readme_leaves_running_never_share_a_port() -> None:
    ports = server_ports((ROOT / "README.md").read_text())
    assert len(ports) >= 10  # the walk found the servers at all
    first: dict[int, int] = {}
    for line, port in ports:
        assert port not in first, f"README line {line} listens on {port}, as line {first[port]}"
        first[port] = line
    assert server_ports(DOC) == [(16, 5), (16, 8080), (18, 1)]
