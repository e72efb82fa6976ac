"""The package's shape, locked: small modules, no import cycles, no private names
borrowed across modules, and library knowledge behind the array registry."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "devpersist"
#: Modules allowed over the size limit, and why.
LARGE = {
    # the pure-Python pre-pass is the reference the C walker (_opscan.c) is tested
    # against, branch by branch: kept whole so the two read side by side
    "devpersist._opcodes": 600,
    # one codec per transform (zstd, lz4, zlib, lzma, bfloat16, float16) with its limits
    "devpersist._codecs": 460,
}
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _compiled(name: str) -> bool:
    """A compiled module of the package (its C source sits beside the Python ones)."""
    parts = name.split(".")
    return (PACKAGE.parent.joinpath(*parts[:-1]) / f"{parts[-1]}.c").exists()


def _resolve(module: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if path.name != "__init__.py":
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _module_level_imports(tree: ast.Module) -> list[ast.ImportFrom | ast.Import]:
    """Imports run when the module is imported (not those inside functions or under
    ``if TYPE_CHECKING:``)."""
    found: list[ast.ImportFrom | ast.Import] = []

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                found.append(node)
            elif isinstance(node, ast.If):
                test = node.test
                if isinstance(test, ast.Name) and test.id == "TYPE_CHECKING":
                    continue
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)

    visit(tree.body)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    edges: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        for node in _module_level_imports(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                target = _resolve(module, path, node)
                names = [f"{target}.{a.name}" for a in node.names]
                for name in [target, *names]:
                    if name in modules and name != module:
                        edges[module].add(name)
            else:
                for alias in node.names:
                    if alias.name in modules:
                        edges[module].add(alias.name)
    return edges


def test_modules_are_small():
    over = {}
    for module, path in _modules().items():
        lines = len(path.read_text().splitlines())
        if lines > LARGE.get(module, MAX_LINES):
            over[module] = lines
    assert not over, f"modules over {MAX_LINES} lines (split them, or say why in LARGE): {over}"


def test_no_import_cycles():
    edges = _graph()
    # a package's __init__ importing its submodules is how a package is built
    for module in edges:
        edges[module] = {t for t in edges[module] if not t.startswith(module + ".")}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [])
    assert not cycles, f"module-level import cycles: {cycles}"


def test_the_checker_sees_a_cycle(tmp_path, monkeypatch):
    """The cycle check above would fail on a real cycle (so it can fail)."""
    pkg = tmp_path / "devpersist"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "_a.py").write_text("from ._b import x\n")
    (pkg / "_b.py").write_text("from ._a import y\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", pkg)
    with pytest.raises(AssertionError, match="import cycles"):
        test_no_import_cycles()


def test_no_private_names_cross_modules():
    borrowed = []
    for module, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                target = _resolve(module, path, node)
                for alias in node.names:
                    private = alias.name.startswith("_") and not alias.name.startswith("__")
                    # importing a private *module* (``from . import _codecs``) is fine
                    name = f"{target}.{alias.name}"
                    if private and name not in _modules() and not _compiled(name):
                        borrowed.append(f"{module} imports {target}.{alias.name}")
    assert not borrowed, borrowed


def test_array_libraries_are_named_only_by_their_handlers():
    """Outside ``arrays/``, no module decides by a library's module name what a type is
    (the registry does): look for string comparisons against the libraries' names."""
    libraries = ("torch", "cupy", "dpnp", "jax", "array_api_strict", "dpctl")
    offenders = []
    for module, path in _modules().items():
        if module.startswith("devpersist.arrays"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare) and any(
                isinstance(c, ast.Constant) and c.value in libraries
                for c in [node.left, *node.comparators]
            ):
                left = node.left
                if isinstance(left, ast.Attribute) and left.attr == "__module__":
                    offenders.append(f"{module}:{node.lineno}")
                elif isinstance(left, ast.Name) and left.id in ("module", "mod"):
                    offenders.append(f"{module}:{node.lineno}")
    assert not offenders, offenders
