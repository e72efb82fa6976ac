"""Runs hostile files through every reader in a fresh interpreter, and says what happened.

Usage: ``python _child.py CASES_DIR``. ``CASES_DIR/cases.json`` lists the cases:
``{"name", "file", "readers", "measure"}``; ``$DVP_CANARY`` is the canary path the
payloads would create. For each case and reader the child records the exception (its
type, whether it is a devpersist error, its message), the time taken, with
``measure`` the growth of the peak resident memory (Linux; the peak of traced memory elsewhere), and the audit events the call raised that no
load may raise: processes, ``exec``/``compile`` outside imports, sockets, file changes,
``open`` outside the interpreter's and the repository's folders (or of the canary), and
direct imports outside the libraries a load needs (``__main__`` and test modules
never, whoever imports them).
Results go to ``CASES_DIR/results.json``; the parent test judges them, and the exit
status (a segfault, an abort) and the canary too.

Many payloads share one child: starting Python and importing scikit-learn costs more
than the loads themselves.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import threading
import time
import tracemalloc
from typing import Any

ALWAYS = frozenset(
    "os.system os.exec os.posix_spawn os.spawn os.fork os.forkpty subprocess.Popen "
    "ctypes.dlopen ctypes.dlsym ctypes.call_function builtins.breakpoint builtins.input "
    "webbrowser.open socket.connect socket.bind socket.sendto socket.getaddrinfo "
    "urllib.Request http.client.connect shutil.rmtree shutil.copyfile shutil.move "
    "shutil.copytree shutil.unpack_archive os.remove os.rmdir os.rename os.mkdir os.chmod "
    "os.symlink os.link os.kill os.putenv os.unsetenv os.truncate os.chdir "
    "tempfile.mkstemp tempfile.mkdtemp sys.setprofile sys.settrace sys.addaudithook "
    "cpython.run_command cpython.run_file cpython.run_module code.__new__ "
    "function.__new__".split()
)
OUTSIDE_IMPORTS = frozenset({"exec", "compile", "marshal.loads"})
#: Top-level packages a load may import (what the loader and approved names need).
LIBRARIES = frozenset(
    "devpersist numpy scipy sklearn sklearnex onedal daal4py joblib threadpoolctl xxhash "
    "zstandard lz4 array_api_compat array_api_strict torch".split()
)

STATE: dict[str, Any] = {"armed": False, "events": []}
LOCAL = threading.local()


def _in_imports() -> bool:
    frame: Any = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib._bootstrap"):
            return True
        frame = frame.f_back
    return False


def hook(event: str, args: tuple[Any, ...]) -> None:
    if not STATE["armed"] or getattr(LOCAL, "busy", False):
        return
    LOCAL.busy = True
    try:
        record = None
        if event in ALWAYS:
            record = event
        elif event == "import":
            name = args[0]
            if isinstance(name, str) and name not in sys.modules:
                parts = name.split(".")
                never = "__main__" in parts or any(p in ("tests", "_testing") for p in parts)
                # what the libraries import for themselves is theirs; what the loader
                # imports directly must be one of them
                if never or (parts[0] not in LIBRARIES and not _in_imports()):
                    record = f"import {name}"
        elif event == "open":
            path = args[0]
            if isinstance(path, (str, bytes)) and not isinstance(path, int):
                text = os.fsdecode(path)
                if STATE["canary"] in text or not text.startswith(STATE["roots"]):
                    record = f"open {text}"
        elif event in OUTSIDE_IMPORTS and not _in_imports():
            record = event
        if record is not None:
            STATE["events"].append(record)
    finally:
        LOCAL.busy = False


def _status(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _reset_peak() -> bool:
    """Linux: writing 5 to clear_refs resets the peak RSS (VmHWM) to the current RSS."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def main() -> int:
    cases_dir = sys.argv[1]
    with open(os.path.join(cases_dir, "cases.json")) as f:
        cases = json.load(f)
    canary = os.environ["DVP_CANARY"]
    import numpy  # noqa: F401 - imported before arming: what any load has
    import sklearn.base  # noqa: F401

    import devpersist
    import devpersist.cli

    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    STATE["canary"] = os.path.basename(canary)
    STATE["roots"] = tuple(
        {sys.prefix, sys.base_prefix, sys.exec_prefix, here, os.path.realpath(here),
         os.path.realpath(cases_dir), cases_dir, "/proc/", "/sys/", "/dev/"}
    )  # fmt: skip
    sys.addaudithook(hook)
    results = []

    def loads(data: bytes, path: str) -> Any:
        return devpersist.loads(data)

    def load(data: bytes, path: str) -> Any:
        return devpersist.load(path)

    def info(data: bytes, path: str) -> Any:
        return devpersist.info(data)

    def verify(data: bytes, path: str) -> Any:
        return devpersist.verify(path)

    def untrusted(data: bytes, path: str) -> Any:
        return devpersist.get_untrusted_types(data)

    def cli(command: str) -> Any:
        def run(data: bytes, path: str) -> Any:
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                rc = devpersist.cli.main([command, path])
            return {"rc": rc, "out": out.getvalue()[-4000:], "err": err.getvalue()[-4000:]}

        return run

    readers = {
        "loads": loads,
        "load": load,
        "info": info,
        "verify": verify,
        "untrusted": untrusted,
        "cli_info": cli("info"),
        "cli_verify": cli("verify"),
    }
    import warnings

    for case in cases:
        path = os.path.join(cases_dir, case["file"])
        with open(path, "rb") as f:
            data = f.read()
        for reader in case["readers"]:
            row: dict[str, Any] = {"case": case["name"], "reader": reader}
            measure = case.get("measure")
            rss = measure and _reset_peak()
            if measure and not rss:
                tracemalloc.start()
            base = _status("VmRSS") if rss else 0
            STATE["events"] = []
            STATE["armed"] = True
            start = time.perf_counter()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    value = readers[reader](data, path)
                row["ok"] = True
                if isinstance(value, dict) and "rc" in value:
                    row.update(value)
            except BaseException as exc:
                row["ok"] = False
                row["error"] = type(exc).__name__
                row["devpersist"] = isinstance(exc, devpersist.DevpersistError)
                row["message"] = str(exc)[:500]
            finally:
                STATE["armed"] = False
            row["seconds"] = time.perf_counter() - start
            if rss:
                row["peak"] = _status("VmHWM") - base
            elif measure:
                row["peak"] = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
            row["events"] = sorted(set(STATE["events"]))[:20]
            results.append(row)
    with open(os.path.join(cases_dir, "results.json"), "w") as f:
        json.dump(results, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
