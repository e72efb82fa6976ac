"""Calls hidden from a static scan, names built at run time, payload-first streams."""

from __future__ import annotations

import _hostile as H
import numpy as np

from devpersist import FormatError, IntegrityError
from hostile_cases.build import (
    SG,
    Case,
    T,
    armed_file,
    edit,
    hidden,
    str_list,
    tail,
    touch,
    with_array,
)

# 6-7. Calls hidden from a static scan; names built at run time; payload-first streams.
STREAM_CASES = [
    hidden(
        "OBJ-then-POP",
        lambda c: (
            b"\x80\x02" + tail(H.MARK + H.global_op("os", "system") + T(touch(c)) + H.OBJ + H.POP)
        ),
        (("os", "system"),),
    ),
    hidden(
        "INST-then-POP",
        lambda c: b"\x80\x02" + tail(H.MARK + T(touch(c)) + b"ios\nsystem\n" + H.POP),
        (("os", "system"),),
    ),
    hidden(
        "NEWOBJ-subprocess.Popen-then-POP",
        lambda c: (
            H.PROTO5
            + tail(
                SG("subprocess", "Popen")
                + H.MARK
                + str_list("touch", c)
                + H.TUPLE
                + H.NEWOBJ
                + H.POP
            )
        ),
        (("subprocess", "Popen"),),
    ),
    hidden(
        "NEWOBJ_EX-with-kwargs-then-POP",
        lambda c: (
            H.PROTO5
            + tail(
                SG("subprocess", "Popen")
                + H.MARK
                + str_list("touch", c)
                + H.TUPLE
                + H.EMPTY_DICT
                + H.NEWOBJ_EX
                + H.POP
            )
        ),
        (("subprocess", "Popen"),),
    ),
    hidden(
        "REDUCE-under-POP_MARK",
        lambda c: H.PROTO5 + tail(H.MARK + H.shell(touch(c)) + H.POP_MARK),
        (("os", "system"),),
    ),
    hidden(
        "payload-in-BUILD-state-of-allowed-object",
        lambda c: (
            H.PROTO5
            + tail(
                H.call(SG("collections", "OrderedDict"))
                + H.EMPTY_DICT
                + T("x")
                + H.shell(touch(c))
                + H.SETITEM
                + H.BUILD
                + H.POP
            )
        ),
        (("os", "system"),),
    ),
    hidden(
        "payload-as-argument-of-allowed-class",
        lambda c: (
            H.PROTO5 + tail(H.call(SG("collections", "OrderedDict"), H.shell(touch(c))) + H.POP)
        ),
        (("os", "system"),),
    ),
    hidden(
        "payload-deep-in-dict-in-list",
        lambda c: (
            H.PROTO5
            + tail(
                H.EMPTY_LIST
                + H.EMPTY_DICT
                + T("k")
                + H.EMPTY_LIST
                + H.shell(touch(c))
                + H.APPEND
                + H.SETITEM
                + H.APPEND
                + H.POP
            )
        ),
        (("os", "system"),),
    ),
    hidden(
        "callable-memoized-then-called-via-GET",
        lambda c: (
            H.PROTO5
            + tail(
                SG("os", "system")
                + H.MEMOIZE
                + H.POP
                + H.NONE
                + H.POP
                + H.get(0)
                + H.MARK
                + T(touch(c))
                + H.TUPLE
                + H.REDUCE
                + H.POP
            )
        ),
        (("os", "system"),),
    ),
    hidden(
        "STACK_GLOBAL-names-from-memo",
        lambda c: (
            H.PROTO5
            + tail(
                T("os")
                + H.MEMOIZE
                + H.POP
                + T("system")
                + H.MEMOIZE
                + H.POP
                + H.get(0)
                + H.get(1)
                + H.STACK_GLOBAL
                + H.MARK
                + T(touch(c))
                + H.TUPLE
                + H.REDUCE
                + H.POP
            )
        ),
        (("os", "system"),),
    ),
    hidden(
        "STACK_GLOBAL-names-built-at-run-time-by-builtins.str",
        lambda c: (
            H.PROTO5
            + tail(
                H.call(SG("builtins", "str"), T("os"))
                + H.call(SG("builtins", "str"), T("system"))
                + H.STACK_GLOBAL
                + H.MARK
                + T(touch(c))
                + H.TUPLE
                + H.REDUCE
                + H.POP
            )
        ),
        (),
        (IntegrityError,),
    ),
    hidden(
        "STACK_GLOBAL-name-from-persistent-id",
        lambda c: H.PROTO5 + tail(T("os") + H.integer(0) + b"Q" + H.STACK_GLOBAL + H.POP),
        (),
        (IntegrityError,),
    ),
    hidden(
        "EXT1-extension-registry",
        lambda c: H.PROTO5 + tail(b"\x82\x01" + H.POP),
        (),
        (IntegrityError,),
    ),
    hidden(
        "EXT2-extension-registry",
        lambda c: H.PROTO5 + tail(b"\x83\x01\x01" + H.POP),
        (),
        (IntegrityError,),
    ),
    hidden(
        "EXT4-extension-registry",
        lambda c: H.PROTO5 + tail(b"\x84\xff\xff\xff\x7f" + H.POP),
        (),
        (IntegrityError,),
    ),
    hidden(
        "payload-first-then-stream-ends-without-STOP",
        lambda c: H.PROTO5 + H.shell(touch(c)),
        (),
        (IntegrityError,),
    ),
    hidden(
        "payload-first-then-invalid-opcode",
        lambda c: H.PROTO5 + H.shell(touch(c)) + b"\xff" + H.STOP,
        (),
        (IntegrityError,),
    ),
    hidden(
        "payload-after-STOP",
        lambda c: H.PROTO5 + tail() + H.PROTO5 + H.shell(touch(c)) + H.STOP,
        (),
        (IntegrityError,),
    ),
    hidden(
        "pickle-protocol-6",
        lambda c: b"\x80\x06" + tail(H.shell(touch(c)) + H.POP),
        (),
        (IntegrityError,),
    ),
    hidden(
        "BUILD-on-an-allowed-class-object (class attribute tampering)",
        lambda c: (
            H.PROTO5
            + tail(
                SG("collections", "Counter")
                + H.NONE
                + H.EMPTY_DICT
                + T("most_common")
                + SG("builtins", "str")
                + H.SETITEM
                + H.TUPLE2
                + H.BUILD
                + H.POP
            )
        ),
        (),
        (IntegrityError,),
    ),
    Case(
        "PERSID-with-a-string-id",
        lambda c: H.container(H.PROTO5 + tail(b"P0\n" + H.POP), [np.arange(3.0)]),
        (FormatError,),
    ),
    Case(
        "BINPERSID-out-of-range",
        lambda c: H.container(H.PROTO5 + tail(H.integer(7) + b"Q" + H.POP), [np.arange(3.0)]),
        (FormatError,),
    ),
    Case(
        "BINPERSID-negative",
        lambda c: H.container(H.PROTO5 + tail(H.integer(-1) + b"Q" + H.POP), [np.arange(3.0)]),
        (FormatError,),
    ),
    Case(
        "BINPERSID-tuple-id",
        lambda c: H.container(
            H.PROTO5 + tail(H.integer(0) + H.TUPLE1 + b"Q" + H.POP), [np.arange(3.0)]
        ),
        (FormatError,),
    ),
    Case(
        "manifest-array-never-used-by-graph",
        lambda c: H.container(H.stream(H.shell(touch(c))), [np.arange(3.0)]),
        (IntegrityError,),
    ),
    Case(
        "globals-list-omits-os.system",
        lambda c: H.container(with_array(H.shell(touch(c))), [np.arange(3.0)], globals_=[]),
        (IntegrityError,),
    ),
    Case(
        "globals-list-shows-a-benign-name-instead",
        lambda c: H.container(
            with_array(H.shell(touch(c))),
            [np.arange(3.0)],
            globals_=[["collections", "OrderedDict"]],
        ),
        (IntegrityError,),
    ),
    Case(
        "globals-list-adds-an-extra-name",
        lambda c: H.container(
            with_array(H.shell(touch(c))),
            [np.arange(3.0)],
            globals_=[["os", "system"], ["builtins", "str"]],
        ),
        (IntegrityError,),
    ),
    Case(
        "globals-entry-malformed",
        edit(armed_file, lambda m: m.update(globals=[["os"]])),
        (FormatError,),
    ),
    Case(
        "globals-not-a-list",
        edit(armed_file, lambda m: m.update(globals={"os": "system"})),
        (FormatError,),
    ),
]
