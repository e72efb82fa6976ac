"""Hostile inputs: every one is rejected with a specific devpersist error, executing nothing.

The proof that nothing ran is not the exception alone (see SECURITY.md, "How to prove it"):

1. a **canary file**: payloads would create ``<tmp>/DVP_CANARY`` (``os.system("touch ...")``,
   ``open(...)``, ``subprocess.Popen``...); it must not exist afterwards;
2. an **audit hook** (``sys.addaudithook``, installed once, armed only during the load
   call) records process, code, socket and file-system events, ``open`` of the canary,
   and imports of modules a load never needs (os/subprocess/runpy/pty/ctypes/pydoc/...);
   none may be recorded;
3. a **state snapshot**: module namespaces, scikit-learn's metric tables, stdlib classes,
   the allowlist, ``os.environ`` and the set of live threads must be unchanged.

Cases built from byte-level surgery on valid files (manifest, offsets, dtypes) carry a
payload in their object graph too, so that a loader which skipped a check would run it.

Where a case lists several acceptable errors, more than one sound fix exists (a resource
limit, or refusing to call the function at all); one specific error is still required.
A case that fails here is a loader bug: fix the loader, not the expectation.
"""

from __future__ import annotations

import functools
import gzip
import io
import json
import os
import pickle
import shlex
import struct
import subprocess
import sys
import textwrap
import threading
import uuid
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _hostile as H
import numpy as np
import pytest

import devpersist
from devpersist import (
    DevpersistError,
    FormatError,
    IntegrityError,
    NotDevpersistError,
    ResourceLimitError,
    UnsupportedFormatVersionError,
    UntrustedTypeError,
)

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


@pytest.fixture
def guard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Guard]:
    monkeypatch.delenv("SCIPY_ARRAY_API", raising=False)
    g = Guard(tmp_path)
    yield g


# --------------------------------------------------------------------------- base files

X4 = np.array([[0.0], [1.0], [2.0], [3.0]])
Y4 = np.array([0, 1, 0, 1])


@functools.cache
def small_dict_file() -> bytes:
    return devpersist.dumps({"a": np.arange(3.0)})


@functools.cache
def ridge_file() -> bytes:
    from sklearn.linear_model import Ridge

    return devpersist.dumps(Ridge(alpha=0.5).fit(X4, [1.0, 2.0, 0.0, 3.0]))


@functools.cache
def tree_file() -> bytes:
    from sklearn.tree import DecisionTreeClassifier

    return devpersist.dumps(DecisionTreeClassifier(random_state=0).fit(X4, Y4))


@functools.cache
def hgb_file() -> bytes:
    from sklearn.ensemble import HistGradientBoostingClassifier

    X = np.arange(200.0).reshape(-1, 1)
    model = HistGradientBoostingClassifier(max_iter=2, min_samples_leaf=5, random_state=0)
    return devpersist.dumps(model.fit(X, (np.arange(200) // 10) % 2))


def touch(canary: str) -> str:
    return f"touch {shlex.quote(canary)}"


def with_array(*items: bytes) -> bytes:
    """A list of the fragments, plus array 0 by persistent id."""
    return H.stream(H.EMPTY_LIST, H.MARK, *items, H.integer(0), b"Q", H.APPENDS)


def plain_file(c: str) -> bytes:
    """A valid container whose graph is just ``[array 0]``: for checks made while arrays
    are read, which come after the audit (a payload would be rejected first)."""
    return H.container(with_array(), [np.arange(3.0)])


def armed_file(c: str, **extra: Any) -> bytes:
    """A well-formed container whose graph runs ``os.system(touch canary)`` first."""
    return H.container(with_array(H.shell(touch(c))), [np.arange(3.0)], extra=extra or None)


def two_array_file(c: str) -> bytes:
    graph = H.stream(
        H.EMPTY_LIST, H.MARK, H.shell(touch(c)), H.integer(0), b"Q", H.integer(1), b"Q", H.APPENDS
    )
    return H.container(graph, [np.arange(3.0), np.arange(5.0)])


Maker = Callable[[str], bytes]


def edit(base: Maker, change: Callable[[dict[str, Any]], Any]) -> Maker:
    return lambda c: H.edit_manifest(base(c), change)


def array0(change: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    return lambda m: change(m["arrays"][0])


def setter(**values: Any) -> Callable[[dict[str, Any]], None]:
    return lambda entry: entry.update(values)


# --------------------------------------------------------------------------- the cases


@dataclass
class Case:
    id: str
    make: Callable[[str], bytes]  # canary path -> file bytes
    expect: tuple[type[BaseException], ...]
    untrusted: tuple[tuple[str, str], ...] = ()  # names the error must list
    watch: tuple[str, ...] = ()  # modules that must not get imported
    quiet: bool = False  # ignore warnings during the load (to see the real outcome)


def _str_list(*items: str) -> bytes:
    return H.EMPTY_LIST + H.MARK + b"".join(H.text(i) for i in items) + H.APPENDS


def _py(c: str) -> str:
    return f"open({c!r}, 'w').close()"


def _script(c: str) -> str:
    path = c + "_payload.py"
    Path(path).write_text(_py(c) + "\n")
    return path


def _ucall(
    module: str,
    name: str,
    make_args: Callable[[str], list[bytes]],
    case_id: str | None = None,
    also: tuple[tuple[str, str], ...] = (),
    watch: tuple[str, ...] = (),
) -> Case:
    def make(c: str) -> bytes:
        return H.container(
            with_array(H.call(H.stack_global(module, name), *make_args(c))), [np.arange(3.0)]
        )

    return Case(
        case_id or f"{module}.{name}", make, (UntrustedTypeError,), ((module, name), *also), watch
    )


def _gadget(
    case_id: str,
    fragment: Callable[[str], bytes],
    names: tuple[tuple[str, str], ...],
    watch: tuple[str, ...] = (),
) -> Case:
    return Case(
        case_id,
        lambda c: H.container(with_array(fragment(c)), [np.arange(3.0)]),
        (UntrustedTypeError,),
        names,
        watch,
    )


SG = H.stack_global
T = H.text

# 1-3. Callables that run code, by name: each would create the canary if it ran.
CODE_CASES = [
    _ucall("os", "system", lambda c: [T(touch(c))]),
    Case(
        "os.system-GLOBAL-opcode-protocol-2",
        lambda c: H.container(
            b"\x80\x02"
            + H.global_op("os", "system")
            + H.MARK
            + T(touch(c))
            + H.TUPLE
            + H.REDUCE
            + H.POP
            + H.EMPTY_LIST
            + H.integer(0)
            + b"Q"
            + H.APPEND
            + H.STOP,
            [np.arange(3.0)],
        ),
        (UntrustedTypeError,),
        (("os", "system"),),
    ),
    _ucall("posix", "system", lambda c: [T(touch(c))]),
    _ucall("subprocess", "Popen", lambda c: [_str_list("touch", c)], watch=("subprocess",)),
    _ucall("subprocess", "check_output", lambda c: [_str_list("touch", c)]),
    _ucall("os", "popen", lambda c: [T(touch(c))]),
    _ucall("os", "spawnlp", lambda c: [H.integer(0), T("touch"), T("touch"), T(c)]),
    _ucall("builtins", "eval", lambda c: [T(_py(c))]),
    _ucall("builtins", "exec", lambda c: [T(_py(c))]),
    _ucall("builtins", "compile", lambda c: [T(_py(c)), T("<x>"), T("exec")]),
    _gadget(
        "builtins.exec(builtins.compile(...))",
        lambda c: H.call(
            SG("builtins", "exec"),
            H.call(SG("builtins", "compile"), T(_py(c)), T("<x>"), T("exec")),
        ),
        (("builtins", "exec"), ("builtins", "compile")),
    ),
    _gadget(
        "builtins.getattr(object, '__subclasses__')",
        lambda c: H.call(
            H.call(SG("builtins", "getattr"), SG("builtins", "object"), T("__subclasses__"))
        ),
        (("builtins", "getattr"),),
    ),
    _ucall("builtins", "__import__", lambda c: [T("os")]),
    _ucall("builtins", "open", lambda c: [T(c), T("w")]),
    _ucall("builtins", "breakpoint", lambda c: []),
    _ucall("builtins", "setattr", lambda c: [SG("builtins", "str"), T("x"), H.NONE]),
    _ucall("builtins", "globals", lambda c: []),
    _ucall("builtins", "bytearray", lambda c: [H.integer(2**40)]),
    Case(
        "__builtin__.eval-protocol-2-GLOBAL (fix_imports name)",
        lambda c: H.container(
            b"\x80\x02"
            + H.global_op("__builtin__", "eval")
            + H.MARK
            + T(_py(c))
            + H.TUPLE
            + H.REDUCE
            + H.POP
            + H.EMPTY_LIST
            + H.integer(0)
            + b"Q"
            + H.APPEND
            + H.STOP,
            [np.arange(3.0)],
        ),
        (UntrustedTypeError,),
        (("__builtin__", "eval"),),
    ),
    _ucall("_io", "FileIO", lambda c: [T(c), T("w")]),
    _ucall("io", "open", lambda c: [T(c), T("w")]),
    _ucall("_io", "open", lambda c: [T(c), T("w")]),
    _ucall("runpy", "run_path", lambda c: [T(_script(c))], watch=("runpy",)),
    _ucall("runpy", "_run_code", lambda c: [T(_py(c)), H.EMPTY_DICT]),
    _ucall("cProfile", "run", lambda c: [T(_py(c))], watch=("cProfile",)),
    _ucall("profile", "run", lambda c: [T(_py(c))]),
    _ucall("timeit", "timeit", lambda c: [T(_py(c))]),
    _ucall("pty", "spawn", lambda c: [_str_list("touch", c)], watch=("pty",)),
    _ucall("ctypes", "CDLL", lambda c: [H.NONE], watch=("ctypes",)),
    _ucall("ctypes", "cdll.LoadLibrary", lambda c: [T("libc.so.6")]),
    _ucall("numpy.ctypeslib", "load_library", lambda c: [T("libc"), T("/lib")]),
    _ucall("pydoc", "pipepager", lambda c: [T("x"), T(touch(c))], watch=("pydoc",)),
    _ucall("pydoc", "locate", lambda c: [T("os.system")]),
    _ucall("importlib", "import_module", lambda c: [T("antigravity")], watch=("antigravity",)),
    _gadget(
        "code.InteractiveInterpreter.runsource",
        lambda c: H.call(
            SG("code", "InteractiveInterpreter.runsource"),
            H.call(SG("code", "InteractiveInterpreter")),
            T(_py(c)),
        ),
        (("code", "InteractiveInterpreter"), ("code", "InteractiveInterpreter.runsource")),
        watch=("code",),
    ),
    _gadget(
        "multiprocessing.Process(target=os.system).start",
        lambda c: H.call(
            SG("multiprocessing", "Process.start"),
            H.call(
                SG("multiprocessing", "Process"),
                H.NONE,
                SG("os", "system"),
                H.NONE,
                H.MARK + T(touch(c)) + H.TUPLE,
            ),
        ),
        (("multiprocessing", "Process"), ("os", "system")),
    ),
    _ucall("pip._internal.cli.main", "main", lambda c: [_str_list("--version")], watch=("pip",)),
    _gadget(
        "operator.attrgetter('system')(__import__('os'))(cmd)",
        lambda c: H.call(
            H.call(
                H.call(SG("operator", "attrgetter"), T("system")),
                H.call(SG("builtins", "__import__"), T("os")),
            ),
            T(touch(c)),
        ),
        (("operator", "attrgetter"), ("builtins", "__import__")),
    ),
    _gadget(
        "operator.methodcaller('system', cmd)(__import__('os'))",
        lambda c: H.call(
            H.call(SG("operator", "methodcaller"), T("system"), T(touch(c))),
            H.call(SG("builtins", "__import__"), T("os")),
        ),
        (("operator", "methodcaller"), ("builtins", "__import__")),
    ),
    _gadget(
        "functools.partial(os.system, cmd)()",
        lambda c: H.call(H.call(SG("functools", "partial"), SG("os", "system"), T(touch(c)))),
        (("functools", "partial"), ("os", "system")),
    ),
    _gadget(
        "functools.partial(builtins.exec, src)()",
        lambda c: H.call(H.call(SG("functools", "partial"), SG("builtins", "exec"), T(_py(c)))),
        (("functools", "partial"), ("builtins", "exec")),
    ),
    _gadget(
        "functools.partial(numpy.sum) (an allowed function inside partial)",
        lambda c: H.call(SG("functools", "partial"), SG("numpy", "sum")),
        (("functools", "partial"),),
    ),
    _ucall("numpy.f2py", "run_main", lambda c: [_str_list("-c", c)], watch=("numpy.f2py",)),
    _ucall("numpy", "load", lambda c: [T(c)]),
    _ucall("numpy", "frompyfunc", lambda c: [SG("builtins", "str"), H.integer(1), H.integer(1)]),
    _ucall("numpy._core.multiarray", "_reconstruct", lambda c: [H.NONE]),
    _ucall("shutil", "copyfile", lambda c: [T(__file__), T(c)]),
    _ucall("shutil", "rmtree", lambda c: [T(c + "_dir")]),
    _ucall("webbrowser", "open", lambda c: [T("file://" + c)], watch=("webbrowser",)),
    _ucall("pickle", "loads", lambda c: [H.binbytes(pickle.dumps(0))]),
    _ucall("marshal", "loads", lambda c: [H.binbytes(b"N")]),
    _ucall("types", "FunctionType", lambda c: [H.NONE, H.EMPTY_DICT]),
    _ucall("types", "CodeType", lambda c: []),
    _ucall(
        "copyreg",
        "_reconstructor",
        lambda c: [SG("builtins", "object"), SG("builtins", "object"), H.NONE],
    ),
    _ucall("collections", "namedtuple", lambda c: [T("x"), T("a")]),
    _ucall("sys", "modules", lambda c: []),
    _ucall("joblib", "load", lambda c: [T(c)]),
    _ucall(
        "pathlib",
        "Path.write_text",
        lambda c: [H.call(SG("pathlib", "Path"), T(c)), T("x")],
        also=(("pathlib", "Path"),),
    ),
]

# 4. Dotted names that traverse modules or attributes; malformed names.
NAME_CASES = [
    _ucall("pathlib", "os.system", lambda c: [T(touch(c))]),
    _ucall("sklearn", "utils.os", lambda c: []),
    _ucall("sklearn.base", "os", lambda c: []),
    _ucall("sklearn.base", "__builtins__", lambda c: []),
    _ucall("sklearn.base", "BaseEstimator.__init__.__globals__", lambda c: []),
    _ucall("sklearn.metrics.pairwise", "np", lambda c: []),
    _ucall("builtins", "str.__class__", lambda c: []),
    _ucall("numpy", "lib", lambda c: []),
    _ucall("sklearn.utils._testing", "TempMemmap", lambda c: [], watch=("sklearn.utils._testing",)),
    _ucall("sklearn.datasets", "fetch_openml", lambda c: [T("x")], watch=("sklearn.datasets",)),
    _ucall(
        "sklearn.experimental.enable_iterative_imputer",
        "IterativeImputer",
        lambda c: [],
        watch=("sklearn.experimental",),
    ),
    _ucall("sklearn.utils._show_versions", "show_versions", lambda c: []),
    _ucall("sklearn.utils.discovery", "all_estimators", lambda c: []),
    _ucall("sklearn.utils.validation", "check_array", lambda c: [H.NONE]),
    _ucall(
        "sklearn.utils.estimator_checks",
        "check_estimator",
        lambda c: [H.NONE],
        watch=("sklearn.utils.estimator_checks", "sklearn.utils._testing", "sklearn.datasets"),
    ),
    _ucall("sklearn.base ", "BaseEstimator", lambda c: []),
    _ucall("", "eval", lambda c: [T(_py(c))]),
    _ucall("builtins", "", lambda c: []),
    _ucall("\u0455klearn.base", "BaseEstimator", lambda c: [], case_id="cyrillic-lookalike-module"),
    _ucall("sklearn..base", "BaseEstimator", lambda c: []),
    _ucall("os/system", "x", lambda c: []),
    _ucall("builtins", "eval\n", lambda c: [T(_py(c))]),
    # 5. modules whose import runs code: checked before any import
    _ucall("antigravity", "x", lambda c: [], watch=("antigravity", "webbrowser")),
    _ucall("this", "s", lambda c: [], watch=("this",)),
    _ucall("__hello__", "main", lambda c: [], watch=("__hello__",)),
    _ucall("__phello__", "spam", lambda c: [], watch=("__phello__",)),
]


def _hidden(
    case_id: str,
    graph: Callable[[str], bytes],
    names: tuple[tuple[str, str], ...],
    expect: tuple[type[BaseException], ...] = (UntrustedTypeError,),
) -> Case:
    return Case(case_id, lambda c: H.container(graph(c), [np.arange(3.0)]), expect, names)


def _root(fragment: bytes) -> bytes:
    """A stream whose root is ``[fragment's object, array 0]``: the object stays reachable."""
    return H.stream(H.EMPTY_LIST, H.MARK, fragment, H.integer(0), b"Q", H.APPENDS)


def _tail(*parts: bytes) -> bytes:
    """Leave a benign root that uses array 0, after the parts, and stop."""
    return b"".join(parts) + H.EMPTY_LIST + H.integer(0) + b"Q" + H.APPEND + H.STOP


# 6-7. Calls hidden from a static scan; names built at run time; payload-first streams.
STREAM_CASES = [
    _hidden(
        "OBJ-then-POP",
        lambda c: (
            b"\x80\x02" + _tail(H.MARK + H.global_op("os", "system") + T(touch(c)) + H.OBJ + H.POP)
        ),
        (("os", "system"),),
    ),
    _hidden(
        "INST-then-POP",
        lambda c: b"\x80\x02" + _tail(H.MARK + T(touch(c)) + b"ios\nsystem\n" + H.POP),
        (("os", "system"),),
    ),
    _hidden(
        "NEWOBJ-subprocess.Popen-then-POP",
        lambda c: (
            H.PROTO5
            + _tail(
                SG("subprocess", "Popen")
                + H.MARK
                + _str_list("touch", c)
                + H.TUPLE
                + H.NEWOBJ
                + H.POP
            )
        ),
        (("subprocess", "Popen"),),
    ),
    _hidden(
        "NEWOBJ_EX-with-kwargs-then-POP",
        lambda c: (
            H.PROTO5
            + _tail(
                SG("subprocess", "Popen")
                + H.MARK
                + _str_list("touch", c)
                + H.TUPLE
                + H.EMPTY_DICT
                + H.NEWOBJ_EX
                + H.POP
            )
        ),
        (("subprocess", "Popen"),),
    ),
    _hidden(
        "REDUCE-under-POP_MARK",
        lambda c: H.PROTO5 + _tail(H.MARK + H.shell(touch(c)) + H.POP_MARK),
        (("os", "system"),),
    ),
    _hidden(
        "payload-in-BUILD-state-of-allowed-object",
        lambda c: (
            H.PROTO5
            + _tail(
                H.call(SG("collections", "OrderedDict"))
                + H.EMPTY_DICT
                + T("x")
                + H.shell(touch(c))
                + H.SETITEM
                + H.BUILD
                + H.POP
            )
        ),
        (("os", "system"),),
    ),
    _hidden(
        "payload-as-argument-of-allowed-class",
        lambda c: (
            H.PROTO5 + _tail(H.call(SG("collections", "OrderedDict"), H.shell(touch(c))) + H.POP)
        ),
        (("os", "system"),),
    ),
    _hidden(
        "payload-deep-in-dict-in-list",
        lambda c: (
            H.PROTO5
            + _tail(
                H.EMPTY_LIST
                + H.EMPTY_DICT
                + T("k")
                + H.EMPTY_LIST
                + H.shell(touch(c))
                + H.APPEND
                + H.SETITEM
                + H.APPEND
                + H.POP
            )
        ),
        (("os", "system"),),
    ),
    _hidden(
        "callable-memoized-then-called-via-GET",
        lambda c: (
            H.PROTO5
            + _tail(
                SG("os", "system")
                + H.MEMOIZE
                + H.POP
                + H.NONE
                + H.POP
                + H.get(0)
                + H.MARK
                + T(touch(c))
                + H.TUPLE
                + H.REDUCE
                + H.POP
            )
        ),
        (("os", "system"),),
    ),
    _hidden(
        "STACK_GLOBAL-names-from-memo",
        lambda c: (
            H.PROTO5
            + _tail(
                T("os")
                + H.MEMOIZE
                + H.POP
                + T("system")
                + H.MEMOIZE
                + H.POP
                + H.get(0)
                + H.get(1)
                + H.STACK_GLOBAL
                + H.MARK
                + T(touch(c))
                + H.TUPLE
                + H.REDUCE
                + H.POP
            )
        ),
        (("os", "system"),),
    ),
    _hidden(
        "STACK_GLOBAL-names-built-at-run-time-by-builtins.str",
        lambda c: (
            H.PROTO5
            + _tail(
                H.call(SG("builtins", "str"), T("os"))
                + H.call(SG("builtins", "str"), T("system"))
                + H.STACK_GLOBAL
                + H.MARK
                + T(touch(c))
                + H.TUPLE
                + H.REDUCE
                + H.POP
            )
        ),
        (),
        (IntegrityError,),
    ),
    _hidden(
        "STACK_GLOBAL-name-from-persistent-id",
        lambda c: H.PROTO5 + _tail(T("os") + H.integer(0) + b"Q" + H.STACK_GLOBAL + H.POP),
        (),
        (IntegrityError,),
    ),
    _hidden(
        "EXT1-extension-registry",
        lambda c: H.PROTO5 + _tail(b"\x82\x01" + H.POP),
        (),
        (IntegrityError,),
    ),
    _hidden(
        "EXT2-extension-registry",
        lambda c: H.PROTO5 + _tail(b"\x83\x01\x01" + H.POP),
        (),
        (IntegrityError,),
    ),
    _hidden(
        "EXT4-extension-registry",
        lambda c: H.PROTO5 + _tail(b"\x84\xff\xff\xff\x7f" + H.POP),
        (),
        (IntegrityError,),
    ),
    _hidden(
        "payload-first-then-stream-ends-without-STOP",
        lambda c: H.PROTO5 + H.shell(touch(c)),
        (),
        (IntegrityError,),
    ),
    _hidden(
        "payload-first-then-invalid-opcode",
        lambda c: H.PROTO5 + H.shell(touch(c)) + b"\xff" + H.STOP,
        (),
        (IntegrityError,),
    ),
    _hidden(
        "payload-after-STOP",
        lambda c: H.PROTO5 + _tail() + H.PROTO5 + H.shell(touch(c)) + H.STOP,
        (),
        (IntegrityError,),
    ),
    _hidden(
        "pickle-protocol-6",
        lambda c: b"\x80\x06" + _tail(H.shell(touch(c)) + H.POP),
        (),
        (IntegrityError,),
    ),
    _hidden(
        "BUILD-on-an-allowed-class-object (class attribute tampering)",
        lambda c: (
            H.PROTO5
            + _tail(
                SG("collections", "Counter")
                + H.NONE
                + H.EMPTY_DICT
                + T("most_common")
                + SG("builtins", "str")
                + H.SETITEM
                + H.TUPLE2
                + H.BUILD
                + H.POP
            )
        ),
        (),
        (IntegrityError,),
    ),
    Case(
        "PERSID-with-a-string-id",
        lambda c: H.container(H.PROTO5 + _tail(b"P0\n" + H.POP), [np.arange(3.0)]),
        (FormatError,),
    ),
    Case(
        "BINPERSID-out-of-range",
        lambda c: H.container(H.PROTO5 + _tail(H.integer(7) + b"Q" + H.POP), [np.arange(3.0)]),
        (FormatError,),
    ),
    Case(
        "BINPERSID-negative",
        lambda c: H.container(H.PROTO5 + _tail(H.integer(-1) + b"Q" + H.POP), [np.arange(3.0)]),
        (FormatError,),
    ),
    Case(
        "BINPERSID-tuple-id",
        lambda c: H.container(
            H.PROTO5 + _tail(H.integer(0) + H.TUPLE1 + b"Q" + H.POP), [np.arange(3.0)]
        ),
        (FormatError,),
    ),
    Case(
        "manifest-array-never-used-by-graph",
        lambda c: H.container(H.stream(H.shell(touch(c))), [np.arange(3.0)]),
        (IntegrityError,),
    ),
    Case(
        "globals-list-omits-os.system",
        lambda c: H.container(with_array(H.shell(touch(c))), [np.arange(3.0)], globals_=[]),
        (IntegrityError,),
    ),
    Case(
        "globals-list-shows-a-benign-name-instead",
        lambda c: H.container(
            with_array(H.shell(touch(c))),
            [np.arange(3.0)],
            globals_=[["collections", "OrderedDict"]],
        ),
        (IntegrityError,),
    ),
    Case(
        "globals-list-adds-an-extra-name",
        lambda c: H.container(
            with_array(H.shell(touch(c))),
            [np.arange(3.0)],
            globals_=[["os", "system"], ["builtins", "str"]],
        ),
        (IntegrityError,),
    ),
    Case(
        "globals-entry-malformed",
        edit(armed_file, lambda m: m.update(globals=[["os"]])),
        (FormatError,),
    ),
    Case(
        "globals-not-a-list",
        edit(armed_file, lambda m: m.update(globals={"os": "system"})),
        (FormatError,),
    ),
]

# devpersist's own reconstructors and the numpy helpers, misused.
RECONSTRUCTOR_CASES = [
    _hidden(
        "_namespace_module('os')",
        lambda c: (
            H.PROTO5 + _tail(H.call(SG("devpersist._graph", "_namespace_module"), T("os")) + H.POP)
        ),
        (),
        (FormatError,),
    ),
    _hidden(
        "_object_array-negative-shape",
        lambda c: (
            H.PROTO5
            + _tail(
                H.call(
                    SG("devpersist._graph", "_object_array"),
                    H.EMPTY_LIST,
                    H.MARK + H.integer(-1) + H.TUPLE,
                )
                + H.POP
            )
        ),
        (),
        (FormatError,),
    ),
    _hidden(
        "_object_array-count-mismatch",
        lambda c: (
            H.PROTO5
            + _tail(
                H.call(
                    SG("devpersist._graph", "_object_array"),
                    H.EMPTY_LIST,
                    H.MARK + H.integer(10**6) + H.TUPLE,
                )
                + H.POP
            )
        ),
        (),
        (FormatError,),
    ),
    _hidden(
        "numpy-scalar-of-object-dtype",
        lambda c: (
            H.PROTO5
            + _tail(
                H.call(
                    SG("numpy._core.multiarray", "scalar"),
                    H.call(SG("numpy", "dtype"), T("O")),
                    H.binbytes(b"x" * 8),
                )
                + H.POP
            )
        ),
        (),
        (UntrustedTypeError,),
    ),
    _hidden(
        "numpy-scalar-payload-size-mismatch",
        lambda c: (
            H.PROTO5
            + _tail(
                H.call(
                    SG("numpy._core.multiarray", "scalar"),
                    H.call(SG("numpy", "dtype"), T("f8")),
                    H.binbytes(b"x" * 3),
                )
                + H.POP
            )
        ),
        (),
        (UntrustedTypeError,),
    ),
    _hidden(
        "bit-generator-named-os.system",
        lambda c: (
            H.PROTO5
            + _tail(
                H.call(SG("numpy.random._pickle", "__bit_generator_ctor"), T("os.system")) + H.POP
            )
        ),
        (),
        (UntrustedTypeError,),
    ),
]

# 8. Header and trailer fields.
_CAP = 64 * 2**20
CONTAINER_CASES = [
    Case(
        "header-bad-magic",
        lambda c: H.with_header(armed_file(c), magic=b"\x89DVQ\r\n\x1a\n"),
        (NotDevpersistError,),
    ),
    Case(
        "header-version-2",
        lambda c: H.with_header(armed_file(c), version=2),
        (UnsupportedFormatVersionError,),
    ),
    Case(
        "header-version-max-u32",
        lambda c: H.with_header(armed_file(c), version=2**32 - 1),
        (UnsupportedFormatVersionError,),
    ),
    Case("header-version-0", lambda c: H.with_header(armed_file(c), version=0), (IntegrityError,)),
    Case("header-flags-set", lambda c: H.with_header(armed_file(c), flags=1), (IntegrityError,)),
    Case(
        "trailer-version-differs-from-header",
        lambda c: H.with_trailer(armed_file(c), version=2),
        (IntegrityError,),
    ),
    Case(
        "trailer-end-magic",
        lambda c: H.with_trailer(armed_file(c), end=b"DVP1END\r"),
        (IntegrityError,),
    ),
    Case(
        "trailer-reserved-set",
        lambda c: H.with_trailer(armed_file(c), reserved=1),
        (IntegrityError,),
    ),
    Case(
        "manifest-length-past-the-file",
        lambda c: H.with_trailer(armed_file(c), length=len(armed_file(c))),
        (IntegrityError,),
    ),
    Case(
        "manifest-length-past-the-cap",
        lambda c: H.with_trailer(armed_file(c), length=_CAP + 1),
        (ResourceLimitError,),
    ),
    Case(
        "manifest-length-u64-max",
        lambda c: H.with_trailer(armed_file(c), length=2**64 - 1),
        (ResourceLimitError,),
    ),
    Case(
        "manifest-offset-u64-max",
        lambda c: H.with_trailer(armed_file(c), offset=2**64 - 64),
        (IntegrityError,),
    ),
    Case(
        "manifest-offset-plus-length-wraps-to-file-size",
        lambda c: H.with_trailer(
            armed_file(c), offset=2**64 - 64, length=len(armed_file(c)) - 40 + 64
        ),
        (IntegrityError,),
    ),
    Case("manifest-offset-0", lambda c: H.with_trailer(armed_file(c), offset=0), (IntegrityError,)),
    Case(
        "manifest-offset-unaligned",
        lambda c: H.with_trailer(
            armed_file(c),
            offset=H.parse(armed_file(c)).manifest_offset + 1,
            length=H.parse(armed_file(c)).manifest_length - 1,
        ),
        (IntegrityError,),
    ),
    Case(
        "manifest-checksum-mismatch",
        lambda c: H.with_trailer(
            armed_file(c), checksum=H.parse(armed_file(c)).manifest_checksum ^ 1
        ),
        (IntegrityError,),
    ),
    Case("one-byte-appended", lambda c: armed_file(c) + b"\x00", (IntegrityError,)),
    Case("64-zero-bytes-appended", lambda c: armed_file(c) + bytes(64), (IntegrityError,)),
    Case("a-second-file-appended", lambda c: armed_file(c) + armed_file(c), (IntegrityError,)),
    Case("a-zip-appended (polyglot)", lambda c: armed_file(c) + _zip_bytes(), (IntegrityError,)),
    Case("one-byte-prepended", lambda c: b"\x00" + armed_file(c), (NotDevpersistError,)),
    Case(
        "file-truncated-inside-a-payload-first-graph",
        lambda c: armed_file(c)[: H.parse(armed_file(c)).manifest["graph"]["offset"] + 60],
        (IntegrityError,),
    ),
    Case("header-only", lambda c: armed_file(c)[:16], (IntegrityError,)),
    Case("magic-only", lambda c: armed_file(c)[:8], (IntegrityError,)),
    Case(
        "non-zero-padding-after-header",
        lambda c: H.patch(armed_file(c), 20, b"\x01"),
        (IntegrityError,),
    ),
    Case(
        "non-zero-padding-after-graph",
        lambda c: H.patch(
            armed_file(c), H.parse(armed_file(c)).manifest["arrays"][0]["offset"] - 1, b"\x01"
        ),
        (IntegrityError,),
    ),
    Case(
        "graph-checksum-mismatch",
        lambda c: H.flip(armed_file(c), H.parse(armed_file(c)).manifest["graph"]["offset"] + 5),
        (IntegrityError,),
    ),
    Case(
        "array-checksum-mismatch",
        lambda c: H.flip(plain_file(c), H.parse(plain_file(c)).manifest["arrays"][0]["offset"]),
        (IntegrityError,),
    ),
    Case(
        "devpersist-magic-then-a-pickle",
        lambda c: (
            H.with_header(bytes(16), magic=b"\x89DVP\r\n\x1a\n", version=1, flags=0)
            + bytes(48)
            + _pickle_payload(c)
            + bytes(64)
        ),
        (IntegrityError,),
    ),
]


def _zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("data.pkl", pickle.dumps({"a": 1}))
    return buf.getvalue()


def _deep_json(depth: int) -> Callable[[str], bytes]:
    def make(c: str) -> bytes:
        data = armed_file(c)
        raw = H.encode_manifest(H.parse(data).manifest)
        return H.with_manifest(
            data, raw=raw[:-1] + b',"object":{"x":' + b"[" * depth + b"]" * depth + b"}}"
        )

    return make


def _raw_manifest(transform: Callable[[bytes], bytes]) -> Callable[[str], bytes]:
    def make(c: str) -> bytes:
        data = armed_file(c)
        return H.with_manifest(data, raw=transform(H.encode_manifest(H.parse(data).manifest)))

    return make


# 9. The manifest: encoding, JSON, types, unknown fields, trust lists inside the file.
MANIFEST_CASES = [
    Case("manifest-not-utf8", _raw_manifest(lambda raw: b"\xff\xfe" + raw), (FormatError,)),
    Case(
        "manifest-latin1-byte-inside-a-string",
        _raw_manifest(lambda raw: raw.replace(b'"cpu"', b'"cp\xe9"', 1)),
        (FormatError,),
    ),
    Case("manifest-not-json", _raw_manifest(lambda raw: raw[:-1]), (FormatError,)),
    Case("manifest-json-array", _raw_manifest(lambda raw: b"[" + raw + b"]"), (FormatError,)),
    Case("manifest-json-string", _raw_manifest(lambda raw: b'"x"'), (FormatError,)),
    Case("manifest-json-null", _raw_manifest(lambda raw: b"null"), (FormatError,)),
    Case("manifest-utf8-bom", _raw_manifest(lambda raw: b"\xef\xbb\xbf" + raw), (FormatError,)),
    Case("manifest-leading-whitespace", _raw_manifest(lambda raw: b" \n" + raw), (FormatError,)),
    Case(
        "manifest-duplicate-top-level-key",
        _raw_manifest(lambda raw: raw[:-1] + b',"globals":[]}'),
        (FormatError,),
    ),
    Case(
        "manifest-duplicate-key-in-graph-entry",
        _raw_manifest(lambda raw: raw.replace(b'"graph":{', b'"graph":{"offset":0,', 1)),
        (FormatError,),
    ),
    Case(
        "manifest-NaN",
        _raw_manifest(lambda raw: raw[:-1] + b',"object":{"x":NaN}}'),
        (FormatError,),
    ),
    Case(
        "manifest-Infinity",
        _raw_manifest(lambda raw: raw.replace(b'"alignment":64', b'"alignment":Infinity')),
        (FormatError,),
    ),
    Case("manifest-100k-nested-arrays", _deep_json(100_000), (FormatError, ResourceLimitError)),
    Case(
        "manifest-5000-digit-integer",
        _raw_manifest(lambda raw: raw.replace(b'"alignment":64', b'"alignment":' + b"6" * 5000)),
        (FormatError,),
    ),
    Case(
        "manifest-unknown-top-level-field",
        edit(armed_file, lambda m: m.update(extra=1)),
        (FormatError,),
    ),
    Case(
        "manifest-unknown-array-field",
        edit(armed_file, array0(setter(pickled=True))),
        (FormatError,),
    ),
    Case(
        "manifest-unknown-meta-field",
        edit(armed_file, array0(setter(meta={"trusted": True}))),
        (FormatError,),
    ),
    Case(
        "manifest-format-version-differs",
        edit(armed_file, lambda m: m.update(format_version=2)),
        (IntegrityError,),
    ),
    Case(
        "manifest-format-version-string",
        edit(armed_file, lambda m: m.update(format_version="1")),
        (FormatError,),
    ),
    Case(
        "manifest-alignment-32", edit(armed_file, lambda m: m.update(alignment=32)), (FormatError,)
    ),
    Case(
        "manifest-arrays-not-a-list",
        edit(armed_file, lambda m: m.update(arrays={})),
        (FormatError,),
    ),
    Case(
        "manifest-graph-offset-a-string",
        edit(armed_file, lambda m: m["graph"].update(offset="64")),
        (FormatError,),
    ),
    Case(
        "manifest-graph-offset-true",
        edit(armed_file, lambda m: m["graph"].update(offset=True)),
        (FormatError,),
    ),
    Case(
        "manifest-graph-offset-float",
        edit(armed_file, lambda m: m["graph"].update(offset=64.0)),
        (FormatError,),
    ),
    Case(
        "manifest-malformed-checksum",
        edit(armed_file, lambda m: m["graph"].update(checksum="md5:00")),
        (FormatError,),
    ),
    Case(
        "manifest-environment-version-5000-digits",
        edit(
            armed_file,
            lambda m: m.update(
                environment={"python": "3." + "9" * 5000, "packages": {"numpy": "9" * 5000}}
            ),
        ),
        (FormatError,),
    ),
    Case(
        "manifest-environment-unknown-field",
        edit(armed_file, lambda m: m.update(environment={"trusted": ["os.system"]})),
        (FormatError,),
    ),
    # 16. a trust list inside the file is never read
    Case(
        "trust-list-as-a-top-level-key",
        edit(armed_file, lambda m: m.update(trusted=["os.system"])),
        (FormatError,),
    ),
    Case(
        "trust-list-inside-config",
        edit(armed_file, lambda m: m.update(config={"trusted": ["os.system"]})),
        (FormatError,),
    ),
    Case(
        "trust-list-as-a-sklearn-config-value",
        lambda c: armed_file(c, config={"sklearn": {"trusted": "os.system"}}),
        (UntrustedTypeError,),
        (("os", "system"),),
    ),
    Case(
        "trust-list-inside-object-description",  # unknown keys: refused while parsing
        lambda c: armed_file(c, object={"type": "x", "trusted": ["os.system"]}),
        (FormatError,),
    ),
    Case(
        "config-asks-for-array-api-dispatch (no global change for a rejected file)",
        lambda c: armed_file(c, config={"sklearn": {"array_api_dispatch": True}}),
        (UntrustedTypeError,),
        (("os", "system"),),
        quiet=True,
    ),
]

# 10. Offsets: negative, overlapping, out of order, holes, past the end.
OFFSET_CASES = [
    Case(
        "graph-offset-negative",
        edit(armed_file, lambda m: m["graph"].update(offset=-64)),
        (IntegrityError,),
    ),
    Case(
        "graph-offset-0 (overlaps the header)",
        edit(armed_file, lambda m: m["graph"].update(offset=0)),
        (IntegrityError,),
    ),
    Case(
        "graph-length-negative",
        edit(armed_file, lambda m: m["graph"].update(length=-1)),
        (IntegrityError,),
    ),
    Case(
        "graph-length-runs-into-the-array",
        edit(armed_file, lambda m: m["graph"].update(length=m["graph"]["length"] + 64)),
        (IntegrityError,),
    ),
    Case(
        "arrays-overlap",
        edit(two_array_file, lambda m: m["arrays"][1].update(offset=m["arrays"][0]["offset"])),
        (IntegrityError,),
    ),
    Case(
        "arrays-out-of-order",
        edit(two_array_file, lambda m: m.update(arrays=[m["arrays"][1], m["arrays"][0]])),
        (IntegrityError,),
    ),
    Case(
        "array-after-a-hole",
        edit(armed_file, array0(lambda e: e.update(offset=e["offset"] + 64))),
        (IntegrityError,),
    ),
    Case("array-offset-negative", edit(armed_file, array0(setter(offset=-128))), (IntegrityError,)),
    Case(
        "array-offset-past-the-file",
        edit(armed_file, array0(setter(offset=2**62))),
        (IntegrityError,),
    ),
    Case("array-length-negative", edit(armed_file, array0(setter(length=-24))), (IntegrityError,)),
]


def _zero_size(shape: list[int]) -> Callable[[str], bytes]:
    def make(c: str) -> bytes:
        blob = H.raw_blob({"dtype": "<f8", "shape": shape}, b"")
        return H.container(with_array(), [blob])

    return make


def _codec(meta: dict[str, Any], data: bytes) -> Callable[[str], bytes]:
    def make(c: str) -> bytes:
        return H.container(with_array(), [H.raw_blob(meta, data)])

    return make


# 11-14. Shapes, dtypes, declared sizes, codecs.
ARRAY_CASES = [
    Case(
        "shape-disagrees-with-length",
        edit(armed_file, array0(setter(shape=[4]))),
        (IntegrityError,),
    ),
    Case(
        "shape-product-overflows-int64",
        edit(armed_file, array0(setter(shape=[2**63, 2**63]))),
        (FormatError,),
    ),
    Case(
        "shape-times-itemsize-wraps-u64",
        edit(armed_file, array0(setter(shape=[2**61 + 3]))),
        (FormatError,),
    ),
    Case("shape-negative", edit(armed_file, array0(setter(shape=[-3]))), (FormatError,)),
    Case("shape-float", edit(armed_file, array0(setter(shape=[3.0]))), (FormatError,)),
    Case("shape-bool", edit(armed_file, array0(setter(shape=[True, 3]))), (FormatError,)),
    Case("shape-65-dims", edit(armed_file, array0(setter(shape=[1] * 64 + [3]))), (FormatError,)),
    Case(
        "shape-zero-size-but-a-2**70-dimension",
        _zero_size([0, 2**70]),
        (FormatError, ResourceLimitError),
    ),
    Case(
        "shape-zero-size-but-2**62-x-2**62",
        _zero_size([0, 2**62, 2**62]),
        (FormatError, ResourceLimitError),
    ),
    Case("dtype-object", edit(armed_file, array0(setter(dtype="|O"))), (FormatError,)),
    Case("dtype-object-O8", edit(armed_file, array0(setter(dtype="O8"))), (FormatError,)),
    Case(
        "dtype-structured-with-object-field",
        edit(armed_file, array0(setter(dtype=[["a", "|O"], ["b", "<f8"]], shape=[1]))),
        (FormatError,),
    ),
    Case(
        "dtype-nested-structured-with-object-field",
        edit(armed_file, array0(setter(dtype=[["a", [["b", "|O"]]], ["c", "<u8"]], shape=[1]))),
        (FormatError,),
    ),
    Case("dtype-unknown", edit(armed_file, array0(setter(dtype="<x8"))), (FormatError,)),
    Case(
        "dtype-numpy-string-with-code",
        edit(armed_file, array0(setter(dtype="f8,O"))),
        (FormatError,),
    ),
    Case(
        "dtype-a-json-object",
        edit(armed_file, array0(setter(dtype={"descr": "|O"}))),
        (FormatError,),
    ),
    Case(
        "dtype-structured-20-levels-deep",
        edit(
            armed_file,
            array0(
                setter(dtype=functools.reduce(lambda d, _: [["a", d]], range(20), "<f8"), shape=[3])
            ),
        ),
        (FormatError,),
    ),
    Case(
        "dtype-subarray-of-2**62-elements",
        edit(armed_file, array0(setter(dtype=[["a", "<f8", [2**62]]], shape=[0], length=0))),
        (FormatError,),
    ),
    Case(
        "dtype-datetime-bogus-unit",
        edit(armed_file, array0(setter(dtype="<M8[xx]"))),
        (FormatError,),
    ),
    Case("codec-unknown", edit(armed_file, array0(setter(codec="bz2"))), (FormatError,)),
    Case(
        "codec-declares-8-TiB-of-output",
        _codec({"dtype": "<f8", "shape": [2**40], "codec": "zlib"}, zlib.compress(bytes(64))),
        (IntegrityError, ResourceLimitError),
    ),
    Case(
        "codec-decompression-bomb (10 MB of zeros declared as 128 bytes)",
        _codec({"dtype": "<f8", "shape": [16], "codec": "zlib"}, zlib.compress(bytes(10**7), 9)),
        (IntegrityError,),
    ),
    Case(
        "codec-data-is-not-compressed",
        _codec({"dtype": "<f8", "shape": [16], "codec": "zlib"}, bytes(128)),
        (IntegrityError,),
    ),
    Case(
        "array-namespace-unknown", edit(plain_file, array0(setter(namespace="os"))), (FormatError,)
    ),
]

# 15. Deep nesting and memo expansion.
RESOURCE_CASES = [
    _hidden("100k-nested-lists", lambda c: _root(H.deep_lists(100_000)), (), (ResourceLimitError,)),
    _hidden(
        "100k-nested-tuples", lambda c: _root(H.deep_tuples(100_000)), (), (ResourceLimitError,)
    ),
    _hidden("100k-nested-dicts", lambda c: _root(H.deep_dicts(100_000)), (), (ResourceLimitError,)),
    _hidden(
        "100k-nested-calls-of-builtins.str",
        lambda c: _root(H.deep_calls("builtins", "str", 100_000)),
        (),
        (ResourceLimitError,),
    ),
    _hidden(
        "2000-nested-lists (just past any sane depth)",
        lambda c: _root(H.deep_lists(2000)),
        (),
        (ResourceLimitError,),
    ),
    _hidden(
        "billion-laughs-30-levels-x10 (10**30 leaves from 700 bytes)",
        lambda c: (
            H.PROTO5 + H.nested_lists(30, 10) + H.MARK + H.integer(0) + b"Q" + H.APPENDS + H.STOP
        ),
        (),
        (ResourceLimitError,),
    ),
    _hidden(
        "billion-laughs-expanded-by-builtins.str (10**7 leaves -> 42 MB string)",
        lambda c: H.PROTO5 + _tail(H.call(SG("builtins", "str"), H.nested_lists(7, 10)) + H.POP),
        (),
        (ResourceLimitError, UntrustedTypeError),
    ),
    _hidden(
        "billion-laughs-expanded-by-numpy.sum",
        lambda c: H.PROTO5 + _tail(H.call(SG("numpy", "sum"), H.nested_lists(6, 10)) + H.POP),
        (),
        (ResourceLimitError, UntrustedTypeError),
    ),
    _hidden(
        "calls-what-an-allowed-constructor-returned",
        lambda c: (
            H.PROTO5
            + _tail(
                H.call(H.call(SG("numpy.random._pickle", "__bit_generator_ctor"), T("MT19937")))
                + H.POP
            )
        ),
        (),
        (UntrustedTypeError,),
    ),
    _hidden(
        "modifies-a-shared-namespace-module",
        lambda c: (
            H.PROTO5
            + _tail(
                H.call(SG("devpersist._graph", "_namespace_module"), T("numpy"))
                + H.EMPTY_DICT
                + b"b"
                + H.POP
            )
        ),
        (),
        (UntrustedTypeError,),
    ),
    _hidden(
        "3000-deep-chain-behind-a-shallow-shared-root",
        lambda c: _root(H.chain_behind_shared_root(3000)),
        (),
        (ResourceLimitError,),
    ),
    _hidden(
        "BYTEARRAY8-of-2**62-bytes",
        lambda c: H.PROTO5 + _tail(b"\x96" + struct.pack("<Q", 2**62) + H.POP),
        (),
        (ResourceLimitError, IntegrityError),
    ),
    _hidden(
        "BINBYTES8-of-2**62-bytes",
        lambda c: H.PROTO5 + _tail(b"\x8e" + struct.pack("<Q", 2**62) + H.POP),
        (),
        (ResourceLimitError, IntegrityError),
    ),
    _hidden(
        "BINUNICODE8-of-2**62-bytes",
        lambda c: H.PROTO5 + _tail(b"\x8d" + struct.pack("<Q", 2**62) + H.POP),
        (),
        (ResourceLimitError, IntegrityError),
    ),
    _hidden(
        "FRAME-of-2**62-bytes",
        lambda c: H.PROTO5 + b"\x95" + struct.pack("<Q", 2**62) + _tail(),
        (),
        (ResourceLimitError, IntegrityError),
    ),
    _hidden(
        "LONG4-of-2**31-bytes",
        lambda c: H.PROTO5 + _tail(b"\x8b" + struct.pack("<i", 2**31 - 1) + H.POP),
        (),
        (ResourceLimitError, IntegrityError),
    ),
    _hidden(
        "fractions.Fraction('1e2000000') (CPU: grows as n**1.6)",
        lambda c: H.PROTO5 + _tail(H.call(SG("fractions", "Fraction"), T("1e2000000")) + H.POP),
        (),
        (ResourceLimitError, UntrustedTypeError),
    ),
    _hidden(
        "numpy.void(2**31 - 1) (2 GiB from a sized constructor)",
        lambda c: H.PROTO5 + _tail(H.call(SG("numpy", "void"), H.integer(2**31 - 1)) + H.POP),
        (),
        (ResourceLimitError, UntrustedTypeError),
    ),
]


def _callback_listener(c: str) -> bytes:
    handle = H.call(
        SG("sklearn.callback._transport", "ListenerHandle"),
        T(c + ".sock"),
        H.binbytes(b"attacker-key"),
    )
    monitor = (
        SG("sklearn.callback._scoring_monitor", "ScoringMonitor")
        + H.EMPTY_TUPLE
        + H.NEWOBJ
        + H.EMPTY_DICT
        + H.MARK
        + T("_listener_handle")
        + handle
        + T("_log")
        + H.EMPTY_LIST
        + T("_scoring")
        + H.NONE
        + H.SETITEMS
        + H.BUILD
    )
    return H.container(H.PROTO5 + _tail(monitor + H.POP), [np.arange(3.0)])


# Allowed names whose objects do more than data: found by this review.
SIDE_EFFECT_CASES = [
    Case(
        "sklearn.callback.ScoringMonitor.__setstate__ connects to a file-chosen socket",
        _callback_listener,
        (UntrustedTypeError,),
        (("sklearn.callback._scoring_monitor", "ScoringMonitor"),),
    ),
    _hidden(
        "_namespace_module('numpy') then BUILD: writes into numpy's namespace",
        lambda c: (
            H.PROTO5
            + _tail(
                H.call(SG("devpersist._graph", "_namespace_module"), T("numpy"))
                + H.EMPTY_DICT
                + T("DVP_TAMPERED")
                + SG("builtins", "str")
                + H.SETITEM
                + H.BUILD
                + H.POP
            )
        ),
        (),
        (UntrustedTypeError, IntegrityError, FormatError),
    ),
    _hidden(
        "sklearn.metrics.pairwise.distance_metrics() then SETITEM: rewires 'euclidean'",
        lambda c: (
            H.PROTO5
            + _tail(
                H.call(SG("sklearn.metrics.pairwise", "distance_metrics"))
                + T("euclidean")
                + SG("builtins", "str")
                + H.SETITEM
                + H.POP
            )
        ),
        (),
        (UntrustedTypeError, IntegrityError, FormatError),
    ),
    _hidden(
        "sklearn.metrics.pairwise.kernel_metrics() then SETITEM: rewires 'rbf'",
        lambda c: (
            H.PROTO5
            + _tail(
                H.call(SG("sklearn.metrics.pairwise", "kernel_metrics"))
                + T("rbf")
                + SG("builtins", "str")
                + H.SETITEM
                + H.POP
            )
        ),
        (),
        (UntrustedTypeError, IntegrityError, FormatError),
    ),
]


# 17. Inconsistent estimator state that native code would trust.
def _tree_nodes(change: Callable[[np.ndarray], None]) -> Callable[[str], bytes]:
    def make(c: str) -> bytes:
        data = tree_file()
        index = H.array_index(data, lambda e: "left_child" in json.dumps(e["dtype"]))
        return H.edit_array(data, index, change)

    return make


def _inner(nodes: np.ndarray) -> np.ndarray:
    return np.nonzero(nodes["left_child"] != -1)[0]


def _set_child(
    field: str, value: Callable[[np.ndarray, int], int], which: int = 0
) -> Callable[[np.ndarray], None]:
    def change(nodes: np.ndarray) -> None:
        node = _inner(nodes)[which]
        nodes[field][node] = value(nodes, node)

    return change


def _leaf_with_a_child(nodes: np.ndarray) -> None:
    leaf = np.nonzero(nodes["left_child"] == -1)[0][0]
    nodes["right_child"][leaf] = len(nodes) - 1  # a valid index: only the pairing is wrong


def _self_loops(nodes: np.ndarray) -> None:
    for node in _inner(nodes)[1:]:
        nodes["left_child"][node] = node
        nodes["right_child"][node] = node


def _hgb_left_out_of_range(c: str) -> bytes:
    data = hgb_file()
    index = H.array_index(data, lambda e: '"left"' in json.dumps(e["dtype"]) and e["shape"][0] > 1)

    def change(nodes: np.ndarray) -> None:
        inner = np.nonzero(nodes["is_leaf"] == 0)[0]
        nodes["left"][inner[0]] = 10**9

    return H.edit_array(data, index, change)


TREE_CASES = [
    Case(
        "tree-child-index-equals-node-count",
        _tree_nodes(_set_child("left_child", lambda n, i: len(n))),
        (IntegrityError,),
    ),
    Case(
        "tree-child-index-2**40",
        _tree_nodes(_set_child("right_child", lambda n, i: 2**40)),
        (IntegrityError,),
    ),
    Case(
        "tree-child-index-negative-on-an-inner-node",
        _tree_nodes(_set_child("right_child", lambda n, i: -7)),
        (IntegrityError,),
    ),
    Case(
        "tree-child-points-to-the-root",
        _tree_nodes(_set_child("left_child", lambda n, i: 0, 1)),
        (IntegrityError,),
    ),
    Case(
        "tree-leaf-with-one-child (right child on a leaf)",
        _tree_nodes(_leaf_with_a_child),
        (IntegrityError,),
    ),
    Case(
        "tree-feature-index-out-of-range",
        _tree_nodes(_set_child("feature", lambda n, i: 5)),
        (IntegrityError,),
    ),
    Case(
        "tree-cycle (inner nodes are their own children: predict never returns)",
        _tree_nodes(_self_loops),
        (IntegrityError,),
    ),
    Case(
        "hist-gradient-boosting-child-index-out-of-range (predict segfaults)",
        _hgb_left_out_of_range,
        (IntegrityError,),
    ),
]


def _pickle_payload(c: str) -> bytes:
    return H.stream(H.shell(touch(c)))


def _joblib_payload(compress: int) -> Callable[[str], bytes]:
    def make(c: str) -> bytes:
        joblib = pytest.importorskip("joblib")

        class Payload:
            def __reduce__(self) -> Any:
                return os.system, (touch(c),)

        buf = io.BytesIO()
        joblib.dump(Payload(), buf, compress=compress)
        return buf.getvalue()

    return make


# 16. Never a fallback to plain pickle or to other loaders.
FOREIGN_CASES = [
    Case("plain-pickle-with-payload", _pickle_payload, (NotDevpersistError,)),
    Case("joblib-file-with-payload", _joblib_payload(0), (NotDevpersistError,)),
    Case("compressed-joblib-file-with-payload", _joblib_payload(3), (NotDevpersistError,)),
    Case(
        "zip-holding-a-pickle-with-payload (torch.save layout)",
        lambda c: _zip_of(_pickle_payload(c)),
        (NotDevpersistError,),
    ),
]


def _zip_of(data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", data)
    return buf.getvalue()


CASES = (
    CODE_CASES
    + NAME_CASES
    + STREAM_CASES
    + RECONSTRUCTOR_CASES
    + CONTAINER_CASES
    + MANIFEST_CASES
    + OFFSET_CASES
    + ARRAY_CASES
    + RESOURCE_CASES
    + SIDE_EFFECT_CASES
    + TREE_CASES
    + FOREIGN_CASES
)


def test_case_ids_are_unique_and_many():
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 20


# --------------------------------------------------------------------------- the main test


@pytest.mark.parametrize("via", ["bytes", "path"])
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_hostile_input_is_rejected_and_nothing_runs(case: Case, via: str, guard: Guard):
    data = case.make(guard.canary)
    guard.watching(*case.watch)
    try:
        with pytest.raises(DevpersistError) as info:
            loaded = guard.load(data, via=via, quiet=case.quiet)
            del loaded
        assert type(info.value) in case.expect, (
            f"expected {[e.__name__ for e in case.expect]}, got "
            f"{type(info.value).__name__}: {info.value}"
        )
        for module, name in case.untrusted:
            listed = info.value.untrusted  # type: ignore[attr-defined]
            assert f"{module}.{name}" in listed or repr((module, name)) in listed, listed
    finally:
        guard.verify()


@pytest.mark.parametrize(
    "case", [c for c in CASES if c.untrusted], ids=[c.id for c in CASES if c.untrusted]
)
def test_untrusted_names_are_reported_without_running_anything(case: Case, guard: Guard):
    """info() and get_untrusted_types() read such files without executing them."""
    data = case.make(guard.canary)
    guard.watching(*case.watch)
    try:
        manifest = guard.call(devpersist.info, data)
        assert manifest["file_size"] == len(data)
        listed = guard.call(devpersist.get_untrusted_types, data)
        for module, name in case.untrusted:
            assert f"{module}.{name}" in listed or repr((module, name)) in listed, listed
    finally:
        guard.verify()


# --------------------------------------------------------------------------- the detectors


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


# --------------------------------------------------------------------------- imports


FRESH_IMPORT_CASES = [c for c in CASES if c.watch]


def test_names_are_judged_before_anything_is_imported_in_a_fresh_interpreter(tmp_path: Path):
    """In a fresh process (nothing imported by other tests), rejected names import nothing
    from the watched modules: the verdict on a name comes before its import."""
    files = []
    watch: set[str] = set()
    for i, case in enumerate(FRESH_IMPORT_CASES):
        path = tmp_path / f"case{i}.dvp"
        path.write_bytes(case.make(str(tmp_path / TOKEN)))
        files.append((case.id, str(path), list(case.watch)))
        watch |= set(case.watch)
    script = textwrap.dedent(
        """
        import json, sys
        import devpersist, sklearn.base, sklearn.linear_model
        files = json.loads(sys.argv[1])
        report = {}
        for case_id, path, watch in files:
            before = set(sys.modules)
            try:
                devpersist.load(path)
                outcome = "loaded"
            except devpersist.DevpersistError as exc:
                outcome = type(exc).__name__
            new = sorted(m for m in set(sys.modules) - before
                         if any(m == w or m.startswith(w + ".") for w in watch))
            report[case_id] = [outcome, new]
        print(json.dumps(report))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "SCIPY_ARRAY_API"}
    proc = subprocess.run(
        [sys.executable, "-c", script, json.dumps(files)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    imported = {case_id: new for case_id, (outcome, new) in report.items() if new}
    loaded = [case_id for case_id, (outcome, _) in report.items() if outcome == "loaded"]
    assert not loaded
    assert not imported, f"rejected files imported watched modules: {imported}"
    assert not [p for p in tmp_path.iterdir() if p.name == TOKEN]


# --------------------------------------------------------------------------- trusted=


def _uuid_file() -> bytes:
    with pytest.warns(devpersist.UntrustedTypeWarning, match="uuid.UUID"):
        return devpersist.dumps({"id": uuid.UUID(int=7), "a": np.arange(3.0)})


def test_trusted_admits_exactly_the_names_given(guard: Guard):
    data = _uuid_file()
    with pytest.raises(UntrustedTypeError) as info:
        guard.load(data)
    assert info.value.untrusted == ["uuid.UUID"]
    for not_quite in (
        ["uuid"],
        ["uuid.UUI"],
        ["uuid.UUID.x"],
        ["UUID"],
        ["uuid.*"],
        [" uuid.UUID"],
        ["uuid.SafeUUID"],
    ):
        with pytest.raises(UntrustedTypeError):
            guard.load(data, trusted=not_quite)
    for spelling in (["uuid.UUID"], [uuid.UUID], "uuid.UUID", uuid.UUID, [("uuid", "UUID")]):
        loaded = guard.load(data, trusted=spelling)
        assert loaded["id"] == uuid.UUID(int=7)
    with pytest.raises(UntrustedTypeError):  # trust does not outlive the call
        guard.load(data)
    guard.verify()


def test_trusting_one_name_does_not_admit_a_payload_beside_it(guard: Guard):
    graph = H.stream(
        H.EMPTY_LIST,
        H.MARK,
        H.call(H.stack_global("uuid", "UUID"), H.text("0" * 32)),
        H.shell(touch(guard.canary)),
        H.integer(0),
        b"Q",
        H.APPENDS,
    )
    data = H.container(graph, [np.arange(3.0)])
    trusted = ["uuid.UUID", devpersist.dangerously_trust("os.getcwd", "os.system.x", "os")]
    for via in ("bytes", "path"):
        with pytest.raises(UntrustedTypeError) as info:
            guard.load(data, via=via, trusted=trusted)
        assert info.value.untrusted == ["os.system"]
    assert guard.call(devpersist.get_untrusted_types, data, trusted=["uuid.UUID"]) == ["os.system"]
    guard.verify()


def test_trusted_name_is_the_only_thing_that_runs(guard: Guard):
    """A trusted callable runs (that is what trust means) and nothing else does."""
    graph = H.stream(
        H.EMPTY_LIST, H.MARK, H.call(H.stack_global("os", "getcwd")), H.integer(0), b"Q", H.APPENDS
    )
    data = H.container(graph, [np.arange(3.0)])
    with pytest.raises(UntrustedTypeError):
        guard.load(data)
    with pytest.raises(devpersist.UnsafeTrustError):  # os.* is on the never list
        guard.load(data, trusted=["os.getcwd"])
    loaded = guard.load(data, trusted=[devpersist.dangerously_trust("os.getcwd")])
    assert loaded[0] == os.getcwd()
    guard.verify()


# --------------------------------------------------------------------------- sweeps


def _outcome(data: bytes, via: str = "bytes") -> str | None:
    """None when ``data`` is rejected with a devpersist error; else what happened."""
    try:
        if via == "bytes":
            devpersist.loads(data)
        else:
            devpersist.load(io.BytesIO(data))
    except DevpersistError:
        return None
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return "loaded"


@pytest.mark.parametrize("maker", [small_dict_file, ridge_file])
def test_every_bit_flip_is_detected(maker: Callable[[], bytes], guard: Guard):
    data = maker()
    assert _outcome(data) == "loaded"
    failures = []
    with armed() as events:
        for position in range(len(data)):
            for bit in range(8):
                mutated = bytearray(data)
                mutated[position] ^= 1 << bit
                outcome = _outcome(bytes(mutated))
                if outcome is not None:
                    failures.append((position, bit, outcome))
    guard.events += events
    assert not failures, f"{len(failures)} flips not rejected, first: {failures[:5]}"
    guard.verify()


@pytest.mark.parametrize("via", ["bytes", "file"])
@pytest.mark.parametrize("maker", [small_dict_file, ridge_file])
def test_every_truncation_is_detected(maker: Callable[[], bytes], via: str, guard: Guard):
    data = maker()
    failures = []
    with armed() as events:
        for length in range(len(data)):
            outcome = _outcome(data[:length], via)
            if outcome is not None:
                failures.append((length, outcome))
    guard.events += events
    assert not failures, f"{len(failures)} truncations not rejected, first: {failures[:5]}"
    guard.verify()


def test_truncated_files_say_so():
    data = small_dict_file()
    with pytest.raises(NotDevpersistError, match="empty"):
        devpersist.loads(b"")
    for length in (1, 8, 15, 16, 100, len(data) - 1):
        with pytest.raises(IntegrityError):
            devpersist.loads(data[:length])


# --------------------------------------------------------------------------- fuzzing

hypothesis = pytest.importorskip("hypothesis")
st = pytest.importorskip("hypothesis.strategies")

_FUZZ = hypothesis.settings(
    max_examples=200,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(hypothesis.HealthCheck),
)


@functools.cache
def _seeds() -> list[bytes]:
    return [
        small_dict_file(),
        ridge_file(),
        tree_file(),
        devpersist.dumps(["text", 1, 2.5, None, (True, b"raw")]),
    ]


_edit = st.tuples(
    st.sampled_from(["flip", "set", "insert", "delete", "truncate"]),
    st.floats(min_value=0, max_value=1, exclude_max=True),
    st.integers(min_value=0, max_value=255),
    st.binary(min_size=1, max_size=8),
)


Edit = tuple[str, float, int, bytes]


def _apply(data: bytes, edits: list[Edit]) -> bytes:
    out = bytearray(data)
    for kind, where, value, blob in edits:
        if not out:
            break
        pos = int(where * len(out))
        if kind == "flip":
            out[pos] ^= 1 << (value % 8)
        elif kind == "set":
            out[pos] = value
        elif kind == "insert":
            out[pos:pos] = blob
        elif kind == "delete":
            del out[pos : pos + 1 + value % 16]
        else:
            del out[pos:]
    return bytes(out)


@_FUZZ
@hypothesis.given(seed=st.integers(0, 3), edits=st.lists(_edit, min_size=1, max_size=6))
def test_fuzz_file_bytes(seed: int, edits: list[Edit]):
    original = _seeds()[seed]
    data = _apply(original, edits)
    with armed() as events:
        outcome = _outcome(data)
    assert not events
    if data == original:
        assert outcome == "loaded"
    else:
        assert outcome is None, outcome


@_FUZZ
@hypothesis.given(seed=st.integers(0, 3), edits=st.lists(_edit, min_size=1, max_size=4))
def test_fuzz_object_graph_inside_a_valid_container(seed: int, edits: list[Edit]):
    """Mutate only the pickle stream and re-wrap it (checksums, true globals), so every
    mutation reaches the audit and the construction: only devpersist errors may escape."""
    original = _seeds()[seed]
    graph = _apply(H.parse(original).graph, edits)
    data = H.with_graph(original, graph)
    before = Snapshot.take()
    with armed() as events, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. a mutated _sklearn_version warns, not an escape
        outcome = _outcome(data)
    assert not events
    assert outcome in (None, "loaded"), outcome
    assert not before.changes_and_restore()


# --------------------------------------------------------------------------- wrong inputs


@pytest.mark.parametrize(
    "value",
    ["str", None, 123, [1, 2], io.BytesIO(b"x")],
    ids=["str", "None", "int", "list", "file-object"],
)
def test_loads_takes_bytes_only(value: Any):
    with pytest.raises(TypeError) as info:
        devpersist.loads(value)
    assert not isinstance(info.value, DevpersistError)


def _joblib_bytes(compress: int) -> bytes:
    joblib = pytest.importorskip("joblib")
    buf = io.BytesIO()
    joblib.dump({"a": np.arange(3.0)}, buf, compress=compress)
    return buf.getvalue()


def _random_bytes() -> bytes:
    data = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    return b"\x11" + data[1:]


def _safetensors_like() -> bytes:
    header = json.dumps({"a": {"dtype": "F64", "shape": [3], "data_offsets": [0, 24]}}).encode()
    return struct.pack("<Q", len(header)) + header + bytes(24)


def _npy() -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.arange(3.0))
    return buf.getvalue()


FOREIGN = [
    ("pickle-protocol-2", lambda: pickle.dumps({"a": 1}, protocol=2), "pickle"),
    ("pickle-protocol-4", lambda: pickle.dumps({"a": 1}, protocol=4), "pickle"),
    ("pickle-protocol-5", lambda: pickle.dumps({"a": 1}, protocol=5), "pickle"),
    ("pickle-protocol-0", lambda: pickle.dumps({"a": 1}, protocol=0), "not the devpersist magic"),
    ("joblib", lambda: _joblib_bytes(0), "pickle"),
    ("joblib-zlib", lambda: _joblib_bytes(3), "compressed joblib"),
    ("random-bytes", _random_bytes, "not the devpersist magic"),
    ("empty", lambda: b"", "empty"),
    ("zip", _zip_bytes, "zip"),
    ("gzip", lambda: gzip.compress(b"x" * 100), "compressed"),
    ("zstd-magic", lambda: b"\x28\xb5\x2f\xfd" + bytes(60), "compressed"),
    ("safetensors", _safetensors_like, "safetensors"),
    ("npy", _npy, "not the devpersist magic"),
]


@pytest.mark.parametrize("via", ["bytes", "path", "info", "get_untrusted_types"])
@pytest.mark.parametrize(
    ("make", "says"), [(m, s) for _, m, s in FOREIGN], ids=[i for i, _, _ in FOREIGN]
)
def test_foreign_files_are_named(make: Callable[[], bytes], says: str, via: str, guard: Guard):
    data = make()
    path = guard.dir / "foreign.bin"
    path.write_bytes(data)
    call = {
        "bytes": lambda: devpersist.loads(data),
        "path": lambda: devpersist.load(path),
        "info": lambda: devpersist.info(path),
        "get_untrusted_types": lambda: devpersist.get_untrusted_types(path),
    }[via]
    with pytest.raises(NotDevpersistError, match="not a devpersist file") as info:
        guard.call(call)
    assert says in str(info.value)
    guard.verify()


def test_joblib_file_on_disk_is_named(guard: Guard):
    joblib = pytest.importorskip("joblib")
    path = guard.dir / "model.joblib"
    joblib.dump({"a": np.arange(3.0)}, path)
    with pytest.raises(NotDevpersistError, match="pickle"):
        guard.call(devpersist.load, path)
    guard.verify()
