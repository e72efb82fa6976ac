"""Hostile names: a file must not make devpersist import the module it names.

The defect these prove closed: the scikit-learn rule imported the module a file named
*before* judging it, so a graph naming ``sklearnex.__main__.sys`` ran
``sklearnex/__main__.py`` (it parses ``sys.argv`` and runs the script named there with
``runpy``): ``python predict.py evil.dvp`` then ran ``evil.dvp`` itself as a zip
application, whose ``__main__.py`` lay in a uint8 array of the file.

Every case runs in one child process (nothing imported by other tests), through
``load``, ``get_untrusted_types`` and ``verify``, with an audit hook recording the
import of any named module, ``exec``, process creation and opens of the canary, and a
canary file the payload would create.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import _hostile as H
import numpy as np

#: (module, name) pairs whose module runs code, or is a test/build helper, at import.
NAMED = [
    ("sklearnex.__main__", "sys"),
    ("sklearnex.glob.__main__", "sys"),
    ("daal4py.__main__", "sys"),
    ("sklearn.conftest", "pytest"),
    ("sklearn.utils._testing", "assert_allclose"),
    ("sklearn.utils.estimator_checks", "check_estimator"),
    ("sklearnex.conftest", "pytest"),
    ("sklearn.experimental.enable_halving_search_cv", "HalvingGridSearchCV"),
    ("sklearn.datasets._samples_generator", "make_blobs"),
]


def _zip_app(canary: str) -> bytes:
    """A zip whose ``__main__.py`` creates the canary: what runpy would run."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("__main__.py", f"open({canary!r}, 'w').close()\n")
    return buf.getvalue()


def _file(module: str, name: str, canary: str) -> bytes:
    graph = H.stream(
        H.EMPTY_LIST, H.MARK, H.stack_global(module, name), H.integer(0), b"Q", H.APPENDS
    )
    payload = np.frombuffer(_zip_app(canary), dtype=np.uint8).copy()
    return H.container(graph, [payload])


CHILD = textwrap.dedent(
    """
    import json, sys
    cases = json.loads(sys.argv[1])
    watched = tuple(m for c in cases for m in [c["module"]])
    events = []

    def hook(event, args):
        if event == "import" and isinstance(args[0], str):
            if any(args[0] == w or args[0].startswith(w + ".") for w in watched):
                events.append(["import", args[0]])
        elif event in ("subprocess.Popen", "os.system", "os.exec", "os.spawn", "os.posix_spawn"):
            events.append([event, repr(args)[:200]])
        elif event == "open" and isinstance(args[0], str) and "CANARY" in args[0]:
            events.append(["open", args[0]])

    sys.addaudithook(hook)
    import devpersist

    report = {}
    for case in cases:
        sys.argv = ["predict.py", case["path"]]  # what sklearnex.__main__ would run
        outcome = {}
        for what in ("load", "get_untrusted_types", "verify"):
            try:
                result = getattr(devpersist, what)(case["path"])
                outcome[what] = ["ok", result if what != "load" else repr(result)[:100]]
            except devpersist.DevpersistError as exc:
                outcome[what] = [type(exc).__name__, getattr(exc, "untrusted", [])]
            except BaseException as exc:  # SystemExit included: a defect
                outcome[what] = ["escaped " + type(exc).__name__, str(exc)[:200]]
        report[case["id"]] = outcome
    print(json.dumps({"report": report, "events": events}))
    """
)


def test_named_modules_are_never_imported_to_judge_them(tmp_path: Path):
    cases = []
    for i, (module, name) in enumerate(NAMED):
        canary = str(tmp_path / f"CANARY{i}")
        path = tmp_path / f"evil{i}.dvp"
        path.write_bytes(_file(module, name, canary))
        cases.append({"id": f"{module}.{name}", "module": module, "path": str(path)})
    env = {k: v for k, v in os.environ.items() if k != "SCIPY_ARRAY_API"}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(cases)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    canaries = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("CANARY"))
    assert not canaries, f"the payload ran: {canaries}\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["events"] == [], out["events"]
    for case in cases:
        got = out["report"][case["id"]]
        assert got["load"] == ["UntrustedTypeError", [case["id"]]], (case["id"], got)
        assert got["get_untrusted_types"] == ["ok", [case["id"]]], (case["id"], got)
        assert got["verify"][0] == "ok" and got["verify"][1]["untrusted"] == [case["id"]], got


def test_the_zip_payload_would_run_if_the_file_were_run(tmp_path: Path):
    """The detector is not blind: running the hostile file as Python creates the canary
    (what ``sklearnex.__main__`` did with it through runpy)."""
    canary = tmp_path / "CANARY"
    path = tmp_path / "evil.dvp"
    path.write_bytes(_file("sklearnex.__main__", "sys", str(canary)))
    subprocess.run([sys.executable, str(path)], check=True, timeout=60, cwd=tmp_path)
    assert canary.exists()
