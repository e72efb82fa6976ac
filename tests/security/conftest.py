"""Fixtures of the hostile-input suite (tests/security)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from _guard import Guard


@pytest.fixture
def guard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Guard]:
    monkeypatch.delenv("SCIPY_ARRAY_API", raising=False)
    g = Guard(tmp_path)
    yield g
