"""Run batches of hostile files in a child process (``_child.py``) and collect results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
#: What must hold for a load of a hostile file: refused with a devpersist error.
REFUSING = ("loads", "load")
#: Readers that do not build the object: may succeed, else a devpersist error.
ALL = ("loads", "load", "info", "verify", "untrusted", "cli_info", "cli_verify")


@dataclass
class Case:
    name: str
    data: bytes
    readers: tuple[str, ...] = ALL
    measure: bool = False


@dataclass
class Outcome:
    rows: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    returncode: int = 0
    stderr: str = ""
    canary: bool = False

    def __getitem__(self, key: tuple[str, str]) -> dict[str, Any]:
        return self.rows[key]


def run_cases(tmp_path: Path, cases: list[Case], timeout: float = 240) -> Outcome:
    folder = tmp_path / "cases"
    folder.mkdir()
    canary = tmp_path / "DVP_CANARY_FILE"
    listing = []
    for i, case in enumerate(cases):
        name = f"case{i}.dvp"
        (folder / name).write_bytes(case.data)
        listing.append(
            {
                "name": case.name,
                "file": name,
                "readers": list(case.readers),
                "measure": case.measure,
            }
        )
    (folder / "cases.json").write_text(json.dumps(listing))
    env = {**os.environ, "DVP_CANARY": str(canary)}
    proc = subprocess.run(
        [sys.executable, str(HERE / "_child.py"), str(folder)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=str(tmp_path),
    )
    out = Outcome(returncode=proc.returncode, stderr=proc.stderr[-3000:], canary=canary.exists())
    results = folder / "results.json"
    if results.exists():
        for row in json.loads(results.read_text()):
            out.rows[(row["case"], row["reader"])] = row
    return out


def problems(outcome: Outcome, cases: list[Case]) -> list[str]:
    """Everything that broke the guarantee: a crash, the canary, an audit event, an
    error that is not a devpersist error, a load that did not refuse."""
    found = []
    if outcome.returncode != 0:
        found.append(f"the child exited with {outcome.returncode}: {outcome.stderr}")
    if outcome.canary:
        found.append("the canary file was created")
    for case in cases:
        for reader in case.readers:
            row = outcome.rows.get((case.name, reader))
            if row is None:
                found.append(f"{case.name}/{reader}: no result")
                continue
            if row["events"]:
                found.append(f"{case.name}/{reader}: audit events {row['events']}")
            if not row["ok"] and not row["devpersist"]:
                found.append(f"{case.name}/{reader}: {row['error']}: {row['message']}")
            if row["ok"] and reader in REFUSING:
                found.append(f"{case.name}/{reader}: loaded")
            if reader.startswith("cli") and row.get("rc") not in (0, 1, 3):
                found.append(f"{case.name}/{reader}: exit status {row.get('rc')}")
    return found
