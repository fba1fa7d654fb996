"""What a bundle's pickle reaches, read with pickletools and never loaded: its globals, the
modules its pickled code imports, and the risky names in that code, flagged."""

from __future__ import annotations

import os
import pickle
import subprocess
from pathlib import Path

import pytest

from modelwire.bundle import Bundle, dump
from modelwire.bundle.model import Model
from modelwire.bundle.pickle_scan import PickleReference, scan_pickle
from tests.fixtures.models import forest


def reach_of(model: Model, tmp_path: Path) -> list[str]:
    path = dump(model, "m", tmp_path / "m")
    return [str(r) for r in scan_pickle(Bundle(path).read("model.pkl")).flagged]


def test_a_random_forest_reaches_nothing(tmp_path: Path) -> None:
    path = dump(forest.model(), "iris", tmp_path / "iris")
    reach = scan_pickle(Bundle(path).read("model.pkl"))
    assert reach.flagged == ()
    assert (reach.opaque, reach.error) == (0, "")
    assert "sklearn.ensemble._forest" in reach.modules
    assert PickleReference("sklearn.ensemble._forest", "RandomForestClassifier") in (
        reach.references
    )
    assert PickleReference("numpy", "", "import") in reach.references


def shell(x: float) -> float:
    """Reaches the process through its module's globals, and the network in its body."""
    import socket

    os.system("true")
    subprocess.run(["true"], check=False)
    socket.gethostname()
    return float(eval("x"))


def test_code_pickled_by_value_shows_its_imports_and_names(tmp_path: Path) -> None:
    import cloudpickle

    cloudpickle.register_pickle_by_value(__import__(__name__, fromlist=["_"]))
    try:
        found = reach_of(Model(shell=shell), tmp_path)
    finally:
        cloudpickle.unregister_pickle_by_value(__import__(__name__, fromlist=["_"]))
    assert found == [
        "'eval' in code (code)",
        "import os (process, filesystem)",
        "'socket' in code (network)",
        "import subprocess (process)",
    ]


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_globals_are_read_in_every_protocol(protocol: int) -> None:
    data = pickle.dumps([os.system, os.system, len], protocol=protocol)
    reach = scan_pickle(data)
    assert [str(r) for r in reach.flagged] == [
        f"{os.system.__module__}.system (process, filesystem)"
    ]
    assert PickleReference("builtins", "len") in reach.references


def test_a_computed_global_is_counted_and_its_strings_still_show() -> None:
    # str('os') computed by REDUCE, then STACK_GLOBAL: the module is not a constant
    data = b"\x80\x04\x8c\x08builtins\x8c\x03str\x93\x8c\x02os\x85R\x8c\x06system\x93."
    reach = scan_pickle(data)
    assert reach.opaque == 1
    assert [str(r) for r in reach.flagged] == ["'os' in code (process, filesystem)"]


def test_a_truncated_pickle_says_so() -> None:
    data = pickle.dumps({"a": os.getcwd}, protocol=2)[:-10]
    reach = scan_pickle(data)
    assert reach.error.startswith("the pickle cannot be read to its end (")


def test_the_sources_shipped_in_code_add_their_imports(tmp_path: Path) -> None:
    from modelwire.bundle.pickle_scan import scan_sources
    from tests.fixtures.models import hostile

    b = Bundle(dump(hostile.connects_at_load("127.0.0.1", 9), "h", tmp_path / "h"))
    reach = scan_pickle(b.read("model.pkl"))
    assert reach.flagged == ()  # the pickle names hostile._connect by reference only
    files = [(f"code/{rel}", data) for rel, data in b.code_files()]
    where = "code/tests/fixtures/models/hostile.py"
    assert [str(r) for r in scan_sources(reach, files).flagged] == [
        f"import importlib in {where} (code)",
        f"import pathlib in {where} (filesystem)",
        f"import socket in {where} (network)",
    ]
