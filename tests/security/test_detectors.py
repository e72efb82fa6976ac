"""The detectors of ``_guard.py`` see what a payload would do, and stay quiet on valid files."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from _guard import Guard
from hostile_cases.build import hgb_file, ridge_file, small_dict_file, tree_file


def test_detectors_see_what_a_payload_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The hook, the canary and the snapshot are not silent: run payload-like actions."""
    module_dir = tmp_path / "mods"
    module_dir.mkdir()
    (module_dir / "dvp_probe_module.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(module_dir))
    g = Guard(tmp_path)
    g.watching("dvp_probe_module")

    def payload() -> None:
        exec("x = 1")
        with open(g.canary, "w"):
            pass
        __import__("dvp_probe_module")
        os.environ["DVP_PROBE"] = "1"

    g.call(payload)
    kinds = {event for event, _ in g.events}
    assert {"exec", "open", "import", "os.putenv"} <= kinds
    with pytest.raises(AssertionError, match="canary created"):
        g.verify()
    assert "DVP_PROBE" not in os.environ  # verify() restored it
    sys.modules.pop("dvp_probe_module", None)


def test_detectors_see_global_tampering(tmp_path: Path):
    import sklearn.metrics.pairwise as pairwise

    g = Guard(tmp_path)
    original = pairwise.PAIRWISE_DISTANCE_FUNCTIONS["euclidean"]
    pairwise.PAIRWISE_DISTANCE_FUNCTIONS["euclidean"] = str
    np.DVP_TAMPERED = str  # type: ignore[attr-defined]
    with pytest.raises(AssertionError) as info:
        g.verify()
    assert "PAIRWISE_DISTANCE_FUNCTIONS" in str(info.value)
    assert "module numpy: DVP_TAMPERED was added" in str(info.value)
    assert pairwise.PAIRWISE_DISTANCE_FUNCTIONS["euclidean"] is original
    assert not hasattr(np, "DVP_TAMPERED")


@pytest.mark.parametrize("maker", [small_dict_file, ridge_file, tree_file, hgb_file])
def test_valid_files_load_quietly_under_the_detectors(maker: Callable[[], bytes], guard: Guard):
    """The detectors raise no false alarm on legitimate loads (both sources)."""
    data = maker()
    first = guard.load(data)
    second = guard.load(data, via="path")
    assert type(first) is type(second)
    guard.verify()
