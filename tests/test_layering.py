"""The shape of the package, checked: no import cycle, services free of the request, one
committer among them, and files a newcomer can read.

Imports are read with `ast` from the source (module level and inside functions alike),
so a lazy import inside a function cannot hide a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "forum"
MAX_LINES = 500


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str) -> set[str]:
    """The forum modules `name` imports, with the packages that importing them runs."""
    tree = ast.parse(MODULES[name].read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for target in targets:
            if not target.startswith("forum"):
                continue
            parts = target.split(".")
            for n in range(1, len(parts) + 1):  # importing a.b.c runs a, a.b and a.b.c
                candidate = ".".join(parts[:n])
                if candidate in MODULES and candidate != name:
                    found.add(candidate)
    return found


GRAPH = {name: imports_of(name) for name in MODULES}


def find_cycle() -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(GRAPH[node]):
            if nxt == "forum":
                continue  # the root package: every `from forum.x import` runs it first
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(GRAPH):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def test_the_graph_sees_the_imports():
    assert "forum.services.sanitize" in GRAPH["forum.services.comments"]
    assert "forum.posts.page" in GRAPH["forum.comments.views"]


def test_no_import_cycle_in_the_package():
    assert find_cycle() is None, " -> ".join(find_cycle() or [])


SERVICES = [n for n in MODULES if n.startswith("forum.services")]


@pytest.mark.parametrize("name", SERVICES)
def test_services_never_touch_the_request(name):
    tree = ast.parse(MODULES[name].read_text())
    banned = {"request", "g", "session", "after_this_request", "has_request_context"}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "flask":
            assert not banned & {a.name for a in node.names}, (name, node.lineno)


@pytest.mark.parametrize("name", SERVICES)
def test_only_the_mailer_commits_among_the_services(name):
    source = MODULES[name].read_text()
    if name == "forum.services.mailer":
        assert ".commit()" in source
        return
    assert "session.commit()" not in source, name


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_file_is_longer_than_a_newcomer_reads(name):
    lines = MODULES[name].read_text().count("\n")
    assert lines <= MAX_LINES, f"{MODULES[name].relative_to(ROOT)}: {lines} lines"


def test_no_import_for_its_side_effect():
    for name, path in MODULES.items():
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if "import" in line and "noqa: F401" in line:
                pytest.fail(f"{name}:{number}: an import kept for its side effect")
