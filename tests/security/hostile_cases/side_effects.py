"""Allowed names whose objects do more than data: found by a review."""

from __future__ import annotations

import _hostile as H
import numpy as np

from devpersist import FormatError, IntegrityError, UntrustedTypeError
from hostile_cases.build import SG, Case, T, hidden, tail


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
    return H.container(H.PROTO5 + tail(monitor + H.POP), [np.arange(3.0)])


# Allowed names whose objects do more than data: found by this review.
SIDE_EFFECT_CASES = [
    Case(
        "sklearn.callback.ScoringMonitor.__setstate__ connects to a file-chosen socket",
        _callback_listener,
        (UntrustedTypeError,),
        (("sklearn.callback._scoring_monitor", "ScoringMonitor"),),
    ),
    hidden(
        "_namespace_module('numpy') then BUILD: writes into numpy's namespace",
        lambda c: (
            H.PROTO5
            + tail(
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
    hidden(
        "sklearn.metrics.pairwise.distance_metrics() then SETITEM: rewires 'euclidean'",
        lambda c: (
            H.PROTO5
            + tail(
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
    hidden(
        "sklearn.metrics.pairwise.kernel_metrics() then SETITEM: rewires 'rbf'",
        lambda c: (
            H.PROTO5
            + tail(
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
