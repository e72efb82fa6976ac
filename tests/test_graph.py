"""The object graph's modules: the inert replay (one for audit, diff and the generator),
the limits walk, and the batched checks of what a load builds.

Expected values are worked out by hand in each test, never computed by the code under test.
"""

from __future__ import annotations

import collections
import pickle

import numpy as np
import pytest

import devpersist
from devpersist import _audit, _derive, _diff, _replay, _validate
from devpersist._exceptions import IntegrityError, ResourceLimitError

# --------------------------------------------------------------------------- replay


def test_one_replay_serves_the_generator_the_audit_and_diff():
    obj = collections.OrderedDict(a=1)
    data = pickle.dumps(obj, protocol=5)
    # the generator: the name, called (pickle writes OrderedDict() then SETITEMS)
    assert _derive.pickled_names(obj) == {("collections", "OrderedDict"): True}
    # the audit: the same replay, with what the stream did to the result
    root, record, consumed = _replay.replay(data)
    assert consumed == len(data)
    assert record.names == {("collections", "OrderedDict")}
    assert record.called == {("collections", "OrderedDict")}
    assert record.modified == {("collections", "OrderedDict")}
    assert isinstance(root, _replay.Node) and root.parts == [(), {}, "a", 1]
    # diff: traced nodes keep what each part was
    flat = _diff.flatten(_diff.replay(data))
    assert {k: v[1] for k, v in flat.items()} == {
        "OrderedDict": "collections.OrderedDict",
        "OrderedDict['a']": "1",
    }


def test_replay_builds_and_imports_nothing():
    class Boom:
        def __reduce__(self):
            return (print, ("never printed",))

    data = pickle.dumps(Boom(), protocol=5)
    root, record, _ = _replay.replay(data)
    assert record.names == {("builtins", "print")} and record.called == {("builtins", "print")}
    assert type(root).origin == ("builtins", "print")


def test_replay_refuses_an_array_index_the_file_lacks():
    class Array:
        pass

    class P(pickle.Pickler):
        def persistent_id(self, obj):
            return 3 if isinstance(obj, Array) else None

    import io

    buf = io.BytesIO()
    P(buf, protocol=5).dump([Array()])
    with pytest.raises(devpersist.FormatError):
        _replay.replay(buf.getvalue(), n_arrays=3)
    assert _replay.replay(buf.getvalue(), n_arrays=4)[1].pids == {3}


# --------------------------------------------------------------------------- limits walk


def test_nesting_is_limited_at_max_depth():
    assert _audit.MAX_DEPTH == 200
    deep: list = []
    for _ in range(199):  # 200 lists in all
        deep = [deep]
    _audit.check_shape(deep)
    with pytest.raises(ResourceLimitError, match="deeper than 200"):
        _audit.check_shape([deep])


def test_shared_references_are_counted_expanded():
    assert _audit.MAX_EXPANDED == 10_000_000
    a = [0] * 999  # 1 000 with itself
    b = [a] * 100  # 101 + 100 * 999 = 100 001
    _audit.check_shape([b] * 99)  # 100 + 99 * 100 000 = 9 900 100
    with pytest.raises(ResourceLimitError, match="expands to more than"):
        _audit.check_shape([b] * 100)  # 101 + 100 * 100 000 = 10 000 101


def test_a_cycle_counts_as_a_leaf():
    loop: list = [1, 2]
    loop.append(loop)
    _audit.check_shape(loop)  # terminates, and is tiny


def test_a_single_huge_flat_container_is_limited():
    with pytest.raises(ResourceLimitError):
        _audit.check_shape([[0] * 10_000_000])  # the inner list alone: 10 000 001


# --------------------------------------------------------------------------- batched checks


@pytest.fixture(scope="module")
def forest():
    from sklearn.ensemble import RandomForestClassifier

    X = np.random.RandomState(0).normal(size=(80, 3))
    y = (X[:, 0] > 0).astype(int)
    return RandomForestClassifier(3, max_depth=3, random_state=0).fit(X, y)


def _edited(tree, change):
    """A copy of ``tree`` whose node array went through ``change``."""
    copy = pickle.loads(pickle.dumps(tree))
    state = copy.__getstate__()
    nodes = state["nodes"].copy()
    change(nodes)
    copy.__setstate__({**state, "nodes": nodes})
    return copy


def test_valid_trees_pass_in_one_batch(forest):
    _validate.trees([e.tree_ for e in forest.estimators_])
    _validate.trees([])


def test_a_child_index_into_the_next_tree_is_refused(forest):
    """In the concatenated arrays of the batch, ``node_count`` of the first tree is a valid
    index (the second tree's root): each tree must be bounded by its own nodes."""
    first, *rest = (e.tree_ for e in forest.estimators_)
    n = first.node_count
    inner = int(np.nonzero(first.children_left != -1)[0][-1])

    def change(nodes):
        nodes["right_child"][inner] = n

    with pytest.raises(IntegrityError, match="outside the tree"):
        _validate.trees([_edited(first, change), *rest])


def test_a_feature_index_is_checked_against_its_own_tree(forest):
    *first, last = (e.tree_ for e in forest.estimators_)
    root_feature = 3  # the forest has 3 features: 0, 1, 2

    def change(nodes):
        nodes["feature"][0] = root_feature

    with pytest.raises(IntegrityError, match="feature index"):
        _validate.trees([*first, _edited(last, change)])


def test_a_forest_round_trips_through_the_batched_check(forest):
    """The batch runs on what the unpickler built, and a valid forest passes it."""
    data = devpersist.dumps(forest)
    loaded = devpersist.loads(data)
    assert type(loaded) is type(forest)
    np.testing.assert_array_equal(loaded.predict_proba(np.eye(3)), forest.predict_proba(np.eye(3)))


def test_a_predictor_child_index_into_the_next_predictor_is_refused():
    from sklearn.ensemble import HistGradientBoostingRegressor

    X = np.random.RandomState(0).normal(size=(200, 3))
    model = HistGradientBoostingRegressor(max_iter=3, random_state=0).fit(X, X[:, 0])
    predictors = [pickle.loads(pickle.dumps(p[0])) for p in model._predictors]
    _validate.tree_predictors(predictors)  # as fitted: valid
    first = predictors[0]
    inner = int(np.nonzero(first.nodes["is_leaf"] == 0)[0][-1])
    first.nodes["left"][inner] = len(first.nodes)  # the next predictor's root, in a batch
    with pytest.raises(IntegrityError, match="outside the tree"):
        _validate.tree_predictors(predictors)
