"""The load path's shortcuts keep its verdicts; a load imports only what the file needs (issue 15)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import devpersist


def test_plain_arrays_saved_under_sklearn_load_without_importing_it(tmp_path):
    """A dict of numpy arrays saved in a process that had imported scikit-learn records
    its configuration; loading it must not import scikit-learn to plan that configuration
    (nothing in the file is an estimator)."""
    import sklearn  # noqa: F401  (so that the file records a configuration)

    path = tmp_path / "arrays.dp"
    devpersist.dump({"a": np.arange(3.0), "b": np.ones((2, 2), np.int32)}, path)
    assert devpersist.info(path).get("config")  # the precondition: a configuration recorded
    script = textwrap.dedent(
        """
        import json, sys
        import devpersist
        out = devpersist.load(sys.argv[1])
        print(json.dumps({"sklearn": "sklearn" in sys.modules,
                          "a": out["a"].tolist(), "b": out["b"].tolist(),
                          "dtypes": [str(out["a"].dtype), str(out["b"].dtype)]}))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "SCIPY_ARRAY_API"}
    proc = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True,
                          text=True, timeout=120, env=env, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.splitlines()[-1]) == {
        "sklearn": False, "a": [0.0, 1.0, 2.0], "b": [[1, 1], [1, 1]],
        "dtypes": ["float64", "int32"]}  # fmt: skip


def test_dtype_identity_cache_returns_what_parsing_gives():
    """``dtype_from_descr`` remembers a structured descriptor's list by identity (a
    version 2 table shares one per distinct dtype): the remembered answer is the parsed
    one, an equal new list parses to the same dtype, and a refused list is never
    remembered (it raises every time)."""
    from devpersist import FormatError
    from devpersist.arrays import dtype_from_descr

    descr = [["left", "<i8"], ["value", "<f8", [2]]]
    expected = np.dtype([("left", "<i8"), ("value", "<f8", (2,))])
    assert dtype_from_descr(descr) == expected
    assert dtype_from_descr(descr) == expected  # the remembered one
    assert dtype_from_descr([["left", "<i8"], ["value", "<f8", [2]]]) == expected
    bad = [["o", "|O"]]
    for _ in range(2):
        with pytest.raises(FormatError):
            dtype_from_descr(bad)


def test_forest_round_trip_with_shared_structured_dtypes():
    """Hundreds of node arrays share one dtype list in the table: each loads bit for bit."""
    from sklearn.ensemble import RandomForestClassifier

    X = np.random.RandomState(0).normal(size=(60, 3))
    model = RandomForestClassifier(5, random_state=0).fit(X, X[:, 0] > 0)
    back = devpersist.loads(devpersist.dumps(model))
    for tree, got in zip(model.estimators_, back.estimators_):
        for name in ("nodes", "values"):
            a, b = tree.tree_.__getstate__()[name], got.tree_.__getstate__()[name]
            assert type(b) is np.ndarray and a.dtype == b.dtype and a.shape == b.shape
            assert a.tobytes() == b.tobytes()
    np.testing.assert_array_equal(back.predict_proba(X), model.predict_proba(X))


def _random_graph(rng, n, cycles):
    """Containers of every kind (and replay nodes) sharing children at random; with
    ``cycles``, some lists also hold an ancestor."""
    from devpersist._replay import Node, node_class

    stub = node_class(Node, ("m", "C"))
    made = []
    for i in range(n):
        kids = [made[j] for j in rng.integers(0, len(made), rng.integers(0, 4))] if made else []
        kids += [1, "s", None][: rng.integers(0, 3)]
        kind = i % 5
        if kind == 0:
            obj = list(kids)
        elif kind == 1:
            obj = tuple(kids)
        elif kind == 2:
            obj = {f"k{j}": k for j, k in enumerate(kids)}
        elif kind == 3:
            obj = object.__new__(stub)
            obj.parts = list(kids)
        else:
            obj = frozenset(k for k in kids if type(k) in (frozenset, stub, int, str, type(None)))
        made.append(obj)
    root = made[-3:]  # a list: containers near the top, which reach most others
    if cycles:
        lists = [o for o in made if type(o) is list]
        root = [root, *lists[::3]]
        for held in lists[::3]:
            held.append(root)  # each loops back to the root
    return root, frozenset({stub})


@pytest.mark.parametrize("seed", range(12))
def test_quick_shape_walk_equals_the_reference_walk(seed):
    """The quick walk settles a graph without cycles with exactly the reference walk's
    totals; on cycles it steps aside (``Undecided``) and ``check_shape`` uses the
    reference walk, so the verdict is the reference's."""
    from devpersist import _audit

    rng = np.random.default_rng(seed)
    root, stubs = _random_graph(rng, int(rng.integers(2, 300)), cycles=False)
    expected = _audit.check_shape_walk(root, stubs)
    assert expected[0] > 1
    assert _audit.acyclic_shape(root, _audit._CONTAINERS | stubs) == expected
    root, stubs = _random_graph(rng, int(rng.integers(20, 300)), cycles=True)
    with pytest.raises(_audit.Undecided):
        _audit.acyclic_shape(root, _audit._CONTAINERS | stubs)
    _audit.check_shape(root, stubs)  # the reference walk: cycles count as leaves


def test_quick_shape_walk_near_the_recursion_limit_falls_back():
    """Called deep in the stack, the quick walk hits Python's recursion limit; the
    reference walk (no recursion) still gives the verdict."""
    import sys

    from devpersist import ResourceLimitError, _audit

    deep: list = []
    for _ in range(_audit.MAX_DEPTH - 1):
        deep = [deep]

    def nested(levels, then):
        return nested(levels - 1, then) if levels else then()

    import inspect

    room = sys.getrecursionlimit() - len(inspect.stack()) - 60
    nested(room, lambda: _audit.check_shape(deep))  # within the limit: no error
    with pytest.raises(ResourceLimitError, match="MAX_DEPTH"):
        nested(room, lambda: _audit.check_shape([[deep]]))


def test_packed_arrays_load_as_independent_exact_arrays():
    """Packed arrays come back as views of one copy of the pack (the lean route): each
    has its own dtype, shape, order and bytes, is writable, and writing one changes no
    other array and not the file's bytes."""
    rng = np.random.default_rng(0)
    arrays = {
        "f": np.asfortranarray(rng.normal(size=(3, 5)).astype(np.float32)),
        "c": rng.integers(-9, 9, size=(2, 3, 4)).astype(np.int8),
        "s": np.array([(1, 2.5), (3, -1.0)], dtype=[("a", "<i8"), ("b", "<f8")]),
        "z": np.zeros((0, 3)),
        "b": np.array([True, False, True]),
        "x": np.array([1 + 2j, 3 - 4j], dtype=np.complex64),
        "t": np.array(["2020-01-01", "2021-06-30"], dtype="datetime64[D]"),
        ">": np.arange(4, dtype=">u2"),
    }
    data = devpersist.dumps(arrays)
    assert all(e.get("packed") for e in devpersist.info(data)["arrays"])  # the route taken
    back = devpersist.loads(data)
    for key, want in arrays.items():
        got = back[key]
        assert type(got) is np.ndarray and got.dtype == want.dtype and got.shape == want.shape
        assert got.flags.f_contiguous == want.flags.f_contiguous and got.flags.writeable
        assert got.flags.aligned
        assert got.tobytes(order="A") == want.tobytes(order="A")
    back["c"][...] = 0
    back["f"][0, 0] = 7.0
    again = devpersist.loads(data)
    for key, want in arrays.items():
        if key not in ("c", "f"):
            assert back[key].tobytes(order="A") == want.tobytes(order="A")
        assert again[key].tobytes(order="A") == want.tobytes(order="A")


@pytest.mark.parametrize("mixed", [False, True])
def test_predictor_batch_checks_one_or_several_node_dtypes(mixed):
    """Predictors sharing one node dtype are checked from one concatenation, others
    field by field: both accept fitted predictors and refuse a child index that leaves
    its tree."""
    import pickle

    from sklearn.ensemble import HistGradientBoostingRegressor

    from devpersist import IntegrityError, _validate

    X = np.random.RandomState(0).normal(size=(200, 3))
    model = HistGradientBoostingRegressor(max_iter=3, random_state=0).fit(X, X[:, 0])
    predictors = [pickle.loads(pickle.dumps(p[0])) for p in model._predictors]
    if mixed:  # the same fields in another order: another dtype
        last = predictors[-1]
        names = list(last.nodes.dtype.names)[::-1]
        reordered = np.empty(len(last.nodes), dtype=[(n, last.nodes.dtype[n]) for n in names])
        for n in names:
            reordered[n] = last.nodes[n]
        last.nodes = reordered
        assert len({p.nodes.dtype for p in predictors}) == 2
    _validate.tree_predictors(predictors)
    last = predictors[-1]
    inner = int(np.nonzero(last.nodes["is_leaf"] == 0)[0][-1])
    last.nodes["right"][inner] = len(last.nodes)  # past its own tree's end
    with pytest.raises(IntegrityError, match="outside the tree"):
        _validate.tree_predictors(predictors)
