"""Callables that run code, by name: each would create the canary if it ran."""

from __future__ import annotations

import pickle

import _hostile as H
import numpy as np

from devpersist import UntrustedTypeError
from hostile_cases.build import SG, Case, T, gadget, py, script, str_list, touch, ucall

# 1-3. Callables that run code, by name: each would create the canary if it ran.
CODE_CASES = [
    ucall("os", "system", lambda c: [T(touch(c))]),
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
    ucall("posix", "system", lambda c: [T(touch(c))]),
    ucall("subprocess", "Popen", lambda c: [str_list("touch", c)], watch=("subprocess",)),
    ucall("subprocess", "check_output", lambda c: [str_list("touch", c)]),
    ucall("os", "popen", lambda c: [T(touch(c))]),
    ucall("os", "spawnlp", lambda c: [H.integer(0), T("touch"), T("touch"), T(c)]),
    ucall("builtins", "eval", lambda c: [T(py(c))]),
    ucall("builtins", "exec", lambda c: [T(py(c))]),
    ucall("builtins", "compile", lambda c: [T(py(c)), T("<x>"), T("exec")]),
    gadget(
        "builtins.exec(builtins.compile(...))",
        lambda c: H.call(
            SG("builtins", "exec"),
            H.call(SG("builtins", "compile"), T(py(c)), T("<x>"), T("exec")),
        ),
        (("builtins", "exec"), ("builtins", "compile")),
    ),
    gadget(
        "builtins.getattr(object, '__subclasses__')",
        lambda c: H.call(
            H.call(SG("builtins", "getattr"), SG("builtins", "object"), T("__subclasses__"))
        ),
        (("builtins", "getattr"),),
    ),
    ucall("builtins", "__import__", lambda c: [T("os")]),
    ucall("builtins", "open", lambda c: [T(c), T("w")]),
    ucall("builtins", "breakpoint", lambda c: []),
    ucall("builtins", "setattr", lambda c: [SG("builtins", "str"), T("x"), H.NONE]),
    ucall("builtins", "globals", lambda c: []),
    ucall("builtins", "bytearray", lambda c: [H.integer(2**40)]),
    Case(
        "__builtin__.eval-protocol-2-GLOBAL (fix_imports name)",
        lambda c: H.container(
            b"\x80\x02"
            + H.global_op("__builtin__", "eval")
            + H.MARK
            + T(py(c))
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
    ucall("_io", "FileIO", lambda c: [T(c), T("w")]),
    ucall("io", "open", lambda c: [T(c), T("w")]),
    ucall("_io", "open", lambda c: [T(c), T("w")]),
    ucall("runpy", "run_path", lambda c: [T(script(c))], watch=("runpy",)),
    ucall("runpy", "_run_code", lambda c: [T(py(c)), H.EMPTY_DICT]),
    ucall("cProfile", "run", lambda c: [T(py(c))], watch=("cProfile",)),
    ucall("profile", "run", lambda c: [T(py(c))]),
    ucall("timeit", "timeit", lambda c: [T(py(c))]),
    ucall("pty", "spawn", lambda c: [str_list("touch", c)], watch=("pty",)),
    ucall("ctypes", "CDLL", lambda c: [H.NONE], watch=("ctypes",)),
    ucall("ctypes", "cdll.LoadLibrary", lambda c: [T("libc.so.6")]),
    ucall("numpy.ctypeslib", "load_library", lambda c: [T("libc"), T("/lib")]),
    ucall("pydoc", "pipepager", lambda c: [T("x"), T(touch(c))], watch=("pydoc",)),
    ucall("pydoc", "locate", lambda c: [T("os.system")]),
    ucall("importlib", "import_module", lambda c: [T("antigravity")], watch=("antigravity",)),
    gadget(
        "code.InteractiveInterpreter.runsource",
        lambda c: H.call(
            SG("code", "InteractiveInterpreter.runsource"),
            H.call(SG("code", "InteractiveInterpreter")),
            T(py(c)),
        ),
        (("code", "InteractiveInterpreter"), ("code", "InteractiveInterpreter.runsource")),
        watch=("code",),
    ),
    gadget(
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
    ucall("pip._internal.cli.main", "main", lambda c: [str_list("--version")], watch=("pip",)),
    gadget(
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
    gadget(
        "operator.methodcaller('system', cmd)(__import__('os'))",
        lambda c: H.call(
            H.call(SG("operator", "methodcaller"), T("system"), T(touch(c))),
            H.call(SG("builtins", "__import__"), T("os")),
        ),
        (("operator", "methodcaller"), ("builtins", "__import__")),
    ),
    gadget(
        "functools.partial(os.system, cmd)()",
        lambda c: H.call(H.call(SG("functools", "partial"), SG("os", "system"), T(touch(c)))),
        (("functools", "partial"), ("os", "system")),
    ),
    gadget(
        "functools.partial(builtins.exec, src)()",
        lambda c: H.call(H.call(SG("functools", "partial"), SG("builtins", "exec"), T(py(c)))),
        (("functools", "partial"), ("builtins", "exec")),
    ),
    gadget(
        "functools.partial(numpy.sum) (an allowed function inside partial)",
        lambda c: H.call(SG("functools", "partial"), SG("numpy", "sum")),
        (("functools", "partial"),),
    ),
    ucall("numpy.f2py", "run_main", lambda c: [str_list("-c", c)], watch=("numpy.f2py",)),
    ucall("numpy", "load", lambda c: [T(c)]),
    ucall("numpy", "frompyfunc", lambda c: [SG("builtins", "str"), H.integer(1), H.integer(1)]),
    ucall("numpy._core.multiarray", "_reconstruct", lambda c: [H.NONE]),
    ucall("shutil", "copyfile", lambda c: [T(__file__), T(c)]),
    ucall("shutil", "rmtree", lambda c: [T(c + "_dir")]),
    ucall("webbrowser", "open", lambda c: [T("file://" + c)], watch=("webbrowser",)),
    ucall("pickle", "loads", lambda c: [H.binbytes(pickle.dumps(0))]),
    ucall("marshal", "loads", lambda c: [H.binbytes(b"N")]),
    ucall("types", "FunctionType", lambda c: [H.NONE, H.EMPTY_DICT]),
    ucall("types", "CodeType", lambda c: []),
    ucall(
        "copyreg",
        "_reconstructor",
        lambda c: [SG("builtins", "object"), SG("builtins", "object"), H.NONE],
    ),
    ucall("collections", "namedtuple", lambda c: [T("x"), T("a")]),
    ucall("sys", "modules", lambda c: []),
    ucall("joblib", "load", lambda c: [T(c)]),
    ucall(
        "pathlib",
        "Path.write_text",
        lambda c: [H.call(SG("pathlib", "Path"), T(c)), T("x")],
        also=(("pathlib", "Path"),),
    ),
]
