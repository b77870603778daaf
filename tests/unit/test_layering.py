"""Layering: the pure card modules use the standard library only; bridge/ never imports
the platform (Flask, SQLAlchemy, webapp)."""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BRIDGE = ROOT / "bridge"
# docs/design.md, "Layers": these are imported by both the bridge and the platform.
PURE = ["apdu.py", "errors.py", "transport.py", "jpki.py", "firewall.py", "wire.py", "sip2_wire.py"]
FORBIDDEN_IN_BRIDGE = {"flask", "flask_sock", "sqlalchemy", "webapp", "werkzeug"}


def imports(path: Path) -> Iterator[tuple[int, str, int]]:
    """(line, top-level module, relative level) of every import in a file, nested too."""
    tree = ast.parse(path.read_text("utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split(".")[0], 0
        elif isinstance(node, ast.ImportFrom) and node.module is None:  # from . import x
            for alias in node.names:
                yield node.lineno, alias.name, node.level
        elif isinstance(node, ast.ImportFrom):
            yield node.lineno, (node.module or "").split(".")[0], node.level
        elif isinstance(node, ast.Call) and _is_dynamic_import(node):
            arg = node.args[0] if node.args else None
            name = arg.value if isinstance(arg, ast.Constant) else "<dynamic>"
            yield node.lineno, str(name).split(".")[0], 0


def _is_dynamic_import(node: ast.Call) -> bool:
    f = node.func
    return (isinstance(f, ast.Name) and f.id == "__import__") or (
        isinstance(f, ast.Attribute) and f.attr == "import_module"
    )


@pytest.mark.parametrize("name", PURE)
def test_pure_modules_import_only_the_standard_library(name: str) -> None:
    path = BRIDGE / name
    assert path.exists(), f"bridge/{name} is missing"
    bad = []
    for line, module, level in imports(path):
        if level == 1:  # from .x import y: must itself be a pure module of bridge/
            if f"{module}.py" not in PURE:
                bad.append(f"{name}:{line}: .{module} is not a pure module")
        elif level > 1:
            bad.append(f"{name}:{line}: import leaves the bridge package")
        elif module not in sys.stdlib_module_names and module != "__future__":
            bad.append(f"{name}:{line}: {module} is not in the standard library")
    assert not bad, "\n".join(bad)


def bridge_files() -> list[Path]:
    return sorted(BRIDGE.rglob("*.py"))


@pytest.mark.parametrize("path", bridge_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_bridge_never_imports_the_platform(path: Path) -> None:
    bad = [
        f"{path.relative_to(ROOT)}:{line}: imports {module}"
        for line, module, level in imports(path)
        if level == 0 and module in FORBIDDEN_IN_BRIDGE
    ]
    assert not bad, "\n".join(bad)


def test_the_checker_sees_what_it_should(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import os\nfrom . import apdu\nfrom .. import webapp\nimport flask.json\n"
        "def f():\n    import sqlalchemy\n    __import__('redis')\n"
    )
    found = {(module, level) for _, module, level in imports(sample)}
    assert found == {
        ("os", 0),
        ("apdu", 1),
        ("webapp", 2),
        ("flask", 0),
        ("sqlalchemy", 0),
        ("redis", 0),
    }
