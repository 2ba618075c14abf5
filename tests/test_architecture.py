"""The layers of ``docs/architecture.md``, checked on the source: which package may import
which. Every import counts, also those inside functions, except where said."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "cgflow"

SCIENCE = ["params.py", "units.py", "presets.py", "errors.py", "settings.py", "userfiles.py",
           "molecule",
           "analysis", "ml", "engines", "ibi"]
DISTRIBUTED = ("fireworks", "pymongo", "gridfs", "bson", "custodian")
UPPER = ("cgflow.db", "cgflow.jobs", "cgflow.stages", "cgflow.orchestration", "cgflow.cli")

#: layer -> (paths, forbidden import prefixes, module level only)
RULES = {
    "science core": (SCIENCE, DISTRIBUTED + UPPER, False),
    "jobs (Custodian only)": (["jobs"], ("fireworks", "pymongo", "gridfs") + UPPER[:1]
                              + UPPER[2:], False),
    "stages": (["stages"], ("fireworks", "custodian", "cgflow.orchestration", "cgflow.cli"),
               False),
    "db": (["db"], ("custodian", "cgflow.jobs", "cgflow.stages", "cgflow.orchestration",
                    "cgflow.cli"), False),
    "db (FireWorks only where a LaunchPad is used)": (["db"], ("fireworks",), True),
    "orchestration": (["orchestration"], ("cgflow.cli",), False),
}


def _files(paths: list[str]) -> list[Path]:
    out = []
    for p in paths:
        path = PKG / p
        out += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return out


def _imports(path: Path, module_level_only: bool) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    nodes = tree.body if module_level_only else list(ast.walk(tree))
    out = []
    for node in nodes:
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
            out += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
    return out


@pytest.mark.parametrize("layer", sorted(RULES))
def test_a_layer_imports_nothing_above_it(layer):
    paths, forbidden, module_level = RULES[layer]
    files = _files(paths)
    assert files, f"no files for {layer}"
    bad = [f"{f.relative_to(PKG.parent)}:{line}: {name}"
           for f in files for line, name in _imports(f, module_level)
           if any(name == p or name.startswith(p + ".") for p in forbidden)]
    assert not bad, f"{layer} imports what it must not:\n" + "\n".join(bad)


def test_every_module_is_in_a_layer():
    known = set(_files(SCIENCE + ["jobs", "stages", "db", "orchestration", "cli"]))
    known.add(PKG / "__init__.py")
    assert sorted(set(PKG.rglob("*.py")) - known) == []


def test_the_rules_can_fail(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("def g():\n    from fireworks import Firework\n")
    assert _imports(f, False) == [(2, "fireworks"), (2, "fireworks.Firework")]
    assert _imports(f, True) == []
