"""Detectors that prove a hostile load ran nothing: audit hook, canary, state snapshot.

The proof that nothing ran is not the exception alone (see SECURITY.md, "How to prove it"):

1. a **canary file**: payloads would create ``<tmp>/DVP_CANARY`` (``os.system("touch ...")``,
   ``open(...)``, ``subprocess.Popen``...); it must not exist afterwards;
2. an **audit hook** (``sys.addaudithook``, installed once, armed only during the load
   call) records process, code, socket and file-system events, ``open`` of the canary,
   and imports of modules a load never needs (os/subprocess/runpy/pty/ctypes/pydoc/...);
   none may be recorded;
3. a **state snapshot**: module namespaces, scikit-learn's metric tables, stdlib classes,
   the allowlist, ``os.environ`` and the set of live threads must be unchanged.

:class:`Guard` bundles the three; the ``guard`` fixture (``conftest.py``) gives one per test.
Used by the ``test_*.py`` modules of this folder; the hostile files are in ``hostile_cases``.
"""

from __future__ import annotations

import os
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import devpersist

TOKEN = "DVP_CANARY"

# --------------------------------------------------------------------------- audit hook

#: Events no load may raise, whatever it imports.
ALWAYS = frozenset(
    {
        "os.system",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "os.fork",
        "os.forkpty",
        "subprocess.Popen",
        "ctypes.dlopen",
        "ctypes.dlsym",
        "ctypes.call_function",
        "ctypes.cdata",
        "ctypes.string_at",
        "builtins.breakpoint",
        "builtins.input",
        "webbrowser.open",
        "socket.connect",
        "socket.bind",
        "socket.sendto",
        "socket.getaddrinfo",
        "socket.gethostbyname",
        "urllib.Request",
        "http.client.connect",
        "shutil.rmtree",
        "shutil.copyfile",
        "shutil.copymode",
        "shutil.copytree",
        "shutil.move",
        "shutil.make_archive",
        "shutil.unpack_archive",
        "os.remove",
        "os.rmdir",
        "os.rename",
        "os.mkdir",
        "os.chmod",
        "os.chown",
        "os.symlink",
        "os.link",
        "os.kill",
        "os.killpg",
        "os.putenv",
        "os.unsetenv",
        "os.truncate",
        "os.chdir",
        "tempfile.mkdtemp",
        "tempfile.mkstemp",
        "pickle.find_class",
        "sys.setprofile",
        "sys.settrace",
        "sys.addaudithook",
        "cpython.run_command",
        "cpython.run_file",
        "cpython.run_module",
        "cpython.run_startup",
        "code.__new__",
        "function.__new__",
    }
)
#: Events that importing a module raises legitimately (module bodies, dataclasses,
#: class attributes set at import): recorded only outside the import machinery.
OUTSIDE_IMPORTS = frozenset(
    {
        "exec",
        "compile",
        "marshal.loads",
        "marshal.load",
        "object.__setattr__",
        "object.__delattr__",
    }
)
#: Modules a load never imports (their import is the attack, or the first step of it).
FORBIDDEN_IMPORTS = (
    "subprocess",
    "runpy",
    "pty",
    "ctypes",
    "pydoc",
    "code",
    "codeop",
    "importlib",
    "multiprocessing",
    "pip",
    "shutil",
    "cProfile",
    "profile",
    "pstats",
    "numpy.f2py",
    "webbrowser",
    "antigravity",
    "this",
    "__hello__",
    "__phello__",
    "pdb",
    "bdb",
    "trace",
    "turtle",
    "idlelib",
    "tkinter",
    "smtplib",
    "ftplib",
    "telnetlib",
    "socketserver",
    "xmlrpc",
    "http.server",
    "urllib.request",
    "sklearn.utils._testing",
    "sklearn.datasets",
    "sklearn.experimental",
    "sklearn.utils.estimator_checks",
    "sklearn.utils.discovery",
    "sklearn.utils._show_versions",
)

_AUDIT: dict[str, Any] = {"armed": False, "events": [], "watch": FORBIDDEN_IMPORTS}
_LOCAL = threading.local()


def _watched(module: str, watch: tuple[str, ...]) -> bool:
    return any(module == w or module.startswith(w + ".") for w in watch)


def _in_import_machinery() -> bool:
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib._bootstrap"):
            return True
        frame = frame.f_back
    return False


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if not _AUDIT["armed"] or getattr(_LOCAL, "busy", False):
        return
    _LOCAL.busy = True
    try:
        record = None
        if event in ALWAYS:
            record = (event, repr(args)[:300])
        elif event == "import":
            if isinstance(args[0], str) and _watched(args[0], _AUDIT["watch"]):
                record = (event, args[0])
        elif event == "open":
            path = args[0]
            if isinstance(path, (str, bytes, os.PathLike)) and TOKEN in os.fsdecode(path):
                record = (event, os.fsdecode(path))
        elif event in OUTSIDE_IMPORTS and not _in_import_machinery():
            record = (event, repr(args)[:300])
        if record is not None:
            _AUDIT["events"].append(record)
    finally:
        _LOCAL.busy = False


if not getattr(sys, "_devpersist_security_hook", False):  # hooks cannot be removed
    sys.addaudithook(_hook)
    sys._devpersist_security_hook = True  # type: ignore[attr-defined]


@contextmanager
def armed(watch: tuple[str, ...] = ()) -> Iterator[list[tuple[str, str]]]:
    """Record audit events inside the block; yields the list they land in."""
    events: list[tuple[str, str]] = []
    _AUDIT.update(events=events, watch=FORBIDDEN_IMPORTS + tuple(watch), armed=True)
    try:
        yield events
    finally:
        _AUDIT["armed"] = False


# --------------------------------------------------------------------------- state snapshot

_MODULES = (
    "builtins",
    "numpy",
    "collections",
    "fractions",
    "decimal",
    "datetime",
    "sklearn",
    "sklearn.base",
    "sklearn.metrics",
    "sklearn.metrics.pairwise",
    "sklearn.callback._transport",
    "array_api_compat.numpy",
    "sklearn.externals.array_api_compat.numpy",
    "scipy._lib.array_api_compat.numpy",
    "devpersist",
    "devpersist._safety",
    "devpersist._graph",
)


def _tables() -> dict[str, dict[Any, Any]]:
    """Mutable global tables a hostile graph could reach, by name."""
    import sklearn.callback._transport as transport
    import sklearn.metrics.pairwise as pairwise

    from devpersist import _safety

    return {
        "PAIRWISE_DISTANCE_FUNCTIONS": pairwise.PAIRWISE_DISTANCE_FUNCTIONS,
        "PAIRWISE_KERNEL_FUNCTIONS": pairwise.PAIRWISE_KERNEL_FUNCTIONS,
        "callback listeners": transport._listeners,
        "allowlist EXACT": _safety.EXACT,
    }


def _classes() -> list[type]:
    import collections
    import fractions

    import sklearn.base
    import sklearn.linear_model

    return [
        collections.Counter,
        collections.OrderedDict,
        fractions.Fraction,
        sklearn.base.BaseEstimator,
        sklearn.linear_model.Ridge,
    ]


@dataclass
class Snapshot:
    modules: dict[str, dict[str, Any]]
    tables: dict[str, dict[Any, Any]]
    classes: dict[type, dict[str, Any]]
    environ: dict[str, str]
    threads: set[int]

    @classmethod
    def take(cls) -> Snapshot:
        return cls(
            {m: dict(vars(sys.modules[m])) for m in _MODULES if m in sys.modules},
            {k: dict(v) for k, v in _tables().items()},
            {c: dict(vars(c)) for c in _classes()},
            dict(os.environ),
            {t.ident for t in threading.enumerate() if t.ident is not None},
        )

    def changes_and_restore(self) -> list[str]:
        """What differs now; puts back what it can so later tests see a clean process."""
        changes: list[str] = []
        for name, before in self.modules.items():
            namespace = vars(sys.modules[name])
            for key, value in list(namespace.items()):
                if key in before:
                    if value is not before[key]:
                        changes.append(f"module {name}: {key} was replaced")
                        namespace[key] = before[key]
                elif not isinstance(value, type(sys)):  # new submodules are fine
                    changes.append(f"module {name}: {key} was added")
                    del namespace[key]
        for name, table in _tables().items():
            before = self.tables[name]
            if table.keys() != before.keys() or any(table[k] is not before[k] for k in before):
                changes.append(f"{name} was modified")
                if name == "callback listeners":
                    from sklearn.callback._transport import close_listener

                    for address in set(table) - set(before):
                        listener = table[address]
                        close_listener(type("H", (), {"address": address})())
                        del listener
                table.clear()
                table.update(before)
        for klass, before in self.classes.items():
            now = dict(vars(klass))
            for key in (set(now) | set(before)) - {"__slotnames__"}:  # copyreg's cache
                if now.get(key, before) is not before.get(key, before):
                    changes.append(f"class {klass.__qualname__}: {key} was changed")
                    if key in before:
                        setattr(klass, key, before[key])
                    else:
                        delattr(klass, key)
        for key in (set(os.environ) | set(self.environ)) - {"PYTEST_CURRENT_TEST"}:
            if os.environ.get(key) != self.environ.get(key):
                changes.append(f"os.environ[{key!r}] was changed")
                if key in self.environ:
                    os.environ[key] = self.environ[key]
                else:
                    del os.environ[key]
        started = [t for t in threading.enumerate() if t.ident not in self.threads]
        if started:  # what a bad load built may hold threads until collected
            import gc

            gc.collect()
        for thread in started:
            thread.join(timeout=2)
            if thread.is_alive():
                changes.append(f"a thread was started: {thread.name}")
        return changes


class Guard:
    """Loads hostile data with every detector on, then checks that nothing happened."""

    def __init__(self, tmp_path: Path) -> None:
        self.dir = tmp_path
        self.canary = str(tmp_path / TOKEN)
        self.events: list[tuple[str, str]] = []
        self.watch: tuple[str, ...] = ()
        self.snapshot = Snapshot.take()  # imports what it inspects: before `absent`
        self.absent = {m for m in FORBIDDEN_IMPORTS if m not in sys.modules}

    def watching(self, *modules: str) -> None:
        self.watch += modules
        self.absent |= {m for m in modules if m not in sys.modules}

    def call(self, func: Callable[..., Any], *args: Any, quiet: bool = False, **kwargs: Any) -> Any:
        with armed(self.watch) as events, warnings.catch_warnings():
            if quiet:
                warnings.simplefilter("ignore")
            try:
                return func(*args, **kwargs)
            finally:
                self.events += events

    def load(self, data: bytes, via: str = "bytes", quiet: bool = False, **kwargs: Any) -> Any:
        if via == "bytes":
            return self.call(devpersist.loads, data, quiet=quiet, **kwargs)
        path = self.dir / "hostile.dvp"
        path.write_bytes(data)
        return self.call(devpersist.load, path, quiet=quiet, **kwargs)

    def verify(self) -> None:
        """Assert: no canary, no audit event, no forbidden import, no global change."""
        problems = [
            f"canary created: {p}"
            for p in self.dir.iterdir()
            if TOKEN in p.name and not p.name.endswith(".py")
        ]
        problems += [f"audit event {e}: {a}" for e, a in self.events]
        problems += [f"module imported: {m}" for m in sorted(self.absent) if m in sys.modules]
        problems += self.snapshot.changes_and_restore()
        assert not problems, "the hostile input had effects:\n  " + "\n  ".join(problems)
