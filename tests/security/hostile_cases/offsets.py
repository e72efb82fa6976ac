"""Offsets: negative, overlapping, out of order, holes, past the end."""

from __future__ import annotations

from devpersist import IntegrityError
from hostile_cases.build import Case, armed_file, array0, edit, setter, two_array_file

# 10. Offsets: negative, overlapping, out of order, holes, past the end.
OFFSET_CASES = [
    Case(
        "graph-offset-negative",
        edit(armed_file, lambda m: m["graph"].update(offset=-64)),
        (IntegrityError,),
    ),
    Case(
        "graph-offset-0 (overlaps the header)",
        edit(armed_file, lambda m: m["graph"].update(offset=0)),
        (IntegrityError,),
    ),
    Case(
        "graph-length-negative",
        edit(armed_file, lambda m: m["graph"].update(length=-1)),
        (IntegrityError,),
    ),
    Case(
        "graph-length-runs-into-the-array",
        edit(armed_file, lambda m: m["graph"].update(length=m["graph"]["length"] + 64)),
        (IntegrityError,),
    ),
    Case(
        "arrays-overlap",
        edit(two_array_file, lambda m: m["arrays"][1].update(offset=m["arrays"][0]["offset"])),
        (IntegrityError,),
    ),
    Case(
        "arrays-out-of-order",
        edit(two_array_file, lambda m: m.update(arrays=[m["arrays"][1], m["arrays"][0]])),
        (IntegrityError,),
    ),
    Case(
        "array-after-a-hole",
        edit(armed_file, array0(lambda e: e.update(offset=e["offset"] + 64))),
        (IntegrityError,),
    ),
    Case("array-offset-negative", edit(armed_file, array0(setter(offset=-128))), (IntegrityError,)),
    Case(
        "array-offset-past-the-file",
        edit(armed_file, array0(setter(offset=2**62))),
        (IntegrityError,),
    ),
    Case("array-length-negative", edit(armed_file, array0(setter(length=-24))), (IntegrityError,)),
]
