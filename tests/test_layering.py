"""The packages form one order, and every import points down it (data flows one way)."""

from __future__ import annotations

import ast
from pathlib import Path

import pixelzoo

ORDER = ["errors", "utils", "data", "nn", "likelihoods", "sampling", "models", "codec", "runs",
         "evaluation", "training", "report", "cli", "__main__"]  # fmt: skip
ROOT = Path(pixelzoo.__file__).parent


def package_of(path: Path) -> str:
    return path.relative_to(ROOT).parts[0].removesuffix(".py")


def imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pixelzoo."):
            yield node.lineno, node.module.split(".")[1]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("pixelzoo."):
                    yield node.lineno, alias.name.split(".")[1]


def test_every_package_is_in_the_order():
    packages = {
        package_of(p) for p in ROOT.rglob("*.py") if p.name != "__init__.py" or p.parent != ROOT
    }
    assert packages - {"__init__"} <= set(ORDER), packages - set(ORDER)


def test_no_package_imports_one_above_it():
    rank = {name: i for i, name in enumerate(ORDER)}
    upward = []
    for path in ROOT.rglob("*.py"):
        if path.parent == ROOT and path.name == "__init__.py":
            continue  # the top-level package re-exports lazily
        me = package_of(path)
        for line, other in imports(path):
            if other in rank and rank[other] > rank[me]:
                upward.append(f"{path.relative_to(ROOT)}:{line} {me} imports {other}")
    assert not upward, "\n".join(upward)
