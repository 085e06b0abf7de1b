"""The layout shows the architecture: a pure core that never imports the views, small
functions in the core and the scheduling code, and an app folder that only assembles."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "gan2d"
MAX_FUNCTION_LINES = 60


def modules(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.py"))


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("folder", ["core", "theory"])
def test_the_core_never_imports_the_views_or_panel(folder):
    for path in modules(PACKAGE / folder):
        bad = {n for n in imported(path) if n.startswith(("gan2d.ui", "panel", "bokeh"))}
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_the_core_and_the_benchmark_stay_apart():
    for path in modules(PACKAGE / "core"):
        assert not {n for n in imported(path) if n.startswith("gan2d.bench")}, path


def long_functions(paths: list[Path]) -> list[str]:
    found = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines})")
    return found


def test_no_function_in_the_core_or_the_scheduling_code_is_over_60_lines():
    paths = modules(PACKAGE / "core")
    paths += [PACKAGE / "ui" / n for n in ("session.py", "scheduler.py", "trainer.py")]
    assert long_functions(paths) == []


def test_the_app_folder_only_assembles_gan2d_ui():
    files = sorted(p.name for p in (ROOT / "app").iterdir() if p.suffix == ".py")
    assert files == ["app_hooks.py", "main.py"]
    for name in files:
        path = ROOT / "app" / name
        assert len(path.read_text().splitlines()) <= 10
        assert {n for n in imported(path) if n.startswith("gan2d")} <= {"gan2d.ui", "gan2d.ui.page"}
