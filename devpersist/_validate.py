"""Checks of fitted state that native code would trust blindly.

Every index a Cython predict loop follows must stay inside the arrays it indexes, and
every tree walk must end: children come after their parent (scikit-learn builds trees in
that order), so no chain of child links can cycle. These run on the objects a load
builds, before the object is returned. Each check takes every object one name built in
a load as one batch: a forest's 500 trees are checked with a few array operations over
all their nodes at once, not 500 times a dozen.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ._checked import check_dtype
from ._exceptions import IntegrityError

if TYPE_CHECKING:
    from numpy.typing import DTypeLike


def _children_after_parents(
    left: np.ndarray, right: np.ndarray, leaf: np.ndarray, start: Any, stop: Any, what: str
) -> None:
    """Inner nodes' children lie after them and inside their own tree (``start``/``stop``:
    per node, the bounds of its tree in the concatenated arrays, or scalars)."""
    index = np.arange(len(left))
    inner = ~leaf
    for child in (left, right):
        kids = child[inner]
        if kids.size == 0:
            continue
        lo = index[inner] if np.ndim(start) == 0 else index[inner] - start[inner]
        hi = stop if np.ndim(stop) == 0 else stop[inner]
        if (kids <= lo).any() or (kids >= hi).any():
            raise IntegrityError(f"{what}: a child index points backwards or outside the tree")


def dtypes(objs: Sequence[Any]) -> None:
    """Every dtype a load built (pickle may BUILD a dtype: see :func:`check_dtype`)."""
    for obj in objs:
        check_dtype(obj)


def trees(objs: Sequence[Any]) -> None:
    """sklearn.tree._tree.Tree (decision trees, forests, gradient boosting), in one batch."""
    lefts, rights, features, sizes, n_features = [], [], [], [], []
    for obj in objs:
        n = obj.node_count
        nodes = obj.__getstate__()["nodes"]
        if n != len(nodes) or obj.value.shape[0] != n:
            raise IntegrityError("decision tree: node count does not match its arrays")
        lefts.append(nodes["left_child"])
        rights.append(nodes["right_child"])
        features.append(nodes["feature"])
        sizes.append(n)
        n_features.append(obj.n_features)
    if not sizes or sum(sizes) == 0:
        return
    left, right, feature = np.concatenate(lefts), np.concatenate(rights), np.concatenate(features)
    count = np.asarray(sizes, dtype=np.int64)
    leaf = left == -1
    if not np.array_equal(leaf, right == -1):
        raise IntegrityError("decision tree: a node has exactly one child")
    start = np.repeat(np.cumsum(count) - count, count)  # each node's tree offset
    _children_after_parents(left, right, leaf, start, np.repeat(count, count), "decision tree")
    inner = ~leaf
    used = feature[inner]
    if used.size and (
        used.min() < 0 or (used >= np.repeat(np.asarray(n_features), count)[inner]).any()
    ):
        raise IntegrityError("decision tree: a feature index is out of range")


def tree_predictors(objs: Sequence[Any]) -> None:
    """HistGradientBoosting's TreePredictor, in one batch (a model holds one per
    iteration and class)."""
    needed = {"is_leaf", "left", "right", "feature_idx", "is_categorical", "bitset_idx"}
    all_nodes, sizes, n_bitsets = [], [], []
    complete: set[np.dtype[Any]] = set()  # node dtypes with every field (usually one)
    for obj in objs:
        nodes = getattr(obj, "nodes", None)
        if not isinstance(nodes, np.ndarray) or len(nodes) == 0:
            raise IntegrityError("histogram gradient boosting predictor: malformed nodes")
        if nodes.dtype not in complete:
            if not needed <= set(nodes.dtype.names or ()):
                raise IntegrityError("histogram gradient boosting predictor: malformed nodes")
            complete.add(nodes.dtype)
        all_nodes.append(nodes)
        sizes.append(len(nodes))
        counts = []
        for name in ("binned_left_cat_bitsets", "raw_left_cat_bitsets"):
            bitsets = getattr(obj, name, None)
            counts.append(len(bitsets) if isinstance(bitsets, np.ndarray) else -1)
        n_bitsets.append(min(counts))  # -1: no bitsets, so no categorical split may exist
    if not sizes:
        return
    what = "histogram gradient boosting predictor"
    count = np.asarray(sizes, dtype=np.int64)
    if len(complete) == 1:  # one dtype (a model's predictors share it): joined as bytes
        # (np.concatenate of structured arrays promotes their dtypes pairwise, in Python:
        # 30 µs per array; tobytes and one join are C)
        (dtype,) = complete
        joined = np.frombuffer(b"".join([n.tobytes() for n in all_nodes]), dtype)

        def column(name: str, dtype: DTypeLike | None = None) -> np.ndarray:
            return joined[name] if dtype is None else joined[name].astype(dtype)
    else:  # a file need not: field by field

        def column(name: str, dtype: DTypeLike | None = None) -> np.ndarray:
            parts = [n[name] if dtype is None else n[name].astype(dtype) for n in all_nodes]
            return np.concatenate(parts)

    left, right = column("left", np.int64), column("right", np.int64)
    leaf = column("is_leaf", bool)
    start = np.repeat(np.cumsum(count) - count, count)
    _children_after_parents(left, right, leaf, start, np.repeat(count, count), what)
    feature = column("feature_idx")
    if (feature[~leaf] < 0).any():
        raise IntegrityError(f"{what}: negative feature index")
    categorical = column("is_categorical", bool) & ~leaf
    if categorical.any():
        bitset_idx = column("bitset_idx", np.int64)
        limit = np.repeat(np.asarray(n_bitsets, dtype=np.int64), count)
        if (bitset_idx[categorical] >= limit[categorical]).any():
            raise IntegrityError(f"{what}: bitset index out of range")


def binary_trees(objs: Sequence[Any]) -> None:
    """KDTree and BallTree (nearest neighbours)."""
    for obj in objs:
        _binary_tree(obj)


def _binary_tree(obj: Any) -> None:
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


def checked_class(cls: type, built: list[Any]) -> type:
    """Stands in for ``cls`` under pickle's NEWOBJ (which needs a class): its ``__new__``
    returns a genuine ``cls`` instance and records it for the check once the whole
    object is built, so the loaded object's type is exactly ``cls``."""

    def __new__(sub: type, *args: Any, **kwargs: Any) -> Any:
        inst = cls.__new__(cls, *args, **kwargs)
        built.append(inst)
        return inst

    return type(cls.__name__, (cls,), {"__new__": __new__, "__module__": cls.__module__})
