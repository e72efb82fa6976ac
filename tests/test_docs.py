"""The documentation site builds, strictly (broken links and API references fail)."""

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
    assert len(commands) == 2
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
