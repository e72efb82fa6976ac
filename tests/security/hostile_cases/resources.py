"""Deep nesting, memo expansion and constructors that allocate or compute without bound."""

from __future__ import annotations

import struct

import _hostile as H

from devpersist import IntegrityError, ResourceLimitError, UntrustedTypeError
from hostile_cases.build import SG, T, hidden, root, tail

# 15. Deep nesting and memo expansion.
RESOURCE_CASES = [
    hidden("100k-nested-lists", lambda c: root(H.deep_lists(100_000)), (), (ResourceLimitError,)),
    hidden("100k-nested-tuples", lambda c: root(H.deep_tuples(100_000)), (), (ResourceLimitError,)),
    hidden("100k-nested-dicts", lambda c: root(H.deep_dicts(100_000)), (), (ResourceLimitError,)),
    hidden(
        "100k-nested-calls-of-builtins.str",
        lambda c: root(H.deep_calls("builtins", "str", 100_000)),
        (),
        (ResourceLimitError,),
    ),
    hidden(
        "2000-nested-lists (just past any sane depth)",
        lambda c: root(H.deep_lists(2000)),
        (),
        (ResourceLimitError,),
    ),
    hidden(
        "billion-laughs-30-levels-x10 (10**30 leaves from 700 bytes)",
        lambda c: (
            H.PROTO5 + H.nested_lists(30, 10) + H.MARK + H.integer(0) + b"Q" + H.APPENDS + H.STOP
        ),
        (),
        (ResourceLimitError,),
    ),
    hidden(
        "billion-laughs-expanded-by-builtins.str (10**7 leaves -> 42 MB string)",
        lambda c: H.PROTO5 + tail(H.call(SG("builtins", "str"), H.nested_lists(7, 10)) + H.POP),
        (),
        (ResourceLimitError, UntrustedTypeError),
    ),
    hidden(
        "billion-laughs-expanded-by-numpy.sum",
        lambda c: H.PROTO5 + tail(H.call(SG("numpy", "sum"), H.nested_lists(6, 10)) + H.POP),
        (),
        (ResourceLimitError, UntrustedTypeError),
    ),
    hidden(
        "calls-what-an-allowed-constructor-returned",
        lambda c: (
            H.PROTO5
            + tail(
                H.call(H.call(SG("numpy.random._pickle", "__bit_generator_ctor"), T("MT19937")))
                + H.POP
            )
        ),
        (),
        (UntrustedTypeError,),
    ),
    hidden(
        "modifies-a-shared-namespace-module",
        lambda c: (
            H.PROTO5
            + tail(
                H.call(SG("devpersist._graph", "_namespace_module"), T("numpy"))
                + H.EMPTY_DICT
                + b"b"
                + H.POP
            )
        ),
        (),
        (UntrustedTypeError,),
    ),
    hidden(
        "3000-deep-chain-behind-a-shallow-shared-root",
        lambda c: root(H.chain_behind_shared_root(3000)),
        (),
        (ResourceLimitError,),
    ),
    hidden(
        "BYTEARRAY8-of-2**62-bytes",
        lambda c: H.PROTO5 + tail(b"\x96" + struct.pack("<Q", 2**62) + H.POP),
        (),
        (ResourceLimitError, IntegrityError),
    ),
    hidden(
        "BINBYTES8-of-2**62-bytes",
        lambda c: H.PROTO5 + tail(b"\x8e" + struct.pack("<Q", 2**62) + H.POP),
        (),
        (ResourceLimitError, IntegrityError),
    ),
    hidden(
        "BINUNICODE8-of-2**62-bytes",
        lambda c: H.PROTO5 + tail(b"\x8d" + struct.pack("<Q", 2**62) + H.POP),
        (),
        (ResourceLimitError, IntegrityError),
    ),
    hidden(
        "FRAME-of-2**62-bytes",
        lambda c: H.PROTO5 + b"\x95" + struct.pack("<Q", 2**62) + tail(),
        (),
        (ResourceLimitError, IntegrityError),
    ),
    hidden(
        "LONG4-of-2**31-bytes",
        lambda c: H.PROTO5 + tail(b"\x8b" + struct.pack("<i", 2**31 - 1) + H.POP),
        (),
        (ResourceLimitError, IntegrityError),
    ),
    hidden(
        "fractions.Fraction('1e2000000') (CPU: grows as n**1.6)",
        lambda c: H.PROTO5 + tail(H.call(SG("fractions", "Fraction"), T("1e2000000")) + H.POP),
        (),
        (ResourceLimitError, UntrustedTypeError),
    ),
    hidden(
        "numpy.void(2**31 - 1) (2 GiB from a sized constructor)",
        lambda c: H.PROTO5 + tail(H.call(SG("numpy", "void"), H.integer(2**31 - 1)) + H.POP),
        (),
        (ResourceLimitError, UntrustedTypeError),
    ),
]
