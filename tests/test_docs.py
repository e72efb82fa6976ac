"""The documentation site builds, strictly (broken links and API references fail)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


def test_mkdocs_site_builds(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    api = (tmp_path / "site" / "api" / "index.html").read_text()
    assert "devpersist.load" in api and "trusted" in api  # docstrings were rendered
    for role in (":func:", ":class:", ":data:", ":meth:", ":attr:"):
        assert role not in api, f"{role} printed literally"
    assert "__all__" not in api and 'id="devpersist._' not in api  # no private module
    for name in ("PrecisionLossError", "NotMappedWarning", "DeviceFallbackWarning", "mlflow"):
        assert f'id="devpersist.{name}"' in api


def test_readme_test_command_is_what_ci_runs():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    commands = [line for line in readme.splitlines() if line.startswith("python -m pip install")]
    assert len(commands) == 3  # quick start, the test suite, the SYCL suite
    assert commands[1] in ci.splitlines()


def test_pages_cite_only_files_in_the_repository():
    import re

    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    quoted = re.compile(r"`([\w.\-]+(?:/[\w.\-]+)+\.(?:md|py|toml|yml|yaml|json|txt|cfg|sh))`")
    linked = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
    missing = []
    for page in pages:
        text = page.read_text()
        missing += [(page.name, p) for p in quoted.findall(text) if not (ROOT / p).exists()]
        missing += [
            (page.name, p)
            for p in linked.findall(text)
            if "://" not in p and not (page.parent / p).exists()
        ]
    assert not missing


# --------------------------------------------------------------------------- recipes
# Every ```python block of README.md and docs/*.md runs, as written: the blocks of one
# file run in order in one fresh process (a later block may use what an earlier one
# made, as a reader would), in a temporary folder. A block needing a GPU is preceded by
# ``<!-- recipe: gpu -->`` and skipped without CUDA; a block that is deliberately not
# runnable (a signature, names a reader supplies) by ``<!-- recipe: fragment -->``, and
# is listed in FRAGMENTS, so that no block stops running unnoticed.

import re  # noqa: E402

_BLOCK = re.compile(r"(?:<!-- recipe: (\w+) -->\s*\n)?```python\n(.*?)```", re.S)
FRAGMENTS = {
    ("docs/index.md", 0): "a summary of the calls; `model` is the reader's",
    ("docs/migration.md", 0): "names files the reader has",
}


def _recipe_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _blocks(path: Path) -> list[tuple[str | None, str]]:
    return [(m.group(1), m.group(2)) for m in _BLOCK.finditer(path.read_text())]


def test_fragments_are_exactly_the_listed_ones():
    marked = {
        (str(path.relative_to(ROOT)), index)
        for path in _recipe_files()
        for index, (marker, _) in enumerate(_blocks(path))
        if marker == "fragment"
    }
    assert marked == set(FRAGMENTS)
    markers = {m for path in _recipe_files() for m, _ in _blocks(path)} - {None}
    assert markers <= {"fragment", "gpu"}, markers


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


@pytest.mark.parametrize(
    "name",
    [str(p.relative_to(ROOT)) for p in _recipe_files() if _blocks(p)],
)
def test_recipes_run_as_written(name, tmp_path):
    blocks = _blocks(ROOT / name)
    skipped = {"fragment"} if _cuda() else {"fragment", "gpu"}  # GPU blocks alone skip
    code = "\n".join(
        f"# --- block {index}\n{body}"
        for index, (marker, body) in enumerate(blocks)
        if marker not in skipped
    )
    if not code.strip():
        pytest.skip("only fragments or GPU recipes here")
    env = {k: v for k, v in os.environ.items() if k != "SCIPY_ARRAY_API"}  # as a reader's
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, f"{name}:\n{result.stderr[-3000:]}"
