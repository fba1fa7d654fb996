"""Requirements are inferred from what pickling reaches and what local code imports."""

from __future__ import annotations

import importlib
import importlib.metadata as md
import textwrap
from pathlib import Path

import pytest

from modelwire.bundle import build_files, dump, read_manifest
from modelwire.bundle.requirements import LocalModule, module_imports, resolve_modules
from tests.fixtures.models import forest, stdlib_only

NUMPY = f"numpy=={md.version('numpy')}"
SKLEARN = f"scikit-learn=={md.version('scikit-learn')}"


@pytest.fixture(scope="module")
def forest_model():
    return forest.model()


def test_a_random_forest_needs_scikit_learn_and_numpy_at_their_installed_versions(forest_model):
    files = build_files(forest_model, "iris")
    assert files["requirements.txt"].decode().splitlines() == [NUMPY, SKLEARN]


def test_a_standard_library_model_requires_nothing_and_ships_no_stdlib_module(tmp_path):
    path = dump(stdlib_only.model(), "summarizer", tmp_path / "s")
    assert read_manifest(path).requirements == ()
    assert (path / "requirements.txt").read_text() == ""
    shipped = sorted(p.relative_to(path / "code").as_posix() for p in (path / "code").rglob("*.py"))
    assert shipped == [  # only the fixture itself, a module of this project
        "tests/__init__.py",
        "tests/fixtures/__init__.py",
        "tests/fixtures/models/__init__.py",
        "tests/fixtures/models/stdlib_only.py",
    ]


STDLIB = [
    "json", "re", "collections", "collections.abc", "typing", "dataclasses", "enum", "os.path",
    "xml.etree.ElementTree", "concurrent.futures", "importlib.metadata", "_thread", "builtins",
    "sys", "__future__",
]  # fmt: skip


def test_standard_library_modules_resolve_to_nothing():
    req = resolve_modules(STDLIB)
    assert (req.pins, req.local, req.unresolved) == ({}, {}, set())


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["requests>=2.0"], [NUMPY, "requests>=2.0", SKLEARN]),
        (["Scikit_Learn>=1.3"], [NUMPY, "Scikit_Learn>=1.3"]),
        (["numpy<3", "  ", "# a comment"], ["numpy<3", SKLEARN]),
        (["scikit-learn==1.3.2", "torch==2.4.0 ; platform_system == 'Linux'"],
         [NUMPY, "scikit-learn==1.3.2", "torch==2.4.0 ; platform_system == 'Linux'"]),
    ],
    ids=["adds", "overrides-by-normalized-name", "skips-blank-and-comment", "keeps-markers"],
)  # fmt: skip
def test_given_requirements_add_to_or_override_the_inferred_ones(forest_model, extra, expected):
    files = build_files(forest_model, "iris", requirements=extra)
    assert files["requirements.txt"].decode().splitlines() == expected


def test_a_line_that_is_not_a_requirement_is_a_value_error(forest_model):
    with pytest.raises(ValueError) as info:
        build_files(forest_model, "iris", requirements=[">=1.0"])
    assert str(info.value) == "not a requirement: '>=1.0'"


# ---------------------------------------------------------------- local modules


def write_tree(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(textwrap.dedent(text))


PROJECT = {
    "scaler.py": """\
        from sklearn.preprocessing import StandardScaler

        def standardize(xs):
            return StandardScaler().fit_transform([[x] for x in xs])[:, 0].tolist()
        """,
    "kit/__init__.py": "from .used import double\n",
    "kit/used.py": """\
        from . import consts

        def double(xs):
            return [consts.TWO * x for x in xs]
        """,
    "kit/consts.py": "TWO = 2.0\n",
    "kit/lazy.py": "def negate(xs):\n    return [-x for x in xs]\n",
    "kit/unused.py": "import yaml\n",
    "nsp/tool.py": "def inc(xs):\n    return [x + 1 for x in xs]\n",  # a namespace package
    "unrelated.py": "import yaml\n",
    "conftest.py": "import pytest\n",
    "flow.py": """\
        from modelwire import Model

        import kit
        import nsp.tool
        import scaler

        def transform(xs: list[float]) -> list[float]:
            from kit import lazy

            return nsp.tool.inc(lazy.negate(kit.double(scaler.standardize(xs))))

        model = Model(transform=transform)
        """,
}


@pytest.fixture
def project_model(tmp_path, monkeypatch):
    root = tmp_path / "project"
    write_tree(root, PROJECT)
    monkeypatch.syspath_prepend(str(root))
    return importlib.import_module("flow").model


def test_a_local_helper_that_imports_an_installed_package_gets_that_package_listed(project_model):
    """Only scikit-learn: nothing local imports numpy, which pip installs for scikit-learn."""
    files = build_files(project_model, "flow")
    assert files["requirements.txt"].decode().splitlines() == [SKLEARN]


def test_every_module_of_the_project_is_accounted_for(project_model):
    req = resolve_modules(["flow"], ["kit.lazy"])
    assert sorted(req.local) == [
        "flow",
        "kit",
        "kit.consts",
        "kit.lazy",
        "kit.used",
        "nsp.tool",
        "scaler",
    ]
    assert req.unresolved == set()  # the namespace package 'nsp' has no file, and needs none


def test_only_the_local_modules_a_model_reaches_are_shipped(project_model):
    """Relative imports and a submodule imported inside the method are followed; the rest of
    the project (and its imports: yaml, pytest) stays out of the bundle."""
    files = build_files(project_model, "flow")
    assert sorted(f for f in files if f.startswith("code/")) == [
        "code/flow.py",
        "code/kit/__init__.py",
        "code/kit/consts.py",
        "code/kit/lazy.py",
        "code/kit/used.py",
        "code/nsp/tool.py",
        "code/scaler.py",
    ]
    assert files["requirements.txt"].decode() == f"{SKLEARN}\n"  # no pyyaml, no pytest


@pytest.mark.parametrize(
    ("source", "module", "is_package", "found", "maybe"),
    [
        ("import a.b, c", None, False, {"a.b", "c"}, set()),
        ("from a import b, c as d", None, False, {"a"}, {"a.b", "a.c"}),
        ("from a.b import *", None, False, {"a.b"}, set()),
        ("def f():\n    import x\n", None, False, {"x"}, set()),
        ("from . import b", "pkg.mod", False, {"pkg"}, {"pkg.b"}),
        ("from .b import c", "pkg.mod", False, {"pkg.b"}, {"pkg.b.c"}),
        ("from .b import c", "pkg", True, {"pkg.b"}, {"pkg.b.c"}),
        ("from ..b import c", "pkg.sub.mod", False, {"pkg.b"}, {"pkg.b.c"}),
        ("from ..b import c", "top", False, set(), set()),
        ("from .b import c", None, False, set(), set()),
        ("this is not python", None, False, set(), set()),
    ],
    ids=[
        "import", "from-import", "star", "nested", "relative-dot", "relative-module",
        "relative-in-package", "two-levels-up", "beyond-top-level", "relative-without-module",
        "syntax-error",
    ],
)  # fmt: skip
def test_module_imports_reads_absolute_and_relative_imports(
    source, module, is_package, found, maybe
):
    assert module_imports(source, module, is_package=is_package) == (found, maybe)


@pytest.mark.parametrize(
    ("name", "file", "is_package", "rel"),
    [
        ("helpers", "/p/helpers.py", False, "helpers.py"),
        ("kit.used", "/p/kit/used.py", False, "kit/used.py"),
        ("kit", "/p/kit/__init__.py", True, "kit/__init__.py"),
        ("doubler_model", "/p/other_name.py", False, "doubler_model.py"),
        ("kit.fast", "/p/kit/fast.cpython-311-x86_64-linux-gnu.so", False,
         "kit/fast.cpython-311-x86_64-linux-gnu.so"),
    ],
    ids=["module", "submodule", "package", "loaded-under-another-name", "extension"],
)  # fmt: skip
def test_a_local_module_is_shipped_where_its_name_imports_it_from(name, file, is_package, rel):
    assert LocalModule(name, Path(file), is_package).files() == [(rel, Path(file))]
