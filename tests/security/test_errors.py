"""Every failure is a devpersist error, and nothing a file says is printed raw.

Strings from a file (manifest keys and values, names in the object graph) reach error
messages, ``devpersist info`` and ``diff``: their control characters (an ANSI escape
sequence can rewrite the terminal, a bidirectional override can reorder what is shown)
are escaped wherever they are printed.
"""

from __future__ import annotations

import re
from pathlib import Path

import _spec_writer as W
from _harness import ALL, Case, problems, run_cases

ESC = "\x1b[2J\x1b[31mOK\u202e\x07"
#: What must never reach a terminal: C0/C1 controls except newline, bidi controls.
RAW = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _valid_with(**fields: object) -> bytes:
    graph = W.stream(W.pid(0))
    blob = W.Blob(b"\x00" * 8, dtype="<f8", shape=[1])
    manifest = W.manifest_for(graph, [blob])
    manifest["arrays"][0].update(fields.pop("array", {}))  # type: ignore[arg-type]
    manifest.update(fields)
    return W.seal(graph, [blob], manifest=manifest)


def _cases() -> list[Case]:
    env = {"python": "3.11" + ESC, "platform": ESC, "packages": {"numpy" + ESC: "2" + ESC},
           "devices": {"cpu": ESC}}  # fmt: skip
    return [
        # valid files whose informational strings carry escapes: info prints them
        Case("info strings", _valid_with(array={"path": ESC, "device": "cpu" + ESC},
             object={"type": "builtins.dict" + ESC}, environment=env), ("info", "cli_info")),
        # invalid files whose errors quote the file
        Case("unknown key", _valid_with(**{ESC: 1}), ALL),
        Case("unknown namespace", _valid_with(array={"namespace": ESC}), ALL),
        Case("bad dtype", _valid_with(array={"dtype": "<f8" + ESC}), ALL),
        Case("bad checksum", _valid_with(graph={"offset": 64, "length": 4, "checksum": ESC}), ALL),
        Case("untrusted name", W.hostile(W.call(W.global_("os" + ESC, "system" + ESC),
             W.text("true"))), ALL),
        Case("unknown precision", _valid_with(array={"meta": {"precision": ESC, "cast": "<f8"}}),
             ALL),
    ]  # fmt: skip


def test_control_characters_are_escaped(tmp_path: Path) -> None:
    cases = _cases()
    outcome = run_cases(tmp_path, cases)
    found = [p for p in problems(outcome, cases) if "info strings/" not in p or "loaded" not in p]
    for (case, reader), row in outcome.rows.items():
        for text in (row.get("out", ""), row.get("err", ""), row.get("message", "")):
            if RAW.search(text):
                found.append(f"{case}/{reader} printed raw control characters: {text[:300]!r}")
    info = outcome.rows[("info strings", "cli_info")]
    assert info.get("rc") == 0, info
    assert "\\x1b[2J" in info["out"] and "\\u202e" in info["out"], info["out"]
    assert not found, "\n".join(found)
