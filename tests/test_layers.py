"""The layering rule: production code never reaches up into the lab or the benchmarks.

Production is every module of ``scanguard_ids`` except ``lab/`` and ``commands/lab.py``
(the CLI command that starts the lab). It must not import ``scanguard_ids.lab`` or
``bench``: not at the top, not inside a function, not under TYPE_CHECKING, not by a
relative import, not by naming the module in a string (``importlib``, ``python -m``).
No module of ``scanguard_ids`` at all may import ``bench``. Checked on the source with
``ast``, so a lazy import that no test happens to execute is caught too.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "scanguard_ids"
LAB = "scanguard_ids.lab"
BENCH = "bench"
#: A string that is exactly a dotted module path (an import_module / ``-m`` argument).
_MODULE_PATH = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


def module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def is_production(name: str) -> bool:
    return not (name == LAB or name.startswith(LAB + ".") or name == "scanguard_ids.commands.lab")


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    """The absolute module names an ``from ... import ...`` may load."""
    if node.level == 0:
        base = node.module or ""
    else:
        parts = module.split(".") if is_package else module.split(".")[:-1]
        parts = parts[:len(parts) - (node.level - 1)]
        base = ".".join(parts + ([node.module] if node.module else []))
    # ``from pkg import name`` may load the submodule pkg.name.
    return [base, *(f"{base}.{a.name}" for a in node.names if a.name != "*")]


def imported(source: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, module) for every import anywhere in ``source`` (functions, TYPE_CHECKING
    blocks, try/except included) and every string constant that is a dotted module path."""
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            out += [(node.lineno, n) for n in _resolve(node, module, is_package)]
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str)
              and _MODULE_PATH.fullmatch(node.value) and "." in node.value):
            out.append((node.lineno, node.value))
    return out


def _under(name: str, top: str) -> bool:
    return name == top or name.startswith(top + ".")


def violations(source: str, module: str, is_package: bool = False) -> list[str]:
    forbidden = [BENCH] + ([LAB] if is_production(module) else [])
    hits: dict[int, str] = {}  # one per line: the first forbidden name
    for line, name in imported(source, module, is_package):
        if any(_under(name, top) for top in forbidden):
            hits.setdefault(line, name)
    return [f"{module}:{line} imports {name}" for line, name in sorted(hits.items())]


def _modules() -> list[Path]:
    return sorted(PKG.rglob("*.py"))


def test_the_package_is_found() -> None:
    names = {module_name(p) for p in _modules()}
    assert {"scanguard_ids.block.sdn.openflow", "scanguard_ids.lab.sdn.network",
            "scanguard_ids.commands.lab", "scanguard_ids.daemon"} <= names


def test_no_production_module_imports_the_lab_or_bench() -> None:
    bad: list[str] = []
    for path in _modules():
        bad += violations(path.read_text(encoding="utf-8"), module_name(path),
                          path.name == "__init__.py")
    assert not bad, "layering violated:\n" + "\n".join(bad)


@pytest.mark.parametrize(("module", "source"), [
    ("scanguard_ids.block.x", "from scanguard_ids.lab import netns\n"),
    ("scanguard_ids.block.x", "import scanguard_ids.lab.netns as n\n"),
    ("scanguard_ids.block.x", "def f():\n    from scanguard_ids.lab.sdn.ovs import missing\n"),
    ("scanguard_ids.block.x", "from typing import TYPE_CHECKING\n"
                              "if TYPE_CHECKING:\n    from scanguard_ids.lab.netns import Netns\n"),
    ("scanguard_ids.block.x", "from ..lab import procs\n"),
    ("scanguard_ids.block.sdn.x", "from ...lab.sdn import probe\n"),
    ("scanguard_ids.daemon", "from scanguard_ids import lab\n"),
    ("scanguard_ids.tui.x", "argv = ['python', '-m', 'scanguard_ids.lab.rtt']\n"),
    ("scanguard_ids.tui.x", "import importlib\nimportlib.import_module('bench.corpus')\n"),
    ("scanguard_ids.engine", "import bench.common\n"),
    ("scanguard_ids.lab.runner", "from bench.corpus import Corpus\n"),
    ("scanguard_ids.commands.lab", "def f():\n    import bench\n"),
])
def test_the_check_catches(module: str, source: str) -> None:
    assert violations(source, module)


@pytest.mark.parametrize(("module", "source"), [
    ("scanguard_ids.lab.runner", "from scanguard_ids.lab import procs\n"),
    ("scanguard_ids.commands.lab", "def f():\n    from scanguard_ids.lab.runner import run_lab\n"),
    ("scanguard_ids.lab.sdn.network", "from scanguard_ids.block.sdn.acl import AclLayout\n"),
    ("scanguard_ids.block.x", "from scanguard_ids.block import labels\n"),
    ("scanguard_ids.block.x", "'''Lab rigs: see scanguard_ids.lab.sdn.'''\n"),
    ("scanguard_ids.tui.x", "from .labview import f\n"),
])
def test_the_check_allows(module: str, source: str) -> None:
    assert not violations(source, module)
