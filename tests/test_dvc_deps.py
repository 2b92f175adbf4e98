"""Every stage in dvc.yaml depends on all the code it runs, and on nothing that is not there.

DVC re-runs a stage only when one of its ``deps`` changes, so a module the stage imports
but does not list would let an edit to it leave stale outputs reported "up to date". For
each stage, the script its ``cmd`` runs is parsed with :mod:`ast` and its imports are
followed through ``src/nmt``: every module file reached, and every package
``__init__.py`` on the way (importing ``nmt.data.normalize`` executes ``nmt/__init__.py``
and ``nmt/data/__init__.py`` first), must be covered by a dep (a folder covers every
file under it). Imports inside functions count; so do ``if TYPE_CHECKING:`` ones (a
dep too many re-runs a stage, a dep too few skips one). Modules named in strings
(``importlib.import_module``) and data files are not followed: list those by hand
(:data:`NOT_IMPORTED`). Also: every dep exists or is a stage's out, no dep is listed twice
or under a folder that is a dep, and each stage validates (``load_params(sections=...)``)
exactly the top-level params sections it declares.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PACKAGE = "nmt"
#: Deps no import reaches: files a stage reads from the package.
NOT_IMPORTED = {"download": ["src/nmt/resources"]}
SCRIPT = re.compile(r"\bpython\s+(stages/\S+\.py)\b")
TEMPLATE = re.compile(r"\$\{[^}]*\}")


def module_path(name: str, src: Path) -> Path | None:
    """The file that defines module ``name`` (``a.b``: ``a/b.py`` or ``a/b/__init__.py``).

    A folder without ``__init__.py`` (a namespace package) is that folder; None: nothing.
    """
    base = src.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py", base):
        if path.is_file() or path == base and path.is_dir():
            return path
    return None


def module_name(path: Path, src: Path) -> str:
    parts = path.relative_to(src).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(path: Path, src: Path) -> tuple[set[str], set[str]]:
    """``(modules, maybe)``: what ``path`` imports anywhere in it (absolute names).

    ``modules`` must be modules; ``maybe`` are ``from m import x`` names ``m.x``, modules
    only when a file defines them (else ``x`` is an attribute of ``m``).
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    inside = path.is_relative_to(src)
    package = module_name(path, src) if inside else ""
    if inside and path.name != "__init__.py":
        package = package.rpartition(".")[0]
    modules: set[str] = set()
    maybe: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if not inside:
                    raise ValueError(f"{path}: relative import outside a package")
                parts = package.split(".")
                if node.level - 1 >= len(parts):
                    raise ValueError(f"{path}:{node.lineno}: relative import beyond the top")
                anchor = ".".join(parts[: len(parts) - (node.level - 1)])
                base = f"{anchor}.{node.module}" if node.module else anchor
            else:
                base = node.module or ""
            modules.add(base)
            maybe.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return modules, maybe


def import_closure(script: Path, src: Path, package: str = PACKAGE) -> set[Path]:
    """Every file of ``package`` (under ``src``) that running ``script`` may execute.

    Raises ``ValueError`` naming an import of ``package`` that resolves to no file.
    """
    closure: set[Path] = set()
    todo = [script]
    seen: set[Path] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        modules, maybe = imported_names(path, src)
        found = {m for m in maybe if m.split(".")[0] == package and module_path(m, src)}
        for name in sorted(modules | found):
            if name.split(".")[0] != package:
                continue
            parts = name.split(".")
            for i in range(1, len(parts) + 1):  # the packages on the way, then the module
                file = module_path(".".join(parts[:i]), src)
                if file is None:
                    raise ValueError(f"{path}: imports {name}, but no file defines it")
                if file.is_dir():  # a namespace package: no code runs
                    continue
                if file not in closure:
                    closure.add(file)
                    todo.append(file)
    return closure


def uncovered(files: Iterable[Path], deps: Iterable[str], root: Path) -> list[str]:
    """The files (relative to ``root``, sorted) that no dep is, or is a folder above."""
    dep_paths = [root / dep for dep in deps]
    missing = [f for f in files if not any(f.is_relative_to(d) for d in dep_paths)]
    return sorted(str(f.relative_to(root)) for f in missing)


def redundant(deps: Iterable[str]) -> list[str]:
    """The deps listed twice, or under a folder that is a dep too."""
    paths = [Path(dep) for dep in deps]
    return [
        str(path)
        for i, path in enumerate(paths)
        if path in paths[:i] or any(path != p and path.is_relative_to(p) for p in paths)
    ]


def as_regex(path: str) -> re.Pattern[str]:
    """``path`` (an out) with each ``${...}`` one path segment, matching what is under it."""
    parts = TEMPLATE.split(path)
    pattern = r"(\$\{[^}]*\}|[^/]+)".join(re.escape(p) for p in parts)
    return re.compile(pattern + r"(/.*)?")


def missing_deps(deps: Iterable[str], outs: Iterable[str], root: Path) -> list[str]:
    """The deps that are neither files or folders under ``root`` nor (under) a stage's out."""
    produced = [as_regex(out) for out in outs]
    return [
        dep
        for dep in deps
        if not any(p.fullmatch(dep) for p in produced) and not (root / dep).exists()
    ]


def paths(entries: list[Any] | None) -> list[str]:
    """The paths of a deps/outs/metrics/plots list (an entry may be ``{path: options}``)."""
    return [next(iter(e)) if isinstance(e, dict) else e for e in entries or []]


def stage_definitions() -> dict[str, dict[str, Any]]:
    """Each stage of dvc.yaml; a ``foreach`` stage by its ``do:`` template."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    return {name: stage.get("do", stage) for name, stage in stages.items()}


STAGES = stage_definitions()
ALL_OUTS = [
    o for s in STAGES.values() for k in ("outs", "metrics", "plots") for o in paths(s.get(k))
]


def stage_script(stage: dict[str, Any]) -> str:
    found = SCRIPT.findall(stage["cmd"])
    assert len(found) == 1, f"expected one `python stages/<x>.py` in {stage['cmd']!r}"
    return found[0]


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_deps_cover_the_code_it_imports(name: str) -> None:
    stage = STAGES[name]
    script = stage_script(stage)
    deps = paths(stage.get("deps"))
    assert (ROOT / script).is_file(), f"{name}: {script} does not exist"
    files = {ROOT / script} | import_closure(ROOT / script, SRC)
    missing = uncovered(files, deps, ROOT)
    assert not missing, f"stage {name}: deps do not cover {', '.join(missing)}"


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_deps_exist(name: str) -> None:
    missing = missing_deps(paths(STAGES[name].get("deps")), ALL_OUTS, ROOT)
    assert not missing, f"stage {name}: no such dep (nor a stage's out): {', '.join(missing)}"


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_deps_are_listed_once(name: str) -> None:
    deps = paths(STAGES[name].get("deps"))
    assert not redundant(deps), f"stage {name}: deps already covered: {redundant(deps)}"


@pytest.mark.parametrize("name", sorted(NOT_IMPORTED))
def test_stage_deps_hold_what_it_reads_without_importing(name: str) -> None:
    missing = uncovered([ROOT / d for d in NOT_IMPORTED[name]], paths(STAGES[name]["deps"]), ROOT)
    assert not missing, f"stage {name}: deps lack {', '.join(missing)}"


def load_params_sections(script: Path) -> list[list[str] | None]:
    """The ``sections=`` of each ``load_params(...)`` call in ``script`` (None: all)."""
    found: list[list[str] | None] = []
    for node in ast.walk(ast.parse(script.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        called = getattr(func, "id", None) or getattr(func, "attr", None)  # f() or m.f()
        if called == "load_params":
            kw = {k.arg: k.value for k in node.keywords}
            found.append(ast.literal_eval(kw["sections"]) if "sections" in kw else None)
    return found


def declared_sections(params: list[Any]) -> list[str] | None:
    """The top-level sections of a stage's ``params:`` (None: the whole file)."""
    if any(isinstance(p, dict) and None in p.values() for p in params):
        return None
    return sorted({p.split(".")[0] for p in params})


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_validates_the_sections_it_declares(name: str) -> None:
    stage = STAGES[name]
    found = load_params_sections(ROOT / stage_script(stage))
    declared = declared_sections(stage.get("params", []))
    assert len(found) == 1, f"stage {name}: expected one load_params call, found {len(found)}"
    assert (found[0] if found[0] is None else sorted(found[0])) == declared, (
        f"stage {name}: validates {found[0]}, dvc.yaml declares {declared}"
    )


# The checks above, on a fake package: they must be able to fail.


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


@pytest.fixture
def fake(tmp_path: Path) -> Path:
    write(
        tmp_path,
        {
            "stages/run.py": "import os\nfrom pkg.a import thing\n",
            "src/pkg/__init__.py": "",
            "src/pkg/a.py": (
                "from pkg.sub import mod, VALUE\n"
                "def thing():\n    import pkg.b as b\n    return b\n"
            ),
            "src/pkg/b.py": "import json\n",
            "src/pkg/sub/__init__.py": "VALUE = 1\n",
            "src/pkg/sub/mod.py": "from . import c\nfrom ..d import X\nfrom .deep.e import f\n",
            "src/pkg/sub/c.py": "",
            "src/pkg/sub/deep/__init__.py": "",
            "src/pkg/sub/deep/e.py": "f = 1\nimport pkg.space.g\n",
            "src/pkg/space/g.py": "",  # pkg.space: a namespace package
            "src/pkg/d.py": "X = 2\n",
            "src/pkg/unused.py": "import pkg.b\n",
            "src/pkg/other/__init__.py": "",
        },
    )
    return tmp_path


def test_closure_follows_every_kind_of_import(fake: Path) -> None:
    closure = import_closure(fake / "stages/run.py", fake / "src", "pkg")
    assert sorted(str(p.relative_to(fake / "src")) for p in closure) == [
        "pkg/__init__.py",
        "pkg/a.py",
        "pkg/b.py",  # imported inside a function
        "pkg/d.py",  # from ..d import X
        "pkg/space/g.py",
        "pkg/sub/__init__.py",
        "pkg/sub/c.py",  # from . import c: a submodule, not an attribute
        "pkg/sub/deep/__init__.py",  # a package on the way to pkg.sub.deep.e
        "pkg/sub/deep/e.py",
        "pkg/sub/mod.py",
    ]


def test_closure_refuses_an_import_no_file_defines(fake: Path) -> None:
    write(fake, {"src/pkg/b.py": "import pkg.gone\n"})
    with pytest.raises(ValueError, match=r"b\.py: imports pkg\.gone, but no file defines it"):
        import_closure(fake / "stages/run.py", fake / "src", "pkg")


def test_uncovered_lists_what_no_dep_covers(fake: Path) -> None:
    files = {fake / "stages/run.py"} | import_closure(fake / "stages/run.py", fake / "src", "pkg")
    deps = ["stages/run.py", "src/pkg/sub", "src/pkg/space", "src/pkg/a.py", "src/pkg/__init__.py"]
    assert uncovered(files, deps, fake) == ["src/pkg/b.py", "src/pkg/d.py"]
    assert uncovered(files, [*deps, "src/pkg/b.py", "src/pkg/d.py"], fake) == []
    assert uncovered(files, ["src/pkg"], fake) == ["stages/run.py"]
    assert uncovered(files, ["src/pk", "stages/run"], fake) == sorted(
        str(f.relative_to(fake)) for f in files
    )  # a prefix of a name is not a folder above it


def test_redundant_deps_are_named() -> None:
    deps = ["src/pkg", "src/pkg/a.py", "src/pkga.py", "stages/run.py", "stages/run.py/"]
    assert redundant(deps) == ["src/pkg/a.py", "stages/run.py"]
    assert redundant(["src/pkg/a.py", "src/pkg"]) == ["src/pkg/a.py"]


def test_missing_deps_are_named_unless_a_stage_makes_them(fake: Path) -> None:
    deps = ["src/pkg", "src/pkg/gone.py", "data/prepared", "models/${key}/best.pt", "x/${a}"]
    outs = ["data/prepared", "models/${key}"]
    assert missing_deps(deps, outs, fake) == ["src/pkg/gone.py", "x/${a}"]
    assert missing_deps(["data/prepared2", "data"], outs, fake) == ["data/prepared2", "data"]


def test_the_compare_stage_imports_no_model_code() -> None:
    closure = {str(p.relative_to(SRC)) for p in import_closure(ROOT / "stages/compare.py", SRC)}
    assert {"nmt/__init__.py", "nmt/config/__init__.py", "nmt/utils.py"} <= closure
    assert {"nmt/evaluation/compare.py", "nmt/evaluation/bootstrap.py"} <= closure
    assert not [m for m in closure if m.startswith(("nmt/models", "nmt/training", "nmt/inf"))]
