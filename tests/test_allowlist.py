"""The allowlist: what it admits (derived from the libraries), what it refuses and why.

Each "admits" test is one of the refusals measured before the allowlist was derived
(multiclass gradient boosting, ufuncs, builtin type references, zoneinfo, sklearnex
models); each round trip compares outputs bit for bit.
"""

from __future__ import annotations

import collections
import datetime
import json
import os
import subprocess
import sys
import textwrap
import uuid
import warnings
import zoneinfo

import _hostile as H
import numpy as np
import pytest

import devpersist
from devpersist import _derive, _rule_table, _rules, _safety
from devpersist._exceptions import UnsafeTrustError, UntrustedTypeError, UntrustedTypeWarning


def _round_trip(obj):
    """dumps (no save-time warning: a default load accepts it), then loads."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", UntrustedTypeWarning)
        data = devpersist.dumps(obj)
    assert devpersist.get_untrusted_types(data) == []
    return devpersist.loads(data)


def _same(a, b):
    assert type(a) is type(b)
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    assert a.tobytes() == b.tobytes()


# --------------------------------------------------------------------------- admitted


@pytest.mark.parametrize("kind", ["HistGradientBoostingClassifier", "GradientBoostingClassifier"])
def test_multiclass_gradient_boosting_loads(kind):
    from sklearn import ensemble
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    model = getattr(ensemble, kind)(max_iter=3) if kind.startswith("Hist") else (
        ensemble.GradientBoostingClassifier(n_estimators=3)
    )  # fmt: skip
    model.fit(X, y)
    loaded = _round_trip(model)
    _same(model.predict_proba(X), loaded.predict_proba(X))
    _same(model.predict(X), loaded.predict(X))


def _ufuncs(space):
    """Its ufuncs, and (SCIPY_ARRAY_API=1) scipy.special's wrappers of them."""
    return {
        n: v
        for n, v in ((n, getattr(space, n)) for n in dir(space))
        if isinstance(v, np.ufunc) or isinstance(getattr(v, "__wrapped__", None), np.ufunc)
    }


@pytest.mark.filterwarnings("ignore:numpy.core is deprecated:DeprecationWarning")  # pickle's
def test_every_numpy_and_scipy_special_ufunc_loads_as_a_reference():  # whichmodule scan
    special = pytest.importorskip("scipy.special")
    found = {**{f"np.{k}": v for k, v in _ufuncs(np).items()},
             **{f"sp.{k}": v for k, v in _ufuncs(special).items()}}  # fmt: skip
    assert len(found) > 300
    loaded = _round_trip(found)
    wrong = [k for k, v in found.items() if loaded[k] is not v]
    assert not wrong


def test_function_transformer_with_ufuncs():
    special = pytest.importorskip("scipy.special")
    from sklearn.preprocessing import FunctionTransformer

    X = np.linspace(0.1, 2.0, 12).reshape(6, 2)
    for func in (np.log1p, special.expit):
        model = FunctionTransformer(func).fit(X)
        _same(model.transform(X), _round_trip(model).transform(X))


def test_builtin_type_references_and_defaultdict():
    refs = [list, set, frozenset, tuple, dict, range, map, range(2, 9, 3)]
    loaded = _round_trip(refs)
    assert loaded[:-1] == refs[:-1] and all(a is b for a, b in zip(loaded[:-1], refs[:-1]))
    assert loaded[-1] == range(2, 9, 3)
    groups = collections.defaultdict(set, {"a": {1, 2}})
    again = _round_trip(groups)
    assert type(again) is collections.defaultdict and again.default_factory is set
    assert again == groups


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # numpy.matrix itself
def test_numpy_object_type_and_matrix():
    assert _round_trip([np.object_])[0] is np.object_
    m = np.matrix([[1.0, 2.5], [3.0, -1.0]])
    loaded = _round_trip({"m": m, "t": np.matrix})
    _same(loaded["m"], m)
    assert loaded["t"] is np.matrix


def test_zoneinfo_and_datetimes_that_carry_one():
    zone = zoneinfo.ZoneInfo("Europe/Paris")
    when = datetime.datetime(2026, 3, 29, 1, 30, tzinfo=zone)
    loaded = _round_trip({"zone": zone, "when": when})
    assert loaded["zone"] is zone  # ZoneInfo's own cache: the same object
    assert loaded["when"] == when and loaded["when"].utcoffset() == when.utcoffset()


@pytest.mark.parametrize("key", ["../../etc/passwd", "/etc/localtime", "a/../b", "", "x" * 300])
def test_zoneinfo_keys_are_plain_zone_names(key):
    graph = H.stream(
        H.EMPTY_LIST, H.MARK, H.call(H.stack_global("devpersist._graph", "_zoneinfo"),
                                     H.text(key)), H.integer(0), b"Q", H.APPENDS,
    )  # fmt: skip
    with pytest.raises(devpersist.FormatError, match="time-zone key"):
        devpersist.loads(H.container(graph, [np.arange(3.0)]))


def test_sklearnex_constant_dummy_and_fitted_tsne():
    pytest.importorskip("sklearnex")
    from sklearnex.dummy import DummyRegressor
    from sklearnex.manifold import TSNE

    X = np.random.default_rng(0).normal(size=(40, 3))
    dummy = DummyRegressor(strategy="constant", constant=2.5).fit(X, X[:, 0])
    loaded = _round_trip(dummy)  # before predict: predict caches a oneDAL table (unsavable)
    _same(dummy.predict(X), loaded.predict(X))
    tsne = TSNE(n_components=2, perplexity=5, random_state=0).fit(X)
    _same(tsne.embedding_, _round_trip(tsne).embedding_)


# --------------------------------------------------------------------------- refusals


def _file(*items: bytes) -> bytes:
    return H.container(
        H.stream(H.EMPTY_LIST, H.MARK, *items, H.integer(0), b"Q", H.APPENDS), [np.arange(3.0)]
    )


REFUSED = {
    "an unknown class": (_file(H.call(H.stack_global("uuid", "UUID"), H.text("0" * 32))),
                         {"uuid.UUID": "not in the allowlist"}),
    "a never-list name beside an allowed one": (
        _file(H.call(H.stack_global("builtins", "eval"), H.text("1")),
              H.stack_global("collections", "OrderedDict")),
        {"builtins.eval": "on the never list"}),
    "a module off the fixed list": (
        _file(H.stack_global("sklearn.linear_model._nonexistent", "Ridge")),
        {"sklearn.linear_model._nonexistent.Ridge": "fixed list"}),
    "a non-estimator class of a listed module": (
        _file(H.stack_global("sklearn.linear_model._ridge", "partial")),
        {"sklearn.linear_model._ridge.partial": "not a class deriving from an estimator"}),
    "a reference called": (
        _file(H.call(H.stack_global("numpy", "log1p"), H.integer(3))),
        {"numpy.log1p": "may only be referenced"}),
    "a builtin type called": (
        _file(H.call(H.stack_global("builtins", "list"), H.EMPTY_TUPLE)),
        {"builtins.list": "may only be referenced"}),
    "refused names and a misused allowed one together": (
        _file(H.call(H.stack_global("builtins", "eval"), H.text("1")),
              H.call(H.stack_global("numpy", "exp"), H.integer(1)),
              H.stack_global("uuid", "UUID")),
        {"builtins.eval": "on the never list", "numpy.exp": "may only be referenced",
         "uuid.UUID": "not in the allowlist"}),
    "a dunder name in a listed module": (
        _file(H.stack_global("sklearn.linear_model._ridge", "__builtins__")),
        {"sklearn.linear_model._ridge.__builtins__": "not in the allowlist"}),
}  # fmt: skip


@pytest.mark.parametrize("case", list(REFUSED), ids=list(REFUSED))
def test_refusals_name_each_name_with_its_reason(case):
    data, expected = REFUSED[case]
    with pytest.raises(UntrustedTypeError) as info:
        devpersist.loads(data)
    err = info.value
    assert err.untrusted == sorted(expected)
    for name, why in expected.items():
        assert why in err.reasons[name], err.reasons
        assert name in str(err) and why in str(err)
    assert "If you trust this file" not in str(err)  # never "trust them all"
    # get_untrusted_types is exactly what the load refused
    assert devpersist.get_untrusted_types(data) == err.untrusted
    assert devpersist.verify(data)["untrusted"] == err.untrusted


def test_get_untrusted_types_lists_exactly_what_load_refuses():
    """Trusting every listed (trustable) name makes the load succeed; one fewer fails."""
    data = _file(
        H.call(H.stack_global("uuid", "UUID"), H.text("0" * 32)),
        H.call(H.stack_global("fractions", "Fraction"), H.text("1/3")),
        H.stack_global("numpy", "log1p"),
        H.stack_global("sklearn._loss._loss", "__pyx_unpickle_CyHalfMultinomialLoss"),
    )
    listed = devpersist.get_untrusted_types(data)
    assert listed == ["fractions.Fraction", "uuid.UUID"]
    loaded = devpersist.loads(data, trusted=listed)
    assert loaded[0] == uuid.UUID("0" * 32) and loaded[2] is np.log1p
    for name in listed:
        with pytest.raises(UntrustedTypeError) as info:
            devpersist.loads(data, trusted=[n for n in listed if n != name])
        assert info.value.untrusted == [name]


def test_never_list_names_cannot_be_trusted_by_accident():
    data = _file(H.call(H.stack_global("os", "getcwd")))
    for spelling in (["os.getcwd"], "os.getcwd", [("os", "getcwd")], [os.getcwd]):
        with pytest.raises(UnsafeTrustError, match="never list") as info:
            devpersist.loads(data, trusted=spelling)
        assert "dangerously_trust" in str(info.value)
    with pytest.raises(UnsafeTrustError):
        devpersist.get_untrusted_types(data, trusted=["builtins.eval"])
    with pytest.raises(UnsafeTrustError, match="__main__"):  # sklearnex/__main__.py runs
        devpersist.loads(data, trusted=["sklearnex.__main__.sys"])  # a program at import
    loaded = devpersist.loads(data, trusted=[devpersist.dangerously_trust("os.getcwd")])
    assert loaded[0] == os.getcwd()


@pytest.mark.parametrize("value", [True, False, 1, 2.5])
def test_trusted_is_not_a_switch(value):
    with pytest.raises(TypeError, match="no trust-everything switch"):
        devpersist.loads(_file(), trusted=value)


def test_saving_warns_about_what_a_default_load_refuses(tmp_path):
    obj = {"id": uuid.UUID(int=3), "ok": np.arange(2.0)}
    with pytest.warns(UntrustedTypeWarning) as record:
        data = devpersist.dumps(obj)
    warning = record[0].message
    assert warning.untrusted == {"uuid.UUID": "not in the allowlist"}  # type: ignore[attr-defined]
    assert "uuid.UUID" in str(warning)
    with pytest.warns(UntrustedTypeWarning, match="uuid.UUID") as record:
        devpersist.dump(obj, tmp_path / "m.dvp")
    assert record[0].filename == __file__  # points at the caller's line
    assert devpersist.get_untrusted_types(data) == ["uuid.UUID"]


# --------------------------------------------------------------------------- the table


def test_table_records_what_it_was_made_from():
    import sklearn

    table = _rules.derived()
    assert table["made_from"]["scikit-learn"] == sklearn.__version__
    assert (
        table["modules"]["sklearn._loss._loss"]["__pyx_unpickle_CyHalfMultinomialLoss"]
        == "reconstructor"
    )
    assert not [m for m in table["modules"] if _rules.module_forbidden(m)]


def test_missing_reports_a_name_the_committed_table_lacks():
    table = _rules.derived()
    trimmed = {**table, "modules": {m: dict(v) for m, v in table["modules"].items()}}
    del trimmed["modules"]["sklearn._loss._loss"]["__pyx_unpickle_CyHalfMultinomialLoss"]
    assert _derive.missing(table, trimmed) == [
        "sklearn._loss._loss.__pyx_unpickle_CyHalfMultinomialLoss"
    ]
    assert _derive.missing(table, table) == []


def test_installed_libraries_have_no_name_the_table_lacks():
    """Regenerate the table (inspection pass; in a child process, since it imports every
    library module) and compare: a new scikit-learn adding a reconstructor fails here.
    ``python -m devpersist._derive`` rewrites the table."""
    env = {k: v for k, v in os.environ.items() if k != "SCIPY_ARRAY_API"}
    proc = subprocess.run(
        [sys.executable, "-W", "ignore", "-m", "devpersist._derive", "--check", "--static"],
        capture_output=True, text=True, timeout=300, env=env, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, (
        "names missing from the table:\n" + proc.stdout + proc.stderr[-2000:]
    )


def test_every_imported_rule_names_a_real_object_of_its_use():
    """Each rule of the table resolves to the object its name says, and its use fits
    the object: classes and reconstructors may be fresh; functions kept as values are
    references; only devpersist's functions and range are plain calls."""
    import numpy

    for key, rule in _rule_table.ADMITTED.items():
        try:
            obj = rule.resolve()
        except (ImportError, AttributeError):
            assert key[0].startswith("onedal."), key  # an optional backend only
            continue
        if rule.how == "import" and key[0] != "numpy":  # numpy has aliases (bool_ is bool)
            assert obj.__name__ == key[1].rpartition(".")[2], key
        if rule.use == _rule_table.FRESH:
            assert isinstance(obj, type) or key[1] in ("newObj", "__pyx_unpickle_SeedSequence") \
                or rule.how == "devpersist", key  # fmt: skip
        elif rule.use == _rule_table.CALL:
            assert rule.how == "devpersist" or key == ("builtins", "range"), key
        else:
            assert isinstance(obj, type) or callable(obj) or isinstance(obj, numpy.ufunc), key


def test_devpersist_reconstructors_keep_their_wire_names():
    """Files name them devpersist._graph._<name> (v1 and golden files): pickle must keep
    writing exactly that, and the table must map it to the function."""
    from devpersist import _graph

    wired = [r for r in _rule_table.ADMITTED.values() if r.module == "devpersist._graph"]
    assert sorted(r.name for r in wired) == [
        "_device", "_dtype", "_masked_array", "_matrix", "_namespace_module",
        "_object_array", "_onedal_return_type", "_torch_size", "_zoneinfo",
    ]  # fmt: skip
    for rule in wired:
        assert rule.function is getattr(_graph, rule.name)
        assert (rule.function.__module__, rule.function.__qualname__) == rule.key
    graph, refs = _graph.dump_graph({"x": np.array([1, "a"], dtype=object)})
    assert refs == [] and b"devpersist._graph" in graph
    assert ("devpersist._graph", "_object_array") in _graph.scan(graph, 0)


def test_docs_show_the_rule_table():
    """docs/security.md shows the hand-made table exactly as the engine reads it."""
    from pathlib import Path

    doc = (Path(__file__).parents[1] / "docs" / "security.md").read_text(encoding="utf-8")
    begin, end = "<!-- rule table: begin -->\n", "<!-- rule table: end -->"
    assert begin in doc and end in doc
    shown = doc.split(begin, 1)[1].split(end, 1)[0]
    assert shown == _rule_table.markdown()


def test_a_misused_reference_is_refused_with_its_rule_reason():
    """Error messages read the same table as the audit: the rule's own reason."""
    data = _file(H.call(H.stack_global("builtins", "str"), H.text("x")))
    with pytest.raises(UntrustedTypeError) as info:
        devpersist.loads(data)
    why = _rule_table.RULES[("builtins", "str")].why
    assert info.value.reasons == {
        "builtins.str": f"may only be referenced, not called (the allowlist's rule: {why})"
    }


def test_a_never_refusal_is_known_by_its_kind_not_its_wording():
    from devpersist._rules import Refusal

    never = Refusal("never", why="runs code")
    assert never.kind == "never" and never == "on the never list: runs code"
    err = _safety.refused({"os.system": never, "x.y": Refusal("not_listed")})
    assert err.untrusted == ["os.system", "x.y"]
    assert err.reasons == {"os.system": "on the never list: runs code",
                           "x.y": "not in the allowlist"}  # fmt: skip
    assert type(err.reasons["os.system"]) is str
    assert "Names on the never list cannot be trusted" in str(err)
    assert "never list cannot" not in str(_safety.refused({"x.y": Refusal("not_listed")}))


def test_cold_start_imports_no_library_and_reads_no_table():
    script = textwrap.dedent(
        """
        import json, sys
        import numpy as np
        import devpersist
        from devpersist import _rules
        data = devpersist.dumps({"a": np.arange(3.0), "t": (1, "x")})
        devpersist.loads(data)
        print(json.dumps({"sklearn": "sklearn" in sys.modules,
                          "table": _rules.derived.cache_info().currsize}))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "SCIPY_ARRAY_API"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, env=env, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.splitlines()[-1]) == {"sklearn": False, "table": 0}


def test_a_first_load_imports_no_library_module_pickle_would_not():
    """The allowlist imports nothing a file does not name: in a fresh process, loading a
    forest imports no scikit-learn or scipy module that ``pickle.load`` of the same model
    does not import too (the class rule's bases are only looked up in ``sys.modules``)."""
    script = textwrap.dedent(
        """
        import json, pickle, sys
        import numpy as np
        import sklearn
        import devpersist
        path, how = sys.argv[1], sys.argv[2]
        before = set(sys.modules)
        if how == "pickle":
            with open(path, "rb") as f:
                pickle.load(f)
        else:
            devpersist.load(path)
        print(json.dumps(sorted(set(sys.modules) - before)))
        """
    )
    from sklearn.ensemble import RandomForestClassifier

    X = np.random.RandomState(0).normal(size=(40, 3))
    model = RandomForestClassifier(2, random_state=0).fit(X, X[:, 0] > 0)
    folder = os.environ.get("TMPDIR", "/tmp")
    paths = {"pickle": f"{folder}/dp-cold-{uuid.uuid4().hex}.pkl",
             "devpersist": f"{folder}/dp-cold-{uuid.uuid4().hex}.dp"}  # fmt: skip
    try:
        import pickle

        with open(paths["pickle"], "wb") as f:
            pickle.dump(model, f, protocol=5)
        devpersist.dump(model, paths["devpersist"])
        env = {k: v for k, v in os.environ.items() if k != "SCIPY_ARRAY_API"}
        imported = {}
        for how, path in paths.items():
            proc = subprocess.run([sys.executable, "-c", script, path, how], capture_output=True,
                                  text=True, timeout=120, env=env, check=False)  # fmt: skip
            assert proc.returncode == 0, proc.stderr[-2000:]
            imported[how] = set(json.loads(proc.stdout.splitlines()[-1]))
    finally:
        for path in paths.values():
            if os.path.exists(path):
                os.remove(path)
    extra = imported["devpersist"] - imported["pickle"]
    assert imported["pickle"], "pickle.load imported nothing: the check would be empty"
    assert not [m for m in extra if m.partition(".")[0] in ("sklearn", "scipy", "sklearnex")]


CODE_RUNNERS = [
    "builtins.eval", "builtins.exec", "builtins.compile", "builtins.getattr",
    "builtins.__import__", "builtins.open", "builtins.breakpoint", "os.system",
    "posix.system", "nt.system", "subprocess.Popen", "runpy.run_path", "cProfile.run",
    "pty.spawn", "ctypes.CDLL", "pydoc.pipepager", "importlib.import_module",
    "code.InteractiveInterpreter", "multiprocessing.Process", "pip._internal.main",
    "operator.attrgetter", "operator.methodcaller", "_operator.attrgetter",
    "functools.partial", "numpy.f2py.compile", "_io.FileIO", "io.open", "shutil.rmtree",
    "pickle.loads", "_pickle.loads", "marshal.loads", "numpy.load", "torch.load",
    "joblib.load", "types.FunctionType", "types.CodeType", "sys.modules",
    "sklearnex.__main__.sys", "daal4py.__main__.x",
]  # fmt: skip


@pytest.mark.parametrize("name", CODE_RUNNERS)
def test_code_runners_are_on_the_never_list(name):
    data = _file()
    with pytest.raises(UnsafeTrustError) as info:
        devpersist.loads(data, trusted=[name])
    assert info.value.name == name
    assert devpersist.loads(data, trusted=[devpersist.dangerously_trust(name)])[0].size == 3
