"""Hostile files, written from docs/format.md alone, by classes of published attacks.

Every file is a well-formed container (header, offsets, checksums, a manifest that
declares exactly the globals the stream names, trailer) written by ``_spec_writer``,
which does not import devpersist, around a pickle stream written opcode by opcode.
The classes follow the published bypasses of pickle scanners and "safe" loaders:
picklescan's and fickling's corpora (stdlib modules that run code: ``timeit``,
``cProfile``, ``pdb``, ``doctest``, ``idlelib``, ``pip``, ``ensurepip``, ``venv``,
``asyncio`` subprocess transports, ``distutils``/``_io`` file writers, nested
``pickle``/``marshal`` loads, ``operator``/``functools`` indirections, ``importlib``
and ``pkgutil.resolve_name``, attributes of allowed modules such as
``numpy.__builtins__``), torch ``weights_only`` bypasses (a safe loader that falls back to
another format for other bytes), skops' (a trusted module's re-exported or method
names, type swaps through ``__class__``). The payloads are ours.

All load in one child process (``_child.py``) through every reader, with a canary file
the payloads would create and an audit hook; each must be refused with a devpersist
error, nothing may run, and the child must exit cleanly.
"""

from __future__ import annotations

import io
import pickle
import tarfile
import zipfile
from pathlib import Path

import _spec_writer as W
from _harness import ALL, Case, problems, run_cases

G = W.global_


def _text_call(module: str, name: str, *args: str) -> bytes:
    return W.call(G(module, name), *[W.text(a) for a in args])


def _payloads(canary: str) -> dict[str, bytes]:
    cmd = f"touch {canary}"
    code = f"open({canary!r}, 'w').write('x')"
    plain = {
        # direct calls of what runs code, by every way of naming a global
        "os.system": _text_call("os", "system", cmd),
        "posix.system (GLOBAL)": W.call(W.global_op("posix", "system"), W.text(cmd)),
        "nt.system": _text_call("nt", "system", cmd),
        "builtins.eval": _text_call("builtins", "eval", code),
        "builtins.exec": _text_call("builtins", "exec", code),
        "__builtin__.eval": _text_call("__builtin__", "eval", code),
        "builtins.compile": _text_call("builtins", "compile", code, "<x>", "exec"),
        "subprocess.Popen": W.call(G("subprocess", "Popen"), W.EMPTY_LIST + W.MARK
                                   + W.text("sh") + W.text("-c") + W.text(cmd) + W.APPENDS),
        "subprocess.check_output": _text_call("subprocess", "getoutput", cmd),
        "pty.spawn": _text_call("pty", "spawn", "sh"),
        "runpy._run_code": W.call(G("runpy", "_run_code"), W.text(code), W.EMPTY_DICT),
        "timeit.timeit": _text_call("timeit", "timeit", "", code),
        "cProfile.run": _text_call("cProfile", "run", code),
        "profile.run": _text_call("profile", "run", code),
        "pdb.run": _text_call("pdb", "run", code),
        "bdb.Bdb.run": _text_call("bdb", "Bdb.run", code),
        "trace.Trace.run": _text_call("trace", "Trace.run", code),
        "doctest.debug_script": _text_call("doctest", "debug_script", code),
        "idlelib runcode": _text_call("idlelib.pyshell", "ModifiedInterpreter.runcode", code),
        "lib2to3 make_label": _text_call("lib2to3.pgen2.pgen", "ParserGenerator.make_label",
                                         code),
        "code.InteractiveInterpreter": _text_call("code", "InteractiveInterpreter.runsource",
                                                  code),
        "pip.main": W.call(G("pip", "main"), W.EMPTY_LIST + W.MARK + W.text("--version")
                           + W.APPENDS),
        "ensurepip._run_pip": W.call(G("ensurepip", "_run_pip"), W.EMPTY_LIST),
        "venv.create": _text_call("venv", "create", canary),
        "asyncio subprocess": _text_call("asyncio.unix_events",
                                         "_UnixSubprocessTransport._start", cmd),
        "distutils write_file": W.call(G("distutils.file_util", "write_file"), W.text(canary),
                                       W.EMPTY_LIST),
        "_io.FileIO": _text_call("_io", "FileIO", canary, "w"),
        "io.open": _text_call("io", "open", canary, "w"),
        "shutil.copyfile": _text_call("shutil", "copyfile", "/etc/hostname", canary),
        "pickle.loads nested": W.call(G("pickle", "loads"), W.binbytes(
            pickle.dumps(0) + b"")),
        "_pickle.loads nested": W.call(G("_pickle", "loads"), W.binbytes(pickle.dumps(0))),
        "marshal.loads": W.call(G("marshal", "loads"), W.binbytes(b"\xe3")),
        "importlib.import_module": _text_call("importlib", "import_module", "os"),
        "pkgutil.resolve_name": _text_call("pkgutil", "resolve_name", "os:system"),
        "operator.attrgetter": W.call(W.call(G("operator", "attrgetter"), W.text("system")),
                                      _text_call("importlib", "import_module", "os")),
        "_operator.methodcaller": W.call(W.call(G("_operator", "methodcaller"),
                                                W.text("system"), W.text(cmd)),
                                         _text_call("builtins", "__import__", "os")),
        "functools.partial": W.call(W.call(G("functools", "partial"), G("os", "system"),
                                           W.text(cmd)), ),
        "builtins.getattr(__import__)": W.call(
            W.call(G("builtins", "getattr"), _text_call("builtins", "__import__", "os"),
                   W.text("system")), W.text(cmd)),
        "numpy.f2py getlincoef": _text_call("numpy.f2py.crackfortran", "getlincoef", code,
                                            "{}"),
        "numpy testing runstring": W.call(G("numpy.testing._private.utils", "runstring"),
                                          W.text(code), W.EMPTY_DICT),
        "numpy.load": _text_call("numpy", "load", canary),
        "joblib.load": _text_call("joblib", "load", canary),
        "torch.load": _text_call("torch", "load", canary),
        "torch bottleneck __main__": _text_call("torch.utils.bottleneck.__main__",
                                                "run_autograd_prof", code, "{}"),
        "webbrowser.open": _text_call("webbrowser", "open", "http://127.0.0.1:1/"),
        "ctypes.CDLL": _text_call("ctypes", "CDLL", "libc.so.6"),
        "numpy.__builtins__ dict.get": W.call(
            W.call(G("builtins", "dict.get"), G("numpy", "__builtins__"), W.text("exec")),
            W.text(code)),
        "numpy dotted qualname": (W.global_op("numpy", "prod") + W.NONE
                                  + W.global_op("numpy", "core._internal.sys.modules")
                                  + b"\x86" + W.BUILD + W.POP
                                  + W.call(W.global_op("numpy", "prod.os.system"),
                                           W.text(cmd))),
        "sklearn re-exported module": _text_call("sklearn.datasets._base", "shutil"),
        "sklearn method qualname": W.call(G("sklearn.linear_model", "Ridge.fit"), W.NONE,
                                          W.NONE, W.NONE),
        "numpy method (skops MethodNode)": W.call(G("numpy", "ndarray.tofile"), W.NONE,
                                                  W.text(canary)),
        "numpy.savetxt": W.call(G("numpy", "savetxt"), W.text(canary), W.EMPTY_LIST),
        "copyreg._reconstructor": W.call(G("copyreg", "_reconstructor"), G("os", "_wrap_close"),
                                         G("builtins", "object"), W.NONE),
        "__main__ module": _text_call("__main__", "run", code),
        "sklearn tests module": _text_call("sklearn.tests.test_base", "K"),
        # indirections: names from the memo, text opcodes, INST/OBJ, extension codes
        "STACK_GLOBAL from memo": (W.text("os") + W.MEMOIZE + W.POP + W.text("system")
                                   + W.MEMOIZE + W.POP + W.get(0) + W.get(1)
                                   + W.STACK_GLOBAL + W.MARK + W.text(cmd) + W.TUPLE
                                   + W.REDUCE),
        "STACK_GLOBAL computed": (W.call(G("builtins", "str"), W.text("os"))
                                  + W.text("system") + W.STACK_GLOBAL + W.MARK
                                  + W.text(cmd) + W.TUPLE + W.REDUCE),
        "INST opcode": W.MARK + W.text(cmd) + b"ios\nsystem\n",
        "OBJ opcode": W.MARK + G("os", "system") + W.text(cmd) + b"o",
        "EXT1 opcode": b"\x82\x01" + W.MARK + W.text(cmd) + W.TUPLE + W.REDUCE,
        # state changes: type swaps and class attributes through BUILD
        "BUILD __class__ swap": (G("sklearn.linear_model", "Ridge") + W.EMPTY_TUPLE
                                 + W.NEWOBJ + W.NONE + W.EMPTY_DICT + W.text("__class__")
                                 + G("sklearn.tree", "DecisionTreeClassifier") + W.SETITEM
                                 + b"\x86" + W.BUILD),
        "BUILD on a class": (G("sklearn.linear_model", "Ridge") + W.EMPTY_DICT
                             + W.text("predict") + G("builtins", "print") + W.SETITEM
                             + W.BUILD),
        "SETITEM into a registry": (G("sklearn.metrics.pairwise", "PAIRWISE_KERNEL_FUNCTIONS")
                                    + W.text("x") + G("os", "system") + W.SETITEM),
        "BUILD on a function": (G("sklearn.metrics", "accuracy_score") + W.EMPTY_DICT
                                + W.text("__code__") + W.NONE + W.SETITEM + W.BUILD),
    }  # fmt: skip
    return {name: W.hostile(parts) for name, parts in plain.items()}


def _other_formats(canary: str) -> dict[str, bytes]:
    """Bytes of other formats: a loader must never fall back to unpickling them."""
    cmd = f"touch {canary}"
    raw = W.PROTO5 + _text_call("os", "system", cmd) + W.STOP
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("__main__.py", f"open({canary!r}, 'w')")
        z.writestr("archive/data.pkl", raw)
    tarred = io.BytesIO()
    with tarfile.open(fileobj=tarred, mode="w") as t:
        info = tarfile.TarInfo("pickle")
        info.size = len(raw)
        t.addfile(info, io.BytesIO(raw))
    return {
        "plain pickle": raw,
        "protocol 0 pickle": b"cos\nsystem\n(V" + cmd.encode() + b"\ntR.",
        "zip with __main__.py": zipped.getvalue(),
        "tar (torch legacy)": tarred.getvalue(),
        "joblib zlib": __import__("zlib").compress(raw),
        "devpersist magic then pickle": W.MAGIC + raw,
    }


def test_published_bypass_classes_run_nothing(tmp_path: Path) -> None:
    canary = str(tmp_path / "DVP_CANARY_FILE")
    cases = [Case(name, data, ALL) for name, data in _payloads(canary).items()]
    cases += [Case(name, data, ALL) for name, data in _other_formats(canary).items()]
    outcome = run_cases(tmp_path, cases, timeout=400)
    found = problems(outcome, cases)
    assert not found, "\n".join(found)


def test_import_time_code_and_dtype_state_run_nothing(tmp_path: Path) -> None:
    dtype_state = (
        W.MARK + W.integer(3) + W.text("|") + W.NONE + W.text("a") + b"\x85"
        + W.EMPTY_DICT + W.text("a") + W.call(G("numpy", "dtype"), W.text("O"))
        + W.integer(0) + b"\x86" + W.SETITEM + W.integer(8) + W.integer(1)
        + W.integer(16) + W.TUPLE
    )  # fmt: skip
    payloads = {
        "sklearnex.__main__": _text_call("sklearnex.__main__", "sys"),
        "sklearnex.glob.__main__": _text_call("sklearnex.glob.__main__", "sys"),
        "numpy dtype BUILD": W.call(
            G("numpy._core.multiarray", "scalar"),
            W.call(G("numpy", "dtype"), W.text("V8")) + dtype_state + W.BUILD,
            W.binbytes(b"AAAAAAAA"),
        ),
    }
    cases = [Case(n, W.hostile(p), ALL) for n, p in payloads.items()]
    outcome = run_cases(tmp_path, cases, timeout=300)
    found = problems(outcome, cases)
    assert not found, "\n".join(found)
