"""devpersist's own reconstructors and numpy's helpers, misused."""

from __future__ import annotations

import _hostile as H

from devpersist import FormatError, UntrustedTypeError
from hostile_cases.build import SG, T, hidden, tail

# devpersist's own reconstructors and the numpy helpers, misused.
RECONSTRUCTOR_CASES = [
    hidden(
        "_namespace_module('os')",
        lambda c: (
            H.PROTO5 + tail(H.call(SG("devpersist._graph", "_namespace_module"), T("os")) + H.POP)
        ),
        (),
        (FormatError,),
    ),
    hidden(
        "_object_array-negative-shape",
        lambda c: (
            H.PROTO5
            + tail(
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
    hidden(
        "_object_array-count-mismatch",
        lambda c: (
            H.PROTO5
            + tail(
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
    hidden(
        "numpy-scalar-of-object-dtype",
        lambda c: (
            H.PROTO5
            + tail(
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
    hidden(
        "numpy-scalar-payload-size-mismatch",
        lambda c: (
            H.PROTO5
            + tail(
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
    hidden(
        "bit-generator-named-os.system",
        lambda c: (
            H.PROTO5
            + tail(
                H.call(SG("numpy.random._pickle", "__bit_generator_ctor"), T("os.system")) + H.POP
            )
        ),
        (),
        (UntrustedTypeError,),
    ),
]
