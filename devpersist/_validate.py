"""Checks of fitted state that native code would trust blindly.

Every index a Cython predict loop follows must stay inside the arrays it indexes, and
every tree walk must end: children come after their parent (scikit-learn builds trees in
that order), so no chain of child links can cycle. These run on the objects a load
builds, before the object is returned.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ._exceptions import IntegrityError


def _children_after_parents(
    left: np.ndarray, right: np.ndarray, leaf: np.ndarray, what: str
) -> None:
    n = len(left)
    index = np.arange(n)
    inner = ~leaf
    for child in (left, right):
        kids = child[inner]
        if kids.size and ((kids <= index[inner]).any() or kids.max() >= n):
            raise IntegrityError(f"{what}: a child index points backwards or outside the tree")


def _dtype(obj: Any) -> None:
    from ._safety import check_dtype

    check_dtype(obj)


def tree(obj: Any) -> None:
    """sklearn.tree._tree.Tree (decision trees, forests, gradient boosting)."""
    n = obj.node_count
    nodes = obj.__getstate__()["nodes"]
    if n != len(nodes) or obj.value.shape[0] != n:
        raise IntegrityError("decision tree: node count does not match its arrays")
    if n == 0:
        return
    left, right = nodes["left_child"], nodes["right_child"]
    leaf = left == -1
    if not np.array_equal(leaf, right == -1):
        raise IntegrityError("decision tree: a node has exactly one child")
    _children_after_parents(left, right, leaf, "decision tree")
    features = nodes["feature"][~leaf]
    if features.size and (features.min() < 0 or features.max() >= obj.n_features):
        raise IntegrityError("decision tree: a feature index is out of range")


def tree_predictor(obj: Any) -> None:
    """HistGradientBoosting's TreePredictor."""
    nodes = getattr(obj, "nodes", None)
    needed = {"is_leaf", "left", "right", "feature_idx", "is_categorical", "bitset_idx"}
    if (
        not isinstance(nodes, np.ndarray)
        or not needed <= set(nodes.dtype.names or ())
        or len(nodes) == 0
    ):
        raise IntegrityError("histogram gradient boosting predictor: malformed nodes")
    leaf = nodes["is_leaf"].astype(bool)
    _children_after_parents(nodes["left"].astype(np.int64), nodes["right"].astype(np.int64), leaf,
                            "histogram gradient boosting predictor")  # fmt: skip
    if (nodes["feature_idx"][~leaf] < 0).any():
        raise IntegrityError("histogram gradient boosting predictor: negative feature index")
    categorical = nodes["is_categorical"].astype(bool) & ~leaf
    for name in ("binned_left_cat_bitsets", "raw_left_cat_bitsets"):
        bitsets = getattr(obj, name, None)
        if categorical.any() and (
            not isinstance(bitsets, np.ndarray)
            or nodes["bitset_idx"][categorical].max() >= len(bitsets)
        ):
            raise IntegrityError("histogram gradient boosting predictor: bitset index out of range")


def binary_tree(obj: Any) -> None:
    """KDTree and BallTree (nearest neighbours)."""
    data, idx_array, node_data, node_bounds = obj.get_arrays()
    n = len(data)
    if len(idx_array) != n or (n and (idx_array.min() < 0 or idx_array.max() >= n)):
        raise IntegrityError("neighbours tree: a sample index is out of range")
    fields = getattr(getattr(node_data, "dtype", None), "names", None) or ()
    if not {"idx_start", "idx_end"} <= set(fields):
        raise IntegrityError("neighbours tree: node data lacks its sample ranges")
    start, end = node_data["idx_start"], node_data["idx_end"]
    if len(node_data) and (start.min() < 0 or end.max() > n or (start > end).any()):
        raise IntegrityError("neighbours tree: a node's sample range is out of bounds")
    if (
        node_bounds.ndim != 3
        or node_bounds.shape[1] != len(node_data)
        or (data.ndim != 2 or node_bounds.shape[2] != data.shape[1])
    ):
        raise IntegrityError("neighbours tree: node bounds do not match the data")


#: global name -> (how to hook it, check). "reduce": the global is called and returns
#: the object; "class": pickle instantiates the class (NEWOBJ) then sets its state.
VALIDATORS: dict[tuple[str, str], tuple[str, Callable[[Any], None]]] = {
    # a dtype may be BUILT by the stream (pickle does so for structured and non-native
    # dtypes): checked after the whole object is built, and at each use in the stream
    ("numpy", "dtype"): ("reduce", _dtype),
    ("sklearn.tree._tree", "Tree"): ("reduce", tree),
    ("sklearn.neighbors._kd_tree", "newObj"): ("reduce", binary_tree),
    ("sklearn.neighbors._ball_tree", "newObj"): ("reduce", binary_tree),
    ("sklearn.ensemble._hist_gradient_boosting.predictor", "TreePredictor"): (
        "class",
        tree_predictor,
    ),
}


def checked_class(cls: type, validator: Callable[[Any], None], built: list[Any]) -> type:
    """Stands in for ``cls`` under pickle's NEWOBJ (which needs a class): its ``__new__``
    returns a genuine ``cls`` instance and registers it for validation once the whole
    object is built, so the loaded object's type is exactly ``cls``."""

    def __new__(sub: type, *args: Any, **kwargs: Any) -> Any:
        inst = cls.__new__(cls, *args, **kwargs)
        built.append((validator, inst))
        return inst

    return type(cls.__name__, (cls,), {"__new__": __new__, "__module__": cls.__module__})
