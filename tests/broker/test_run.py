"""`modelwire run FILE`: start every bundle model as a local `modelwire serve` process, serve
the solution, and leave no process behind however the broker ends: SIGTERM, Ctrl-C, SIGKILL
(the models die with it: PR_SET_PDEATHSIG through MODELWIRE_PARENT_PID), or a model that
fails to start."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import pytest

from modelwire.broker.launch import LISTENING
from modelwire.runtime.client import connect
from tests.broker.helpers import BrokerProcess, children_of
from tests.runtime.prometheus import parse
from tests.runtime.serving import json_logs, process_alive, wait_for

PHOTO = """
name: photo
models:
  faces: {bundle: ../_bundles/detector}
  advisor: {bundle: ../_bundles/advisor}
methods:
  advise:
    steps:
      face_boxes: {call: faces.detect, with: $input}
      eye_boxes: {call: faces.detect, with: $input}
      advice: {call: advisor.recommend, with: {faces: face_boxes, eyes: eye_boxes.boxes}}
    output: advice
"""
IMAGE = np.array([[1, 2, 4], [3, 3, 3]], dtype=np.uint8)


@pytest.fixture
def blueprint(bundles_root):
    """A blueprint in a folder of its own next to the bundles; every model process started
    for it has that folder's unique name on its command line."""
    folder = bundles_root / f"run-{uuid.uuid4().hex[:12]}"
    folder.mkdir()
    path = folder / "photo.yaml"
    path.write_text(PHOTO)
    yield path
    shutil.rmtree(folder)


def processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains `text` (models of one blueprint)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().decode(errors="replace")
        except OSError:
            continue
        if text in argv and process_alive(int(entry)):
            found.append(int(entry))
    return found


@pytest.mark.parametrize(
    ("signum", "status"),
    [
        pytest.param(signal.SIGTERM, 0, id="sigterm"),
        pytest.param(signal.SIGINT, 0, id="ctrl-c"),
        pytest.param(signal.SIGKILL, None, id="sigkill"),
    ],
)
def test_run_serves_then_leaves_no_model_behind(blueprint, servers, signum, status):
    broker = servers(BrokerProcess(blueprint, "--metrics-port", "0"))
    models = children_of(broker.proc.pid)
    assert len(models) == 2, broker.stderr  # faces and advisor; eyes share faces' model
    mentioning = set(processes_mentioning(blueprint.parent.name)) - {broker.proc.pid}
    assert sorted(mentioning) == models
    client = connect(broker.address)
    try:
        assert client.advise(IMAGE) == ("2 faces, 2 eyes", 4)
    finally:
        client.close()
    wait_for(lambda: "metrics_port" in broker.stderr, 10, "the broker's log of its metrics port")
    logs = json_logs(broker.stderr)
    # the models' logs reach the broker's, each record naming its model
    relayed = {
        (r["model"], r["message"].split(" ")[1]) for r in logs if r["logger"].endswith(".models")
    }
    assert {("faces", "serving"), ("advisor", "serving")} <= relayed
    [port] = [r["metrics_port"] for r in logs if "metrics_port" in r]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as r:
        scrape = parse(r.read().decode())
    for step in ("face_boxes", "eye_boxes", "advice"):
        assert (
            scrape.value("modelwire_step_requests_total", method="advise", step=step, code="OK")
            == 1
        )
    assert broker.signal(signum) == status, broker.stderr
    wait_for(
        lambda: not processes_mentioning(blueprint.parent.name),
        10,
        f"the models of a broker stopped by {signal.Signals(signum).name} to exit",
    )
    assert broker.stdout_lines == [
        f"modelwire broker http on {broker.http_address}\n",
        f"{LISTENING} {broker.address}\n",
    ]


def _advisor_that_also_runs(code_text: str, blueprint: Path, bundles_root: Path, name: str) -> Path:
    """A copy of the advisor bundle whose module runs `code_text` at import, its manifest
    digests kept sound (so the bundle checks), in place of the advisor in `blueprint`."""
    copy = blueprint.parent / name
    shutil.copytree(bundles_root / "_bundles" / "advisor", copy)
    code = copy / "code" / "tests" / "fixtures" / "models" / "advisor.py"
    code.write_text(code.read_text() + "\n" + code_text)
    manifest = json.loads((copy / "modelwire.json").read_text())
    manifest["files"][str(code.relative_to(copy))] = hashlib.sha256(code.read_bytes()).hexdigest()
    (copy / "modelwire.json").write_text(json.dumps(manifest))
    blueprint.write_text(PHOTO.replace("../_bundles/advisor", name))
    return copy


def test_a_model_that_cannot_start_stops_the_others(blueprint, bundles_root, cli):
    """The bundle checks (its manifest and digests are sound) but its code fails to import
    where it is served, as when a library is missing."""
    broken = _advisor_that_also_runs(
        'raise ImportError("the advisor needs a GPU")\n', blueprint, bundles_root, "broken"
    )

    result = cli("run", str(blueprint), "--port", "0", "--log-format", "json")

    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr.splitlines()[-2:] == [
        f"error: model 'advisor' ({broken}) exited with status 1 before serving:",
        f"error: bundle {broken}: model.pkl cannot be unpickled "
        "(ImportError('the advisor needs a GPU'))",
    ]
    assert processes_mentioning(blueprint.parent.name) == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_a_signal_while_the_models_load_stops_them_at_once(blueprint, bundles_root, signum):
    """The advisor takes a minute to load: the signal reaches `run` while it waits for it,
    and `run` stops both models itself (exit 128 + the signal), not leaving them to notice
    their parent's death once loaded."""
    _advisor_that_also_runs("import time\ntime.sleep(60)\n", blueprint, bundles_root, "slow")
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelwire", "run", str(blueprint), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "MODELWIRE_LOG_FORMAT": "json"},
    )
    try:
        wait_for(lambda: len(children_of(proc.pid)) == 2, 30, "both models to be started")
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert (proc.returncode, stdout) == (128 + signum, ""), stderr
    messages = [r["message"] for r in json_logs(stderr)]
    assert (
        f"{signal.Signals(signum).name} received while the models were starting: "
        "stopping them" in messages
    )
    assert messages[-1] == "stopped"
    assert processes_mentioning(blueprint.parent.name) == []


def test_run_checks_before_starting_anything(blueprint, cli):
    blueprint.write_text(PHOTO.replace("eye_boxes.boxes", "eye_boxes.box"))
    result = cli("run", str(blueprint), "--port", "0")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        f"{blueprint}:11:73: error[MW104]: 'with.eyes' of step 'advice': message DetectResponse "
        "has no field 'box'; did you mean 'boxes'?\n"
        "    its fields: boxes\n"
        f"1 error in {blueprint}\n"
    )
    assert processes_mentioning(blueprint.parent.name) == []


def test_relative_bundles_resolve_against_the_blueprint_not_the_cwd(
    blueprint, cli, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    result = cli("check", str(blueprint))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[-2:] == [
        "  model faces: bundle ../_bundles/detector",
        "  model advisor: bundle ../_bundles/advisor",
    ]
    assert Path(blueprint.parent / "../_bundles/detector/modelwire.json").is_file()


def test_a_busy_port_fails_before_any_model_starts(blueprint, cli):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli("run", str(blueprint), "--port", str(port), "--log-format", "json")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        f"error: port={port}: cannot listen on 127.0.0.1:{port} (Address already in use); "
        "is another server using it?\n"
    )
    assert processes_mentioning(blueprint.parent.name) == []
