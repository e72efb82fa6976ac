"""Inconsistent estimator state that native code would trust (tree node arrays)."""

from __future__ import annotations

import json
from collections.abc import Callable

import _hostile as H
import numpy as np

from devpersist import IntegrityError
from hostile_cases.build import Case, hgb_file, tree_file


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
