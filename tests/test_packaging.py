"""Packaging: every package folder is listed in setup.py; the README's test command is what CI runs."""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def listed_packages() -> set[str]:
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "packages":
            return {elt.value for elt in node.value.elts}
    raise AssertionError("setup.py lists no packages")


def test_every_package_folder_is_listed_in_setup_py():
    def importable(folder: Path) -> bool:  # a package in every folder from the root down (not a venv's site-packages)
        parts = folder.relative_to(ROOT).parts
        return all((ROOT.joinpath(*parts[:i + 1]) / "__init__.py").exists() for i in range(len(parts)))

    found = {str(p.parent.relative_to(ROOT)).replace("/", ".") for p in ROOT.glob("*/**/__init__.py")
             if "tests" not in p.parts and not any(part.startswith(".") for part in p.parts) and importable(p.parent)}
    assert found == listed_packages()
    assert not (ROOT / "build" / "__init__.py").exists()  # would shadow PyPA's `build`


def test_readme_opens_with_the_two_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```(?:bash|sh)?\n(.*?)```", readme, re.S)
    assert len(blocks) >= 2
    ci = (ROOT / ".ci" / "run").read_text()
    test_cmd = blocks[1].strip()
    assert test_cmd in ci
    assert "torch==2.13.0" in (ROOT / "setup.py").read_text()
