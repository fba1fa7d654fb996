"""Fusing is checked like wiring: `check` says per bundle model whether it is fused into the
broker and why not, `run --fuse` refuses a model that cannot fuse unless the blueprint lets
it stay a process, and the blueprint's `fuse:` / `isolate:` flags are read strictly; and
`modelwire run --fuse` as a real subprocess."""

from __future__ import annotations

import hashlib
import re
import shutil
import signal
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from modelwire.broker.check import check_file
from modelwire.broker.loader import parse_blueprint
from modelwire.bundle.manifest import PYTHON
from modelwire.errors import BlueprintError
from modelwire.runtime.client import connect
from tests.broker.helpers import BrokerProcess, children_of
from tests.broker.test_run import IMAGE as RUN_IMAGE
from tests.broker.test_run import PHOTO as RUN_PHOTO
from tests.runtime.serving import json_logs

FIXTURES = Path(__file__).parent.parent / "fixtures" / "blueprints"


# ---------------------------------------------------------------- check: can it fuse?


@pytest.fixture
def ok_case(bundles_root: Path, tmp_path: Path) -> Path:
    """The `ok` fixture blueprint next to copies of its bundles, to be edited."""
    root = tmp_path / "case"
    for name in ("detector", "advisor"):
        shutil.copytree(bundles_root / "_bundles" / name, root / "_bundles" / name)
    shutil.copytree(FIXTURES / "ok", root / "ok")
    return root / "ok" / "blueprint.yaml"


def _edit_manifest(bundle: Path, fn: Callable[[str], str]) -> None:
    manifest = bundle / "modelwire.json"
    manifest.write_text(fn(manifest.read_text()))


def test_check_says_per_model_whether_it_fuses(ok_case, cli):
    result = cli("check", str(ok_case), "--fuse")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[-4:] == [
        "  model faces: bundle ../_bundles/detector",
        "    fused: runs inside the broker",
        "  model advisor: bundle ../_bundles/advisor",
        "    fused: runs inside the broker",
    ]
    # without fusing asked for, the output is what it always was
    plain = cli("check", str(ok_case))
    assert "fused" not in plain.output


def test_an_unfusable_model_is_refused_with_its_reason(ok_case, cli):
    _edit_manifest(
        ok_case.parent.parent / "_bundles" / "advisor",
        lambda t: t.replace('"python": "', '"python": "2.', 1),
    )
    result = cli("check", str(ok_case), "--fuse")
    assert result.exit_code == 1
    python = re.search(
        r'"python": "([^"]+)"',
        (ok_case.parent.parent / "_bundles" / "advisor" / "modelwire.json").read_text(),
    )
    assert python is not None
    assert result.output == (
        f"{ok_case}:6:3: error[MW401]: model 'advisor' cannot be fused into the broker: it was "
        f"dumped with Python {python.group(1)} and the broker runs Python {PYTHON}\n"
        "  help: add 'fuse: false' to model 'advisor' to run it as a process of its own, or "
        "dump it again in the broker's environment\n"
        f"1 error in {ok_case}\n"
    )
    # the blueprint may let it stay a process of its own
    ok_case.write_text(
        ok_case.read_text().replace(
            "advisor: {bundle: ../_bundles/advisor}",
            "advisor: {bundle: ../_bundles/advisor, fuse: false}",
        )
    )
    result = cli("check", str(ok_case), "--fuse")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-2:] == [
        "  model advisor: bundle ../_bundles/advisor",
        f"    not fused: it was dumped with Python {python.group(1)} and the broker runs "
        f"Python {PYTHON}",
    ]


def test_a_pin_the_broker_does_not_have_is_a_reason(ok_case):
    _edit_manifest(
        ok_case.parent.parent / "_bundles" / "detector",
        lambda t: re.sub(r'"numpy==[^"]+"', '"numpy==0.0.1"', t),
    )
    import numpy as np  # the version the broker's environment has

    with pytest.raises(BlueprintError) as caught:
        check_file(ok_case, fuse=True)
    assert [d.message for d in caught.value.diagnostics] == [
        "model 'faces' cannot be fused into the broker: it needs numpy==0.0.1 and the broker's "
        f"environment has numpy {np.__version__}"
    ]
    # without fusing, nothing is wrong with it
    plan, _, _ = check_file(ok_case)
    assert plan.fused == frozenset()


def test_isolate_is_a_reason_and_wins_over_the_blueprints_fuse(ok_case):
    ok_case.write_text(
        "fuse: true\n"
        + ok_case.read_text().replace(
            "faces: {bundle: ../_bundles/detector}",
            "faces: {bundle: ../_bundles/detector, isolate: true}",
        )
    )
    plan, _, _ = check_file(ok_case)
    assert plan.fused == {"advisor"}
    assert plan.fusing["faces"].describe() == "not fused: it is marked 'isolate: true'"


def test_two_fused_models_whose_local_modules_differ_cannot_share_a_process(ok_case):
    for name, source in (("detector", "A = 1\n"), ("advisor", "A = 2\n")):
        b = ok_case.parent.parent / "_bundles" / name
        (b / "code").mkdir(exist_ok=True)
        (b / "code" / "shared_helpers.py").write_text(source)
        digest = hashlib.sha256(source.encode()).hexdigest()
        _edit_manifest(
            b,
            lambda t, d=digest: t.replace(
                '"files": {', f'"files": {{\n    "code/shared_helpers.py": "{d}",', 1
            ),
        )
    with pytest.raises(BlueprintError) as caught:
        check_file(ok_case, fuse=True)
    assert [d.message for d in caught.value.diagnostics] == [
        "model 'advisor' cannot be fused into the broker: its local module 'shared_helpers' "
        "has other source than model 'faces''s, and one process imports a module once"
    ]


@pytest.mark.parametrize(
    ("model", "message"),
    [
        pytest.param(
            "{bundle: x, fuse: maybe}", "'fuse' of model 'm' must be true or false, not 'maybe'"
        ),
        pytest.param(
            "{bundle: x, fuse: true, isolate: true}",
            "model 'm' says both 'fuse: true' and 'isolate: true'",
        ),
        pytest.param(
            '{address: "localhost:1", fuse: true}',
            "model 'm' runs at an address and cannot be fused into the broker",
        ),
    ],
)
def test_fuse_flags_are_read_strictly(model, message):
    _, diags = parse_blueprint(
        f"name: x\nmodels:\n  m: {model}\nmethods:\n  a:\n    steps:\n"
        "      s: {call: m.f, with: $input}\n    output: s\n"
    )
    assert [d.message for d in diags] == [message]


# ---------------------------------------------------------------- modelwire run --fuse


@pytest.fixture
def run_blueprint(bundles_root: Path) -> Iterator[Path]:
    """test_run.py's photo blueprint, in a folder of its own next to the bundles."""
    folder = bundles_root / f"fuse-{uuid.uuid4().hex[:12]}"
    folder.mkdir()
    path = folder / "photo.yaml"
    path.write_text(RUN_PHOTO)
    yield path
    shutil.rmtree(folder)


@pytest.mark.parametrize(
    "how",
    [pytest.param("flag", id="run --fuse"), pytest.param("blueprint", id="fuse: true")],
)
def test_run_fuse_starts_no_model_process_and_answers(run_blueprint, servers, how):
    args = ["--metrics-port", "0"]
    if how == "flag":
        args.append("--fuse")
    else:
        run_blueprint.write_text("fuse: true\n" + run_blueprint.read_text())
    broker = servers(BrokerProcess(run_blueprint, *args))
    assert children_of(broker.proc.pid) == [], broker.stderr
    with connect(broker.address) as client:
        assert client.advise(RUN_IMAGE) == ("2 faces, 2 eyes", 4)
    logs = json_logs(broker.stderr)
    fused = sorted(r["model"] for r in logs if "fused into the broker" in r["message"])
    assert fused == ["advisor", "faces"]
    assert broker.signal(signal.SIGTERM) == 0, broker.stderr


def test_run_docker_with_fused_models_is_refused_before_anything_starts(run_blueprint, cli):
    result = cli("run", str(run_blueprint), "--fuse", "--docker", "--port", "0")
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == (
        "error: --docker runs every model in a container of its own and cannot fuse models "
        "(faces, advisor) into the broker yet; run without --docker, or without fusing "
        "(no --fuse, no 'fuse: true')"
    )
